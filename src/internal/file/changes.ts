/**
 * The file store's `changes`, and how its writers make them: a write that another process's runner or worker must hear
 * of at once (a pause or cancel request, a task queued: `ChangeFeed.announced`) is announced by making and removing
 * a file named by the task's id in `.signals/`, and `changes` is the kernel's notifications (inotify on Linux, through
 * `fs.watch`) on that directory, as task ids.
 *
 * Not the records' directory itself: every write of a record is an event there, and a running task writes its record
 * at every checkpoint and heartbeat, its log at every flush. A watch on it woke every process running tasks on the
 * store at each of them, to find, almost always, a write it had no use for; one on `.signals/` wakes them only for what
 * they look for. Where the directory cannot be watched (some network file systems, a watch limit reached), the stream
 * ends and readers fall back to polling.
 */
import type * as Stream from "effect/Stream"
import { closeSync, openSync, unlinkSync, watch } from "node:fs"
import * as ChangeFeed from "../changeFeed.js"
import type { Layout } from "./layout.js"

/** The ids announced in `layout`'s store while the stream is consumed, by any process (this one included). */
export const changes = (layout: Layout): Stream.Stream<string | undefined> =>
  ChangeFeed.fromSource(({ changed, end }) => {
    let watcher: ReturnType<typeof watch>
    try {
      // Not persistent: watching must not keep a process alive that has nothing else to do.
      watcher = watch(layout.signalDir, { persistent: false }, (_, name) => changed(name ?? undefined))
    } catch {
      end()
      return () => {}
    }
    watcher.on("error", end)
    return () => watcher.close()
  })

/**
 * Announces that the record of `id` changed in a way its runner or a worker must hear of (after the write, which is
 * durable already): a file made and removed at once, two events for every watch on `.signals/`. Best effort, as a
 * notification is: a failure only leaves the news to the next heartbeat or poll. Nothing here is fsynced; a file left
 * by a crash between the two calls is removed when a store opens (`sweep.ts`).
 */
export const announce = (layout: Layout, id: string): void => {
  const path = layout.signalPath(id)
  try {
    closeSync(openSync(path, "w"))
    unlinkSync(path)
  } catch {
    // Heard of later instead: see above.
  }
}

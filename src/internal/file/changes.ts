/**
 * The file store's `changes`: the kernel's notifications (inotify on Linux, through `fs.watch`) on the records'
 * directory, as task ids. A record is replaced by a rename, so every write of it is an event under its name. Where
 * the directory cannot be watched (some network file systems, a watch limit reached), the stream ends and readers fall
 * back to polling.
 */
import type * as Stream from "effect/Stream"
import { watch } from "node:fs"
import * as ChangeFeed from "../changeFeed.js"
import { recordSuffix, tempPrefix } from "./layout.js"

/** The ids of records in `dir` that change while the stream is consumed. */
export const changes = (dir: string): Stream.Stream<string | undefined> =>
  ChangeFeed.fromSource(({ changed, end }) => {
    let watcher: ReturnType<typeof watch>
    try {
      // Not persistent: watching must not keep a process alive that has nothing else to do.
      watcher = watch(dir, { persistent: false }, (_, name) => {
        if (name === null) return changed(undefined)
        if (name.endsWith(recordSuffix) && !name.startsWith(tempPrefix)) changed(name.slice(0, -recordSuffix.length))
      })
    } catch {
      end()
      return () => {}
    }
    watcher.on("error", end)
    return () => watcher.close()
  })

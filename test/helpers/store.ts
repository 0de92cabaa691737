/**
 * Small store helpers shared by the suites and the child process.
 */
import { Effect } from "effect"
import { existsSync, readdirSync } from "node:fs"
import { join } from "node:path"
import type { TaskStore } from "../../src/index.js"
import type * as TaskRecord from "../../src/TaskRecord.js"

/** Increments `progress.done` by compare-and-swap, retrying on conflicts. */
export const increment = (store: TaskStore.Service, id: string): Effect.Effect<void, unknown> =>
  Effect.gen(function* () {
    const info = yield* store.getInfo(id)
    yield* store.update(id, info.revision, { progress: { done: info.progress.done + 1 } })
  }).pipe(Effect.catchTag("RevisionConflict", () => increment(store, id)))

/** UTF-8 bytes of `text`. */
export const bytes = (text: string) => new TextEncoder().encode(text)

/** A record to create, with `overrides`. */
export const record = (
  id: string,
  overrides: Partial<Omit<TaskRecord.TaskRecord, "revision">> = {}
): Omit<TaskRecord.TaskRecord, "revision"> => ({
  id,
  kind: "test",
  status: "pending",
  progress: { done: 0 },
  attempts: 0,
  createdAt: 1_000,
  updatedAt: 1_000,
  input: bytes(`{"id":"${id}"}`),
  ...overrides
})

/**
 * The temp files in a file store's records directory `tasks`: in its `.tmp/`, where they are made, and beside the
 * records, where versions before made them.
 */
export const tempFilesIn = (tasks: string): Array<string> => {
  const temps = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((n) => n.startsWith(".tmp-")) : [])
  return [...temps(join(tasks, ".tmp")), ...temps(tasks)]
}

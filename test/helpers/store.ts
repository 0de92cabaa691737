/**
 * Small store helpers shared by the suites and the child process.
 */
import { Effect } from "effect"
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

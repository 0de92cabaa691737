/**
 * Small store helpers shared by the suites and the child process.
 */
import { Effect } from "effect"
import type { TaskStore } from "../../src/index.js"

/** Increments `progress.done` by compare-and-swap, retrying on conflicts. */
export const increment = (store: TaskStore.Service, id: string): Effect.Effect<void, unknown> =>
  Effect.gen(function* () {
    const info = yield* store.getInfo(id)
    yield* store.update(id, info.revision, { progress: { done: info.progress.done + 1 } })
  }).pipe(Effect.catchTag("RevisionConflict", () => increment(store, id)))

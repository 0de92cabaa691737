/** Waiting for a task's end and reading it: its typed success, or its typed failure, decoded by its own Schemas. */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Task from "../../Task.js"
import { TaskCancelled, TaskDecodeError, TaskDefect, TaskNotCompleted, TaskPaused } from "../../TaskError.js"
import type { AwaitError } from "../../TaskRunner.js"
import { decodeField } from "./codecs.js"
import { checkKind, type Engine, isStale } from "./engine.js"
import type { RecordedEnd } from "./running.js"

/**
 * The end of a task as its typed success or failure; `none` while it is still on its way. From `known`, the end a run
 * here has just recorded, when there is one; from the store otherwise.
 */
const ended = <T extends Task.Any>(engine: Engine, task: T, id: string, known?: RecordedEnd) =>
  Effect.gen(function* () {
    const info = known?.info ?? (yield* engine.store.getInfo(id))
    yield* checkKind(task, info)
    const stored = (field: "result" | "error") =>
      known?.[field] !== undefined ? Effect.succeed(known[field]) : Effect.map(engine.store.get(id), (r) => r[field])
    switch (info.status) {
      case "completed": {
        const result = yield* stored("result")
        if (result === undefined) {
          return yield* new TaskDecodeError({
            id,
            kind: info.kind,
            field: "result",
            found: "nothing",
            detail: "the record is completed but holds no result"
          })
        }
        return Option.some(yield* decodeField(task.codecs.success, info, "result", result))
      }
      case "failed": {
        const bytes = info.failure?.kind === "error" ? yield* stored("error") : undefined
        if (bytes !== undefined) {
          const error = yield* decodeField(task.codecs.error, info, "error", bytes)
          return yield* Effect.fail(error as Task.Error<T>)
        }
        return yield* new TaskDefect({ id, description: info.failure?.message ?? "unknown failure" })
      }
      case "cancelled":
        return yield* new TaskCancelled({ id })
      case "paused":
        return yield* new TaskPaused({ id, reason: info.reason ?? "paused" })
      case "running":
        if (!engine.running.has(id) && isStale(engine, info, yield* Clock.currentTimeMillis)) {
          // A run of this process may have ended and let its lease go since that read (a stale look, not a stale
          // task): judge only a record that has not moved.
          const again = yield* engine.store.getInfo(id)
          if (again.revision === info.revision) {
            return yield* new TaskPaused({ id, reason: "its runner stopped without pausing it" })
          }
        }
        return Option.none()
      case "pending":
        // Waiting for a runner to start it: as long as the caller is willing to wait (`Effect.timeout`).
        return Option.none()
    }
  })

/** Waits for the task to end: on its completion signal if it runs here, by looking at the store if not. */
export const awaitTask = <T extends Task.Any>(
  engine: Engine,
  task: T,
  id: string
): Effect.Effect<Task.Success<T>, Task.Error<T> | AwaitError> =>
  Effect.gen(function* () {
    while (true) {
      const r = engine.running.get(id)
      if (r !== undefined) {
        yield* Deferred.await(r.done)
        // Its run here ended on a store failure: that failure, with its path or server, says more than the record.
        if (r.storeError !== undefined) return yield* Effect.fail(r.storeError)
      }
      const result = yield* ended(engine, task, id, r?.end)
      if (Option.isSome(result)) return result.value as Task.Success<T>
      if (!engine.running.has(id)) yield* Effect.sleep(engine.awaitMs)
    }
  })

/** The stored end of a task, without waiting: `TaskNotCompleted` while it has none. */
export const result = <T extends Task.Any>(engine: Engine, task: T, id: string) =>
  Effect.gen(function* () {
    const value = yield* ended(engine, task, id).pipe(
      Effect.catchTag("TaskPaused", (e) => Effect.fail(new TaskNotCompleted({ id: e.id, status: "paused" }))),
      Effect.catchTag("TaskCancelled", (e) => Effect.fail(new TaskNotCompleted({ id: e.id, status: "cancelled" })))
    )
    if (Option.isNone(value)) return yield* new TaskNotCompleted({ id, status: "running" })
    return value.value as Task.Success<T>
  })

/**
 * The runner over the real file store, on the live clock: tasks that checkpoint back to back on real I/O must still
 * get their heartbeat (interest timeout, requests from other runners), which an in-memory store cannot show.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Schema, Scope } from "effect"
import { Task, TaskRunner } from "../src/index.js"
import * as File from "../src/TaskStore/File.js"
import { waitUntil } from "./helpers/runner.js"
import { tempDir } from "./helpers/tempDir.js"

/** Checkpoints as fast as the disk allows, forever. */
const Busy = Task.make({
  name: "busy",
  input: Schema.Struct({}),
  state: Schema.Struct({ n: Schema.Int }),
  success: Schema.Int,
  initial: () => ({ n: 0 }),
  run: (_, task) =>
    Effect.gen(function* () {
      for (let n = task.state.n; ; n++) {
        yield* task.progress(1)
        yield* task.checkpoint({ n: n + 1 })
      }
    })
})

const runnerOn = (directory: string, options: Omit<Partial<TaskRunner.Options>, "tasks">) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const layer = TaskRunner.layer({ tasks: [Busy], flushInterval: "100 millis", ...options }).pipe(
      Layer.provide(File.layer({ directory }))
    )
    const context = yield* Layer.buildWithScope(layer, scope)
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    return Context.get(context, TaskRunner.TaskRunner)
  })

describe("TaskRunner on the file store", () => {
  it.live("a task checkpointing back to back is still paused by the interest timeout", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* tempDir
        const runner = yield* runnerOn(dir, { interestTimeout: "400 millis" })
        const id = yield* runner.start(Busy, {})
        yield* waitUntil(
          Effect.map(runner.status(id), (i) => i.status === "paused"),
          "paused for lack of interest",
          { live: true }
        )
        const info = yield* runner.status(id)
        assert.match(info.reason ?? "", /nobody polled/)
        assert.isTrue(info.progress.done > 0)
      })
    )
  )

  it.live("a pause requested by another runner reaches a task checkpointing back to back", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* tempDir
        const owner = yield* runnerOn(dir, { host: "owner" })
        const other = yield* runnerOn(dir, { host: "other" })
        const id = yield* owner.start(Busy, {})
        yield* Effect.sleep("200 millis")
        yield* other.pause(id)
        yield* waitUntil(
          Effect.map(other.status(id), (i) => i.status === "paused"),
          "paused on request",
          { live: true }
        )
        const info = yield* other.status(id)
        assert.strictEqual(info.reason, "paused on request")
        assert.isUndefined(info.lease)
        // It continues from where it stopped.
        yield* other.resume(id)
        yield* Effect.sleep("100 millis")
        const resumed = yield* other.cancel(id)
        assert.strictEqual(resumed.status, "cancelled")
        assert.isTrue(resumed.progress.done > info.progress.done)
      })
    )
  )
})

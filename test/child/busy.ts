/**
 * A child process for the runner on the file store, on the live clock: a task checkpointing back to back must still
 * get its heartbeat. Run as a process so that the test, outside it, fails it on time even if its event loop starves.
 *
 *   interest <dir>   a runner with a 400 ms interest timeout starts the task; prints "RESULT {status, reason, done}"
 *                    once it is paused (nobody polls it)
 *   request <dir>    an owner runs the task, another runner on the same store pauses it, resumes it and cancels it;
 *                    prints "RESULT {paused, cancelled}" with both statuses
 *   spin-cancel <dir> starts a task whose only step is `yield* task.progress(1)`, cancels it after 200 ms; prints
 *                    "RESULT {status, ms, done}" (ms: how long the cancel took)
 *   spin <dir>       starts that task as "spin" (default runner options), prints "STARTED", and runs until killed
 */
import { Context, Effect, Exit, Layer, Schema, Scope } from "effect"
import { Task, TaskRunner } from "../../src/index.js"
import * as File from "../../src/TaskStore/File.js"
import { waitUntil } from "../helpers/runner.js"

const [mode, directory = ""] = process.argv.slice(2)

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

/** Counts forever; its only step is the inline progress call. */
const Spin = Task.make({
  name: "spin",
  input: Schema.Struct({}),
  state: Schema.Struct({}),
  success: Schema.Int,
  initial: () => ({}),
  run: (_, task) =>
    Effect.gen(function* () {
      for (;;) yield* task.progress(1)
    })
})

const runnerOn = (options: Omit<Partial<TaskRunner.Options>, "tasks">) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const layer = TaskRunner.layer({ tasks: [Busy, Spin], flushInterval: "100 millis", ...options }).pipe(
      Layer.provide(File.layer({ directory }))
    )
    const context = yield* Layer.buildWithScope(layer, scope)
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    return Context.get(context, TaskRunner.TaskRunner)
  })

const live = { live: true }

const program = Effect.gen(function* () {
  switch (mode) {
    case "interest": {
      const runner = yield* runnerOn({ interestTimeout: "400 millis" })
      const id = yield* runner.start(Busy, {})
      yield* waitUntil(
        Effect.map(runner.status(id), (i) => i.status === "paused"),
        "paused for lack of interest",
        live
      )
      const info = yield* runner.status(id)
      return { status: info.status, reason: info.reason, done: info.progress.done }
    }
    case "request": {
      const owner = yield* runnerOn({ host: "owner" })
      const other = yield* runnerOn({ host: "other" })
      const id = yield* owner.start(Busy, {})
      yield* Effect.sleep("200 millis")
      yield* other.pause(id)
      yield* waitUntil(
        Effect.map(other.status(id), (i) => i.status === "paused"),
        "paused on request",
        live
      )
      const paused = yield* other.status(id)
      // It continues from where it stopped.
      yield* other.resume(id)
      yield* Effect.sleep("100 millis")
      const cancelled = yield* other.cancel(id)
      return { paused, cancelled }
    }
    case "spin-cancel": {
      const runner = yield* runnerOn({})
      const id = yield* runner.start(Spin, {})
      yield* Effect.sleep("200 millis")
      const started = Date.now()
      const info = yield* runner.cancel(id)
      return { status: info.status, ms: Date.now() - started, done: info.progress.done }
    }
    case "spin": {
      const runner = yield* runnerOn({ flushInterval: undefined })
      yield* runner.start(Spin, {}, { id: "spin" })
      process.stdout.write("STARTED\n")
      return yield* Effect.never
    }
    default:
      return yield* Effect.dieMessage(`unknown mode ${mode}`)
  }
})

Effect.runPromise(Effect.scoped(program)).then(
  (result) => {
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
    process.exit(0)
  },
  (e) => {
    process.stderr.write(`child failed: ${String(e)}\n`)
    process.exit(1)
  }
)

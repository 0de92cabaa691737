/**
 * Pause, resume and cancel: a pause keeps the task resumable at its last checkpoint, a cancel ends it for good, and
 * the task's finalizers run either way.
 *
 *   npx tsx examples/interrupt-cancel.ts
 */
import { Effect, Layer, Schema } from "effect"
import { Task, TaskRunner, TaskStore } from "@vectorlink/task"

const Ticker = Task.make({
  name: "ticker",
  input: Schema.Struct({ ticks: Schema.Int }),
  state: Schema.Struct({ tick: Schema.Int }),
  success: Schema.Int,
  initial: () => ({ tick: 0 }),
  run: (input, task) =>
    Effect.gen(function* () {
      yield* task.total(input.ticks)
      for (let tick = task.state.tick; tick < input.ticks; tick++) {
        yield* Effect.sleep("10 millis")
        yield* task.progress(1)
        yield* task.checkpoint({ tick: tick + 1 })
      }
      return input.ticks
    }).pipe(Effect.ensuring(Effect.log("finalizer ran")))
})

const program = Effect.gen(function* () {
  const runner = yield* TaskRunner.TaskRunner
  const show = (id: string) =>
    Effect.flatMap(runner.status(id), (i) => Effect.log(`${i.status} at tick ${i.progress.done} (${i.reason ?? "-"})`))

  const id = yield* runner.start(Ticker, { ticks: 1000 })
  yield* Effect.sleep("100 millis")
  yield* runner.pause(id)
  yield* show(id) // paused, resumable
  yield* runner.resume(id)
  yield* Effect.sleep("100 millis")
  yield* runner.cancel(id)
  yield* show(id) // cancelled, final
  const again = yield* Effect.either(runner.resume(id))
  if (again._tag === "Left") yield* Effect.log(again.left.message)
})

const Runner = TaskRunner.layer({ tasks: [Ticker] }).pipe(Layer.provide(TaskStore.layerMemory))
Effect.runPromise(program.pipe(Effect.provide(Runner), Effect.scoped))

/**
 * Checkpoint and resume on the memory store: the task is interrupted half-way, then resumed from its checkpoint.
 *
 *   npx tsx examples/checkpoint-resume.ts
 */
import { Effect, Layer, Schema } from "effect"
import { Task, TaskRunner, TaskStore } from "@vectorlink/task"

export const SumSquares = Task.make({
  name: "sum-squares",
  input: Schema.Struct({ upTo: Schema.Int }),
  state: Schema.Struct({ next: Schema.Int, sum: Schema.Number }),
  success: Schema.Number,
  initial: () => ({ next: 1, sum: 0 }),
  run: (input, task) =>
    Effect.gen(function* () {
      yield* task.total(input.upTo)
      task.setDone(task.state.next - 1)
      let { next, sum } = task.state
      yield* Effect.log(`starting at ${next} (attempt ${task.attempt})`)
      for (; next <= input.upTo; next++) {
        sum += next * next
        yield* task.progress(1)
        if (next % 10 === 0) {
          yield* task.checkpoint({ next: next + 1, sum })
          yield* Effect.sleep("50 millis")
        }
      }
      return sum
    })
})

const program = Effect.gen(function* () {
  const runner = yield* TaskRunner.TaskRunner
  // Run for 300 ms, then the timeout interrupts the run: the task is paused at its last checkpoint.
  const first = yield* runner
    .run(SumSquares, { upTo: 100 }, { id: "squares" })
    .pipe(Effect.timeout("300 millis"), Effect.option)
  const paused = yield* runner.status("squares")
  yield* Effect.log(
    `after the timeout: ${paused.status}, ${paused.progress.done}/${paused.progress.total} (result ${first._tag})`
  )
  // Running the same id again re-enters the task from its checkpoint.
  const sum = yield* runner.run(SumSquares, { upTo: 100 }, { id: "squares" })
  const done = yield* runner.status("squares")
  yield* Effect.log(`resumed and ${done.status} after ${done.attempts} attempts: sum = ${sum}`)
  for (const line of yield* runner.logs("squares")) yield* Effect.log(`  task log #${line.seq}: ${line.message}`)
})

const Runner = TaskRunner.layer({ tasks: [SumSquares] }).pipe(Layer.provide(TaskStore.layerMemory))

if (import.meta.url === `file://${process.argv[1]}`) Effect.runPromise(program.pipe(Effect.provide(Runner)))

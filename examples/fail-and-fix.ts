/**
 * Failure, then resume after a fix: a bug near the end fails the task, but its checkpoints are kept; once the bug is
 * fixed, an explicit resume continues from the last checkpoint instead of starting over.
 *
 *   npx tsx examples/fail-and-fix.ts
 */
import { Effect, Layer, Schema } from "effect"
import { Task, TaskRunner, TaskStore } from "@vectorlink/task"

class BadRecord extends Schema.TaggedError<BadRecord>()("BadRecord", { index: Schema.Int }) {}

/** Stands in for a bug fixed between the two runs (a new deploy, say). */
let fixed = false

const Import = Task.make({
  name: "import",
  input: Schema.Struct({ records: Schema.Int }),
  state: Schema.Struct({ next: Schema.Int }),
  success: Schema.Int,
  error: BadRecord,
  initial: () => ({ next: 0 }),
  run: (input, task) =>
    Effect.gen(function* () {
      yield* Effect.log(`starting at record ${task.state.next}`)
      for (let i = task.state.next; i < input.records; i++) {
        if (i === 950 && !fixed) return yield* new BadRecord({ index: i })
        if (i % 100 === 0) yield* task.checkpoint({ next: i })
      }
      return input.records
    })
})

const program = Effect.gen(function* () {
  const runner = yield* TaskRunner.TaskRunner
  const id = yield* runner.start(Import, { records: 1000 })
  const failed = yield* Effect.either(runner.await(Import, id))
  if (failed._tag === "Left") yield* Effect.log(`failed: ${failed.left._tag}`, failed.left)
  fixed = true
  yield* runner.resume(id) // explicit: failed tasks are never resumed by polling alone
  yield* Effect.log(`after the fix: ${yield* runner.await(Import, id)} records`)
})

const Runner = TaskRunner.layer({ tasks: [Import] }).pipe(Layer.provide(TaskStore.layerMemory))
Effect.runPromise(program.pipe(Effect.provide(Runner), Effect.scoped))

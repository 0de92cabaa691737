/**
 * A queue and its workers: tasks are submitted (stored `pending`, with a priority), two workers claim and run them
 * two at a time each, and a task that fails once is retried from its checkpoint by whichever worker comes first.
 * In production the workers are separate processes on a shared Postgres store (`vltask worker`); here they share a
 * store in memory so the example runs on its own.
 *
 *   npx tsx examples/workers.ts
 */
import { Context, Effect, Layer, Schedule, Schema } from "effect"
import { Task, TaskRunner, TaskStore } from "@vectorlink/task"

class Flaky extends Schema.TaggedError<Flaky>()("Flaky", { shard: Schema.Int }) {}

/** Which worker ran which shard, and where each run of shard 3 started. */
const ranBy = new Map<number, string>()
const shard3From: Array<number> = []

const EmbedShard = Task.make({
  name: "embed-shard",
  input: Schema.Struct({ shard: Schema.Int, docs: Schema.Int }),
  state: Schema.Struct({ done: Schema.Int }),
  success: Schema.Int,
  error: Flaky,
  initial: () => ({ done: 0 }),
  // A failed run is retried from its last checkpoint, up to twice, 50 ms and 100 ms later.
  retry: { times: 2, schedule: Schedule.exponential("50 millis") },
  run: (input, task) =>
    Effect.gen(function* () {
      const worker = yield* Effect.serviceOption(WorkerName)
      ranBy.set(input.shard, worker._tag === "Some" ? worker.value : "?")
      if (input.shard === 3) shard3From.push(task.state.done)
      for (let i = task.state.done; i < input.docs; i += 10) {
        yield* Effect.sleep("5 millis") // embedding ten documents
        // Shard 3's first run fails half-way, after a checkpoint.
        if (input.shard === 3 && task.attempt === 1 && i === 50) return yield* new Flaky({ shard: 3 })
        yield* task.checkpoint({ done: i + 10 })
      }
      return input.docs
    })
})

/** A worker's name, a service its runner gives the tasks it runs. */
class WorkerName extends Context.Tag("WorkerName")<WorkerName, string>() {}

const runnerOn = (store: TaskStore.Service, name: string) =>
  Layer.build(
    TaskRunner.layer({ tasks: [EmbedShard] }).pipe(
      Layer.provide(Layer.merge(Layer.succeed(TaskStore.TaskStore, store), Layer.succeed(WorkerName, name)))
    )
  ).pipe(Effect.map((context) => Context.get(context, TaskRunner.TaskRunner)))

const program = Effect.gen(function* () {
  const store = yield* TaskStore.makeMemory
  const submitter = yield* runnerOn(store, "submitter")
  // Queue twelve shards; the last one is urgent.
  const ids = yield* Effect.forEach(
    Array.from({ length: 12 }, (_, shard) => shard),
    (shard) => submitter.submit(EmbedShard, { shard, docs: 100 }, { priority: shard === 11 ? 10 : 0 })
  )
  for (const name of ["worker-a", "worker-b"]) {
    const runner = yield* runnerOn(store, name)
    yield* runner.work({ concurrency: 2 })
  }
  const totals = yield* Effect.forEach(ids, (id) => submitter.await(EmbedShard, id))
  const retried = yield* submitter.status(ids[3]!)
  yield* Effect.log(`${totals.length} shards, ${totals.reduce((a, b) => a + b, 0)} documents embedded`)
  yield* Effect.log(`shard 3 took ${retried.attempts} attempts, starting at documents ${shard3From.join(" and ")}`)
  yield* Effect.log(`workers used: ${[...new Set(ranBy.values())].sort().join(", ")}`)
})

Effect.runPromise(program.pipe(Effect.scoped))

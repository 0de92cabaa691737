/**
 * Progress overhead: ns per item of an `Effect.gen` loop doing one cheap Effect step per item, bare, with
 * `yield* task.progress(1)`, and with the synchronous fast path `task.counter.done++`. Measured inside a real running task, the
 * three variants interleaved round by round; medians.
 */
import { Effect, Layer, Schema } from "effect"
import { Task, TaskRunner, TaskStore } from "../src/index.js"
import { median } from "./util.js"

const Loops = Task.make({
  name: "bench-progress",
  input: Schema.Struct({ items: Schema.Int, rounds: Schema.Int }),
  state: Schema.Struct({}),
  success: Schema.Struct({ bare: Schema.Number, progress: Schema.Number, sync: Schema.Number }),
  initial: () => ({}),
  run: (input, task) =>
    Effect.gen(function* () {
      let counter = 0
      const step = Effect.sync(() => {
        counter++
      })
      const time = (body: Effect.Effect<void>) =>
        Effect.gen(function* () {
          const start = process.hrtime.bigint()
          yield* body
          return Number(process.hrtime.bigint() - start) / input.items
        })
      const bare = Effect.gen(function* () {
        for (let i = 0; i < input.items; i++) yield* step
      })
      const withProgress = Effect.gen(function* () {
        for (let i = 0; i < input.items; i++) {
          yield* step
          yield* task.progress(1)
        }
      })
      const withAdvance = Effect.gen(function* () {
        // The fast path offered for very hot loops: the counter's field, updated in place.
        const counter = task.counter
        for (let i = 0; i < input.items; i++) {
          yield* step
          counter.done++
        }
      })
      const bares: Array<number> = []
      const progresses: Array<number> = []
      const syncs: Array<number> = []
      for (let r = 0; r < input.rounds; r++) {
        bares.push(yield* time(bare))
        progresses.push(yield* time(withProgress))
        syncs.push(yield* time(withAdvance))
      }
      if (counter === 0) return yield* Effect.dieMessage("no work done")
      // Paired: each round's difference against the bare loop of the same round, then the median of those.
      return {
        bare: median(bares),
        progress: median(progresses.map((p, i) => p - bares[i]!)),
        sync: median(syncs.map((p, i) => p - bares[i]!))
      }
    })
})

export const progressOverhead = async (items = 1_000_000, rounds = 15) => {
  const result = await Effect.runPromise(
    Effect.flatMap(TaskRunner.TaskRunner, (runner) => runner.run(Loops, { items, rounds })).pipe(
      Effect.provide(TaskRunner.layer({ tasks: [Loops] }).pipe(Layer.provide(TaskStore.layerMemory))),
      Effect.scoped
    )
  )
  return {
    effect_step_ns: result.bare,
    progress_ns_per_call: Math.max(0, result.progress),
    progress_sync_ns_per_call: Math.max(0, result.sync)
  }
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await progressOverhead())

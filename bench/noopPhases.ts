/**
 * `npx tsx bench/noopPhases.ts [memory|file|sqlite|postgres]`: where the time of one `runner.run` of a task that does
 * nothing goes, per store: before the create is written; the create (the store's call); from the create to the task's
 * body; from the body to the write of its end; that write (the store's call); from it to `run` returning. µs per run,
 * the median of rounds. What is left when the two store calls are taken away is the runner's own work.
 */
import { Effect, Layer, Schema } from "effect"
import { Task, TaskRunner, TaskStore } from "../src/index.js"
import { storeLayer, warmupRuns } from "./noop.js"
import { dropTables } from "./raw.js"
import { median, scratchDir } from "./util.js"

const kind = (process.argv[2] ?? "memory") as "memory" | "file" | "sqlite" | "postgres"
const url = process.env.VLTASK_BENCH_POSTGRES ?? "postgres://root@127.0.0.1:5432/test"
const prefix = `vltask_bench_p${process.pid}_`
const phases = ["before the create", "create", "create → body", "body → end", "end write", "end → return"] as const
/** The moments of the run being measured, in the order of `phases` (and its end). */
const at = new Array<number>(phases.length + 1).fill(0)

const Noop = Task.make({
  name: "bench-noop",
  input: Schema.Struct({}),
  state: Schema.Struct({}),
  success: Schema.Number,
  initial: () => ({}),
  run: () =>
    Effect.sync(() => {
      at[3] = performance.now()
      return 0
    })
})

/** The store with its create and its final write timed. */
const timed = (store: Layer.Layer<TaskStore.TaskStore, unknown>) =>
  Layer.effect(
    TaskStore.TaskStore,
    Effect.map(TaskStore.TaskStore, (s) => ({
      ...s,
      create: (record: Parameters<typeof s.create>[0]) =>
        Effect.suspend(() => {
          at[1] = performance.now()
          return Effect.ensuring(
            s.create(record),
            Effect.sync(() => {
              at[2] = performance.now()
            })
          )
        }),
      update: (id: string, expected: number, patch: Parameters<typeof s.update>[2]) =>
        patch.status !== "completed"
          ? s.update(id, expected, patch)
          : Effect.suspend(() => {
              at[4] = performance.now()
              return Effect.ensuring(
                s.update(id, expected, patch),
                Effect.sync(() => {
                  at[5] = performance.now()
                })
              )
            })
    }))
  ).pipe(Layer.provide(store))

const { dir, cleanup } = scratchDir(`noop-phases-${kind}`)
try {
  const store = storeLayer(kind, dir, prefix, url)
  const rounds = phases.map(() => [] as Array<number>)
  await Effect.runPromise(
    Effect.gen(function* () {
      const runner = yield* TaskRunner.TaskRunner
      const perRound = kind === "memory" ? 1000 : 100
      // The runner in its steady state, as `noop.ts` measures it.
      for (let i = 0; i < warmupRuns; i++) yield* runner.run(Noop, {})
      for (let round = -2; round < 9; round++) {
        const sums = phases.map(() => 0)
        for (let i = 0; i < perRound; i++) {
          at[0] = performance.now()
          yield* runner.run(Noop, {})
          at[6] = performance.now()
          for (let p = 0; p < phases.length; p++) sums[p]! += at[p + 1]! - at[p]!
        }
        // Two rounds of warm-up, not counted.
        if (round >= 0) sums.forEach((sum, p) => rounds[p]!.push((sum * 1e3) / perRound))
      }
    }).pipe(Effect.provide(TaskRunner.layer({ tasks: [Noop] }).pipe(Layer.provide(timed(store)))), Effect.scoped)
  )
  const us = rounds.map(median)
  const inStore = us[1]! + us[4]!
  const total = us.reduce((a, b) => a + b, 0)
  console.log(
    `${kind}: ${phases.map((p, i) => `${p} ${us[i]!.toFixed(0)}`).join(" | ")} µs; ` +
      `in all ${total.toFixed(0)}, in the store ${inStore.toFixed(0)}, the runner ${(total - inStore).toFixed(0)}`
  )
} finally {
  cleanup()
  if (kind === "postgres") await dropTables(url, prefix)
}

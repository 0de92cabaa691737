/**
 * What a task costs besides its own work: sequential `runner.run` of a task that does nothing, on each store,
 * against one raw durable write of the same store (`raw.ts`), interleaved round by round. A task is created already
 * claimed and ends with one write: two writes' worth (0.5) is the ceiling; the target is 0.4. A third loop in each
 * round is the floor: those two writes of a task, raw, as the store makes them (`taskWrites*` in `raw.ts`).
 *
 * The rates are of a runner in its steady state: `warmupRuns` runs go first, uncounted. A run's code is many functions
 * called once or twice each, and V8 optimizes them only after some thousands of runs: in a fresh process the first 500
 * runs took two to four times as long each as those after 3,000 (`npx tsx bench/noop.ts --trend <memory|file|sqlite|
 * postgres>`: the mean time of a run, by 500 runs, from a fresh process).
 */
import { Effect, Layer, Schema } from "effect"
import { join } from "node:path"
import { Task, TaskRunner, TaskStore } from "../src/index.js"
import * as File from "../src/TaskStore/File.js"
import * as Postgres from "../src/TaskStore/Postgres.js"
import * as Sqlite from "../src/TaskStore/Sqlite.js"
import {
  dropTables,
  fileRaw,
  postgresRaw,
  type Raw,
  sqliteRaw,
  taskWritesFile,
  taskWritesPostgres,
  taskWritesSqlite
} from "./raw.js"
import { median, scratchDir } from "./util.js"

/** A task that does nothing: what a run costs besides its work. */
export const Noop = Task.make({
  name: "bench-noop",
  input: Schema.Struct({}),
  state: Schema.Struct({}),
  success: Schema.Number,
  initial: () => ({}),
  run: () => Effect.succeed(0)
})

/** `perRound` writes by `raw`, per second. */
const rate = (raw: Raw, perRound: number) =>
  Effect.promise(async () => {
    const start = process.hrtime.bigint()
    await raw.write(perRound)
    return (perRound * 1e9) / Number(process.hrtime.bigint() - start)
  })

/** Runs before the measured rounds, uncounted: about where the time of a run stops falling (`--trend`). */
export const warmupRuns = 3000

/** `floor` is made once the store is open: it writes in the store's own table. */
const measure = (
  store: Layer.Layer<TaskStore.TaskStore, unknown>,
  raw: Raw,
  floor: () => Promise<Raw>,
  rounds: number,
  perRound: number
) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const runner = yield* TaskRunner.TaskRunner
      const taskWrites = yield* Effect.acquireRelease(Effect.promise(floor), (w) =>
        Effect.promise(async () => w.close())
      )
      const tasks: Array<number> = []
      const raws: Array<number> = []
      const floors: Array<number> = []
      for (let i = 0; i < warmupRuns; i++) yield* runner.run(Noop, {})
      for (let r = -2; r < rounds; r++) {
        // Two rounds of warm-up for the raw loops too (the caches, the WAL), not counted.
        const rawRate = yield* rate(raw, perRound)
        const start = process.hrtime.bigint()
        for (let i = 0; i < perRound; i++) yield* runner.run(Noop, {})
        const taskRate = (perRound * 1e9) / Number(process.hrtime.bigint() - start)
        const floorRate = yield* rate(taskWrites, perRound)
        if (r >= 0) {
          raws.push(rawRate)
          tasks.push(taskRate)
          floors.push(floorRate)
        }
      }
      const perS = median(tasks)
      const rawPerS = median(raws)
      const floorPerS = median(floors)
      return {
        tasks_per_s: perS,
        raw_per_s: rawPerS,
        vs_raw: perS / rawPerS,
        floor_per_s: floorPerS,
        floor_vs_raw: floorPerS / rawPerS
      }
    }).pipe(Effect.provide(TaskRunner.layer({ tasks: [Noop] }).pipe(Layer.provide(store))), Effect.scoped)
  )

/** The store of `kind` the benchmark runs its tasks on, in `dir` (or under `prefix` on the server at `url`). */
export const storeLayer = (
  kind: "memory" | "file" | "sqlite" | "postgres",
  dir: string,
  prefix: string,
  url?: string
) =>
  kind === "memory"
    ? TaskStore.layerMemory
    : kind === "file"
      ? File.layer({ directory: join(dir, "store") })
      : kind === "sqlite"
        ? Sqlite.layer({ filename: join(dir, "store.db") })
        : Postgres.layer({ url: url!, tablePrefix: prefix })

/**
 * How the time of a run falls as the process warms up: `blocks` blocks of `perBlock` sequential runs from a fresh
 * runner on a fresh store, the mean µs of a run in each.
 */
export const noopTrend = async (
  kind: "memory" | "file" | "sqlite" | "postgres",
  url?: string,
  blocks = 10,
  perBlock = 500
) => {
  const { dir, cleanup } = scratchDir(`noop-trend-${kind}`)
  const prefix = `vltask_bench_t${process.pid}_`
  try {
    return await Effect.runPromise(
      Effect.gen(function* () {
        const runner = yield* TaskRunner.TaskRunner
        const means: Array<number> = []
        for (let b = 0; b < blocks; b++) {
          const start = process.hrtime.bigint()
          for (let i = 0; i < perBlock; i++) yield* runner.run(Noop, {})
          means.push(Number(process.hrtime.bigint() - start) / 1e3 / perBlock)
        }
        return means
      }).pipe(
        Effect.provide(TaskRunner.layer({ tasks: [Noop] }).pipe(Layer.provide(storeLayer(kind, dir, prefix, url)))),
        Effect.scoped
      )
    )
  } finally {
    cleanup()
    if (kind === "postgres") await dropTables(url!, prefix)
  }
}

export const noopTasks = async (
  kind: "file" | "sqlite" | "postgres",
  postgresUrl?: string,
  rounds = 7,
  perRound = 50
) => {
  const { dir, cleanup } = scratchDir(`noop-${kind}`)
  const prefix = `vltask_bench_n${process.pid}_`
  const raw =
    kind === "file" ? fileRaw(dir) : kind === "sqlite" ? sqliteRaw(dir) : await postgresRaw(postgresUrl!, prefix)
  if (raw === undefined) return undefined
  try {
    const store = storeLayer(kind, dir, prefix, postgresUrl)
    const floor = async (): Promise<Raw> =>
      kind === "file"
        ? taskWritesFile(dir)
        : kind === "sqlite"
          ? taskWritesSqlite(join(dir, "store.db"), "vltask_tasks")
          : (await taskWritesPostgres(postgresUrl!, `${prefix}tasks`))!
    return await measure(store, raw, floor, rounds, perRound)
  } finally {
    await raw.close()
    cleanup()
    if (kind === "postgres") await dropTables(postgresUrl!, prefix)
  }
}

if (import.meta.url === `file://${process.argv[1]}` && process.argv[2] === "--trend") {
  const kind = (process.argv[3] ?? "postgres") as "memory" | "file" | "sqlite" | "postgres"
  const means = await noopTrend(kind, process.env.VLTASK_BENCH_POSTGRES ?? "postgres://root@127.0.0.1:5432/test")
  for (const [b, us] of means.entries())
    console.log(`${kind}: runs ${b * 500}–${(b + 1) * 500}: ${us.toFixed(0)} µs each`)
} else if (import.meta.url === `file://${process.argv[1]}`) {
  console.log("file", await noopTasks("file"))
  console.log("sqlite", await noopTasks("sqlite"))
  console.log(
    "postgres",
    await noopTasks("postgres", process.env.VLTASK_BENCH_POSTGRES ?? "postgres://root@127.0.0.1:5432/test")
  )
}

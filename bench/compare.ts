/**
 * `npx tsx bench/compare.ts <build A> <build B> [noop|noop-id|checkpoint] [memory|file|sqlite]`: two builds of the library
 * (directories like `dist/esm`, e.g. one built from another commit) run the same work in one process, round by round
 * in alternating order, each round on a fresh store; prints the median µs per operation of each and B's time over A's.
 * On a machine whose speed moves by the minute, this tells a small change from noise where two separate runs of
 * `npm run bench` cannot.
 *
 * - `noop`: sequential `runner.run` of a task that does nothing.
 * - `noop-id`: the same, each run with an id of its own (`run(task, input, { id })`, as an idempotent caller does).
 * - `checkpoint`: one task checkpointing a 1 KiB state in a loop.
 */
import { Effect, Layer, Schema } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { join, resolve } from "node:path"
import { median, scratchDir } from "./util.js"

const [a, b] = [process.argv[2], process.argv[3]]
const work = (process.argv[4] ?? "noop") as "noop" | "noop-id" | "checkpoint"
const store = (process.argv[5] ?? "memory") as "memory" | "file" | "sqlite"
if (a === undefined || b === undefined) {
  process.stderr.write(
    "usage: npx tsx bench/compare.ts <build A> <build B> [noop|noop-id|checkpoint] [memory|file|sqlite]\n"
  )
  process.exit(2)
}

/** What the benchmark uses of a build (its types are the build's own, unknown here). */
interface Build {
  readonly index: any
  readonly File: any
  readonly Sqlite: any
}
const load = async (dir: string): Promise<Build> => {
  const at = (path: string) => import(resolve(dir, path))
  return { index: await at("index.js"), File: await at("TaskStore/File.js"), Sqlite: await at("TaskStore/Sqlite.js") }
}
const builds = [await load(a), await load(b)]

const noop = work === "noop" || work === "noop-id"
let ids = 0

const taskOf = (build: Build) =>
  noop
    ? build.index.Task.make({
        name: "bench-noop",
        input: Schema.Struct({}),
        state: Schema.Struct({}),
        success: Schema.Number,
        initial: () => ({}),
        run: () => Effect.succeed(0)
      })
    : build.index.Task.make({
        name: "bench-checkpoint",
        input: Schema.Struct({ n: Schema.Number }),
        state: Schema.Struct({ i: Schema.Number, pad: Schema.String }),
        success: Schema.Number,
        initial: () => ({ i: 0, pad: "x".repeat(1000) }),
        run: ({ n }: { n: number }, task: any) =>
          Effect.gen(function* () {
            for (let i = 0; i < n; i++) yield* task.checkpoint({ i, pad: task.state.pad })
            return n
          })
      })
const tasks = builds.map(taskOf)

const perRound = {
  noop: { memory: 300, file: 50, sqlite: 100 },
  "noop-id": { memory: 300, file: 50, sqlite: 100 },
  checkpoint: { memory: 2000, file: 200, sqlite: 500 }
}[work][store]
const rounds = 20
const { dir, cleanup } = scratchDir(`compare-${store}`)
const times: [Array<number>, Array<number>] = [[], []]
try {
  for (let round = 0; round < rounds; round++) {
    for (const i of round % 2 === 0 ? [0, 1] : [1, 0]) {
      const build = builds[i]!
      const task = tasks[i]
      const at = mkdtempSync(join(dir, "round-"))
      const layer =
        store === "memory"
          ? build.index.TaskStore.layerMemory
          : store === "file"
            ? build.File.layer({ directory: join(at, "store") })
            : build.Sqlite.layer({ filename: join(at, "store.db") })
      const one = (runner: any) =>
        work === "noop"
          ? runner.run(task, {})
          : work === "noop-id"
            ? runner.run(task, {}, { id: `noop-${ids++}` })
            : runner.run(task, { n: perRound })
      const us = await Effect.runPromise(
        Effect.gen(function* () {
          const runner = yield* build.index.TaskRunner.TaskRunner
          // A few runs first, not counted: the JIT, the store's first writes.
          for (let k = 0; k < 3; k++) yield* noop ? one(runner) : runner.run(task, { n: 20 })
          const start = process.hrtime.bigint()
          if (noop) for (let k = 0; k < perRound; k++) yield* one(runner)
          else yield* one(runner)
          return Number(process.hrtime.bigint() - start) / 1e3 / perRound
        }).pipe(
          Effect.provide(build.index.TaskRunner.layer({ tasks: [task] }).pipe(Layer.provide(layer))),
          Effect.scoped
        ) as Effect.Effect<number>
      )
      times[i]!.push(us)
      rmSync(at, { recursive: true, force: true })
    }
  }
} finally {
  cleanup()
}
const [ma, mb] = [median(times[0]), median(times[1])]
console.log(
  `${work} on ${store}, µs per ${noop ? "run" : "checkpoint"} (median of ${rounds} rounds): A ${ma.toFixed(1)} | B ${mb.toFixed(1)} | B/A ${(mb / ma).toFixed(3)}`
)

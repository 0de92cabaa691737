/**
 * What a task's checkpoints cost the other processes running tasks on the same store: `npx tsx bench/neighbours.ts
 * [file|sqlite] [checkpoints] [rounds]` (the file store by default). A child process runs one task that waits (its
 * runner follows the store's `changes`, as it does while any task runs there); this process then runs a task
 * checkpointing a 1 KiB state `checkpoints` times (default 2,000) on the same store, and afterwards waits as long again
 * with nothing written. The child reports the CPU time (user + system) it spent in each window; the difference is what
 * the neighbour's checkpoints cost it, printed as µs of its CPU per 1,000 of them (median of `rounds`, default 5). The
 * quiet window alone is printed too, as ms of CPU a second: what a process costs whose one task waits.
 *
 * With `VLTASK_BENCH_BUILD=<dir>` (a build like `dist/esm`, e.g. of another commit) both processes load the library
 * from there instead of `src/`.
 */
import { spawn } from "node:child_process"
import { join, resolve } from "node:path"
import { createInterface } from "node:readline"
import { median, scratchDir } from "./util.js"

const load = async () => {
  const build = process.env.VLTASK_BENCH_BUILD
  const from = (path: string) => (build === undefined ? `../src/${path}.js` : resolve(build, `${path}.js`))
  const { Effect, Layer, Schema } = await import("effect")
  const index = (await import(from("index"))) as typeof import("../src/index.js")
  const File = (await import(from("TaskStore/File"))) as typeof import("../src/TaskStore/File.js")
  const Sqlite = (await import(from("TaskStore/Sqlite"))) as typeof import("../src/TaskStore/Sqlite.js")
  const storeAt = (kind: string, dir: string) =>
    kind === "sqlite" ? Sqlite.layer({ filename: join(dir, "tasks.db") }) : File.layer({ directory: dir })
  return { Effect, Layer, Schema, ...index, storeAt }
}

/** The child: runs a waiting task on the store at `dir`, and prints its CPU time since the last mark at each line in. */
const child = async (kind: string, dir: string) => {
  const { Effect, Layer, Schema, Task, TaskRunner, storeAt } = await load()
  const Idle = Task.make({
    name: "bench-idle",
    input: Schema.Struct({}),
    state: Schema.Struct({}),
    success: Schema.Number,
    initial: () => ({}),
    run: () => Effect.never
  })
  const lines = createInterface({ input: process.stdin })
  await Effect.runPromise(
    Effect.gen(function* () {
      const runner = yield* TaskRunner.TaskRunner
      yield* runner.start(Idle, {})
      yield* Effect.promise(async () => {
        let mark = process.cpuUsage()
        process.stdout.write("ready\n")
        for await (const line of lines) {
          if (line !== "mark") break
          const used = process.cpuUsage(mark)
          mark = process.cpuUsage()
          process.stdout.write(`${used.user + used.system}\n`)
        }
      })
      process.exit(0)
    }).pipe(Effect.provide(TaskRunner.layer({ tasks: [Idle] }).pipe(Layer.provide(storeAt(kind, dir)))), Effect.scoped)
  )
}

const parent = async (kind: string, checkpoints: number, rounds: number) => {
  const { Effect, Layer, Schema, Task, TaskRunner, storeAt } = await load()
  const Busy = Task.make({
    name: "bench-busy",
    input: Schema.Struct({}),
    state: Schema.Struct({ i: Schema.Number, pad: Schema.String }),
    success: Schema.Number,
    initial: () => ({ i: 0, pad: "x".repeat(1000) }),
    run: (_, task) =>
      Effect.gen(function* () {
        for (let i = 0; i < checkpoints; i++) yield* task.checkpoint({ i, pad: task.state.pad })
        return checkpoints
      })
  })
  const costs: Array<number> = []
  const idle: Array<number> = []
  const { dir, cleanup } = scratchDir(`neighbours-${kind}`)
  try {
    for (let round = 0; round < rounds; round++) {
      const proc = spawn(process.execPath, ["--import", "tsx", import.meta.filename, "child", kind, dir], {
        stdio: ["pipe", "pipe", "inherit"]
      })
      const out = createInterface({ input: proc.stdout })[Symbol.asyncIterator]()
      const next = async () => (await out.next()).value as string
      if ((await next()) !== "ready") throw new Error("the child did not start its task")
      const mark = async () => {
        proc.stdin.write("mark\n")
        return Number(await next())
      }
      await mark()
      const start = Date.now()
      await Effect.runPromise(
        Effect.flatMap(TaskRunner.TaskRunner, (runner) => runner.run(Busy, {})).pipe(
          Effect.provide(TaskRunner.layer({ tasks: [Busy] }).pipe(Layer.provide(storeAt(kind, dir)))),
          Effect.scoped
        )
      )
      const busyMs = Date.now() - start
      const during = await mark()
      await new Promise((resolve) => setTimeout(resolve, busyMs))
      const quiet = await mark()
      proc.stdin.end()
      await new Promise((resolve) => proc.once("exit", resolve))
      costs.push(((during - quiet) / checkpoints) * 1000)
      idle.push(quiet / busyMs)
      console.log(
        `round ${round + 1}: ${checkpoints} checkpoints in ${busyMs} ms; the child's CPU ${during} µs during them, ${quiet} µs in as long after`
      )
    }
  } finally {
    cleanup()
  }
  console.log(`the child's CPU while nothing is written: ${median(idle).toFixed(1)} ms a second (median of ${rounds})`)
  console.log(
    `the neighbour's CPU per 1,000 checkpoints of a task in another process on the same ${kind} store: ${Math.round(median(costs))} µs (median of ${rounds})`
  )
}

if (process.argv[2] === "child") await child(process.argv[3]!, process.argv[4]!)
else {
  const args = process.argv.slice(2)
  const kind = args[0] === "file" || args[0] === "sqlite" ? args.shift()! : "file"
  await parent(kind, Number(args[0] ?? 2000), Number(args[1] ?? 5))
}

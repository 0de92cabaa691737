/**
 * Interrupt latency: from `cancel` in one process to the finalizer of the task another process runs. The owner hears
 * of the request through its store's changes (inotify on the file store's `.signals/`, SQLite's `data_version`,
 * Postgres `LISTEN/NOTIFY`), else at its next heartbeat (every second by default); this task writes only at
 * heartbeats, the worst case for the fallback.
 */
import { Effect, Layer, Schema } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { join } from "node:path"
import { Task, TaskRunner } from "../src/index.js"
import * as StoreUrl from "../src/StoreUrl.js"
import { dropTables } from "./raw.js"
import { median, scratchDir } from "./util.js"

const Sleeper = Task.make({
  name: "bench-sleeper",
  input: Schema.Struct({}),
  state: Schema.Struct({}),
  success: Schema.Number,
  initial: () => ({}),
  run: (_, task) =>
    Effect.gen(function* () {
      for (;;) {
        yield* Effect.sleep("50 millis")
        yield* task.progress(1)
      }
    }).pipe(Effect.ensuring(Effect.sync(() => process.stdout.write(`FINAL ${Date.now()}\n`))))
})

/** Runs in the child: `node --import tsx bench/interrupt.ts child URL ID`. */
const child = async (url: string, id: string) => {
  await Effect.runPromise(
    Effect.gen(function* () {
      const runner = yield* TaskRunner.TaskRunner
      yield* runner.start(Sleeper, {}, { id })
      process.stdout.write("STARTED\n")
      yield* Effect.never
    }).pipe(
      Effect.provide(TaskRunner.layer({ tasks: [Sleeper] }).pipe(Layer.provide(StoreUrl.layer(url)))),
      Effect.scoped
    )
  )
}

const lineFrom = (proc: ChildProcess, prefix: string) =>
  new Promise<string>((resolve, reject) => {
    let buffer = ""
    const timer = setTimeout(() => reject(new Error(`no ${prefix} line`)), 30_000)
    proc.stdout!.on("data", (d: Buffer) => {
      buffer += d.toString()
      const line = buffer.split("\n").find((l) => l.startsWith(prefix))
      if (line !== undefined) {
        clearTimeout(timer)
        resolve(line)
      }
    })
  })

/** `postgresUrl` is the server's (its own table prefix is added); `undefined` when no server answers. */
export const interruptLatency = async (kind: "file" | "sqlite" | "postgres", runs = 5, postgresUrl?: string) => {
  const { dir, cleanup } = scratchDir(`interrupt-${kind}`)
  const prefix = `vltask_bench_i${process.pid}_`
  const url =
    kind === "file"
      ? `file:${dir}`
      : kind === "sqlite"
        ? `sqlite:${join(dir, "i.db")}`
        : `${postgresUrl}${postgresUrl!.includes("?") ? "&" : "?"}vltask_prefix=${prefix}`
  const latencies: Array<number> = []
  try {
    await Effect.runPromise(
      Effect.gen(function* () {
        const runner = yield* TaskRunner.TaskRunner
        for (let r = 0; r < runs; r++) {
          const id = `sleeper-${r}`
          const proc = spawn(process.execPath, ["--import", "tsx", import.meta.filename, "child", url, id], {
            stdio: ["ignore", "pipe", "inherit"]
          })
          const final = lineFrom(proc, "FINAL ")
          yield* Effect.promise(() => lineFrom(proc, "STARTED"))
          // Land the cancel at a random moment of the heartbeat cycle.
          yield* Effect.sleep(300 + Math.random() * 1000)
          const start = Date.now()
          yield* runner.cancel(id)
          const line = yield* Effect.promise(() => final)
          latencies.push(Number(line.slice("FINAL ".length)) - start)
          proc.kill("SIGKILL")
          yield* Effect.ignore(runner.forget(id))
        }
      }).pipe(
        Effect.provide(TaskRunner.layer({ tasks: [Sleeper] }).pipe(Layer.provide(StoreUrl.layer(url)))),
        Effect.scoped
      )
    )
    return { median: median(latencies), max: Math.max(...latencies) }
  } finally {
    cleanup()
    if (kind === "postgres") await dropTables(postgresUrl!, prefix)
  }
}

if (process.argv[2] === "child") await child(process.argv[3]!, process.argv[4]!)
else if (import.meta.url === `file://${process.argv[1]}`) {
  console.log("file", await interruptLatency("file"))
  console.log("sqlite", await interruptLatency("sqlite"))
  console.log(
    "postgres",
    await interruptLatency("postgres", 5, process.env.VLTASK_BENCH_POSTGRES ?? "postgres://root@127.0.0.1:5432/test")
  )
}

/**
 * Workers on Postgres:
 * - throughput: 2,000 queued no-op tasks drained by one worker at concurrency 16, against the raw single-row `UPDATE`
 *   rate measured in the same run (before and after);
 * - claim latency: submit → the task starts on an idle worker (another runner submits, as another process would);
 * - takeover on the same host: a worker process is SIGKILLed while it runs a task; an idle worker with `takeover`
 *   here resumes it.
 */
import { Context, Deferred, Effect, Exit, Layer, Schema, Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import pg from "pg"
import { Task, TaskRunner } from "../src/index.js"
import * as Postgres from "../src/TaskStore/Postgres.js"
import { dropTables, postgresRaw } from "./raw.js"
import { median } from "./util.js"

const Noop = Task.make({
  name: "bench-worker-noop",
  input: Schema.Struct({}),
  state: Schema.Struct({}),
  success: Schema.Number,
  initial: () => ({}),
  run: () => Effect.succeed(0)
})

/** When each task id started here, and who waits for that. */
const started = new Map<string, number>()
const waiting = new Map<string, Deferred.Deferred<void>>()
const markStarted = (id: string) =>
  Effect.suspend(() => {
    started.set(id, Date.now())
    const w = waiting.get(id)
    return w === undefined ? Effect.void : Deferred.succeed(w, undefined)
  })

/** Records when it starts (and says so on stdout in a child process), then runs until stopped. */
const Sleepy = Task.make({
  name: "bench-worker-sleepy",
  input: Schema.Struct({}),
  state: Schema.Struct({}),
  success: Schema.Number,
  initial: () => ({}),
  leaseDuration: "30 seconds",
  run: (_, task) =>
    Effect.gen(function* () {
      yield* markStarted(task.id)
      if (process.argv[2] === "child") process.stdout.write(`STARTED ${task.id}\n`)
      return yield* Effect.never
    })
})

const tasks = [Noop, Sleepy]
const layer = (url: string, prefix: string) =>
  TaskRunner.layer({ tasks }).pipe(Layer.provide(Postgres.layer({ url, tablePrefix: prefix })))

/** A runner in a scope of its own. */
const openRunner = (url: string, prefix: string) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(layer(url, prefix), scope)
    return { runner: Context.get(context, TaskRunner.TaskRunner), scope }
  })

/** The child: one worker of `Sleepy` tasks until killed. */
const child = async (url: string, prefix: string) => {
  await Effect.runPromise(
    Effect.gen(function* () {
      const { runner } = yield* openRunner(url, prefix)
      yield* runner.work({ kinds: [Sleepy.name], concurrency: 1 }).pipe(Scope.extend(yield* Scope.make()))
      process.stdout.write("READY\n")
      return yield* Effect.never
    })
  )
}

const spawnChild = (url: string, prefix: string) =>
  new Promise<{ child: ChildProcess; lines: Array<string> }>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", import.meta.filename, "child", url, prefix], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    const lines: Array<string> = []
    let buffer = ""
    child.stdout!.on("data", (d: Buffer) => {
      buffer += d.toString()
      const parts = buffer.split("\n")
      buffer = parts.pop()!
      for (const line of parts) {
        lines.push(line)
        if (line === "READY") resolve({ child, lines })
      }
    })
    child.on("exit", (code) => reject(new Error(`the bench worker child exited (${code})`)))
  })

/** Counts the completed tasks of the bench's tables, on a connection of its own. */
const completedCounter = async (url: string, prefix: string) => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  return {
    count: async () =>
      (await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${prefix}tasks WHERE status = 'completed'`))
        .rows[0]!.n,
    close: () => client.end()
  }
}

export interface WorkerResult {
  readonly tasks_per_s: number
  readonly raw_per_s: number
  readonly vs_raw: number
  readonly claim_latency_ms: number
  readonly takeover_same_host_ms: number
}

export const workerBench = async (url: string, drain = 2000): Promise<WorkerResult | undefined> => {
  const prefix = `vltask_bench_w${process.pid}_`
  const raw = await postgresRaw(url, prefix)
  if (raw === undefined) return undefined
  // The server's commit time drifts: the raw rate is the median of five rounds before the drain and five after.
  const rawRates: Array<number> = []
  const rawRounds = async () => {
    for (let r = 0; r < 5; r++) {
      const n = 200
      const start = process.hrtime.bigint()
      await raw.write(n)
      rawRates.push((n * 1e9) / Number(process.hrtime.bigint() - start))
    }
  }
  try {
    await raw.write(100) // warm-up
    await rawRounds()
    const result = await Effect.runPromise(
      Effect.gen(function* () {
        const submitter = yield* openRunner(url, prefix)
        const worker = yield* openRunner(url, prefix)

        // Throughput: the queue is filled first, then drained.
        const ids = yield* Effect.forEach(Array.from({ length: drain }), () => submitter.runner.submit(Noop, {}), {
          concurrency: 8
        })
        const workScope = yield* Scope.make()
        const counter = yield* Effect.promise(() => completedCounter(url, prefix))
        const t0 = process.hrtime.bigint()
        yield* worker.runner.work({ kinds: [Noop.name], concurrency: 16 }).pipe(Scope.extend(workScope))
        // Done when every task is stored completed (one count a few times a second, not an await per task).
        while ((yield* Effect.promise(counter.count)) < ids.length) yield* Effect.sleep("20 millis")
        const tasksPerS = (drain * 1e9) / Number(process.hrtime.bigint() - t0)
        yield* Effect.promise(counter.close)

        // Claim latency: the worker is idle now; each submit should start a task at once.
        yield* worker.runner.work({ kinds: [Sleepy.name], concurrency: 1 }).pipe(Scope.extend(workScope))
        const latencies: Array<number> = []
        for (let i = 0; i < 20; i++) {
          yield* Effect.sleep("100 millis")
          const id = `latency-${i}`
          const w = yield* Deferred.make<void>()
          waiting.set(id, w)
          const asked = Date.now()
          yield* submitter.runner.submit(Sleepy, {}, { id })
          yield* Deferred.await(w).pipe(Effect.timeout("10 seconds"))
          latencies.push(started.get(id)! - asked)
          yield* worker.runner.cancel(id)
        }
        yield* Scope.close(workScope, Exit.void)
        yield* Scope.close(worker.scope, Exit.void)
        return { tasksPerS, claimLatency: median(latencies), submitter }
      })
    )
    await rawRounds()
    const rawPerS = median(rawRates)

    // Takeover on this host: a child worker runs a task and is SIGKILLed; an idle worker here takes it over.
    const takeovers: Array<number> = []
    for (let round = 0; round < 3; round++) {
      const { child: worker, lines } = await spawnChild(url, prefix)
      const ms = await Effect.runPromise(
        Effect.gen(function* () {
          const id = `takeover-${round}`
          yield* result.submitter.runner.submit(Sleepy, {}, { id })
          while (!lines.includes(`STARTED ${id}`)) yield* Effect.sleep("10 millis")
          const rescuer = yield* openRunner(url, prefix)
          yield* rescuer.runner.work({ kinds: [Sleepy.name], concurrency: 1, takeover: true })
          // Idle for a while, as a worker waiting for work is.
          yield* Effect.sleep("1200 millis")
          const w = yield* Deferred.make<void>()
          waiting.set(id, w)
          worker.kill("SIGKILL")
          const killedAt = Date.now()
          yield* Deferred.await(w).pipe(Effect.timeout("60 seconds"))
          const took = started.get(id)! - killedAt
          yield* rescuer.runner.cancel(id)
          return took
        }).pipe(Effect.scoped)
      )
      takeovers.push(ms)
    }
    await Effect.runPromise(Scope.close(result.submitter.scope, Exit.void))
    return {
      tasks_per_s: result.tasksPerS,
      raw_per_s: rawPerS,
      vs_raw: result.tasksPerS / rawPerS,
      claim_latency_ms: result.claimLatency,
      takeover_same_host_ms: median(takeovers)
    }
  } finally {
    await raw.close()
    await dropTables(url, prefix)
  }
}

if (process.argv[2] === "child") await child(process.argv[3]!, process.argv[4]!)
else if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(await workerBench(process.env.VLTASK_BENCH_POSTGRES ?? "postgres://root@127.0.0.1:5432/test"))
}

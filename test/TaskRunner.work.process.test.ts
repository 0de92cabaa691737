/**
 * Workers as real `vltask worker` processes sharing one real Postgres store: they drain a queue with every task run
 * exactly once; a SIGKILLed worker's tasks are taken over by another from their last checkpoints; SIGTERM hands a
 * worker's tasks back to the queue and another worker has them within a second. Each task records its runs as files
 * (see `fixtures/worker.config.ts`), which the tests count.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Scope } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import pg from "pg"
import { TaskRunner } from "../src/index.js"
import * as StoreUrl from "../src/StoreUrl.js"
import { Job } from "./fixtures/worker.config.js"
import { dropTables, freshUrl, postgresAvailable, postgresUrl } from "./helpers/postgres.js"
import { startPrivatePostgres } from "./helpers/privatePostgres.js"

const postgres = await postgresAvailable()
const repo = resolve(import.meta.dirname, "..")
const bin = join(repo, "dist", "esm", "bin.js")
let work: string

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "vltask-workers-"))
})
afterAll(async () => {
  rmSync(work, { recursive: true, force: true })
  if (postgres) await dropTables()
})

interface Worker {
  readonly child: ChildProcess
  readonly output: () => string
  readonly exited: Promise<number | null>
}

/** Starts `vltask worker` on `url`, its runs recorded in `runs`; resolves once it says it is running. */
const startWorker = async (url: string, runs: string, args: ReadonlyArray<string>): Promise<Worker> => {
  const child = spawn(process.execPath, [bin, "worker", "--store", url, ...args], {
    cwd: work,
    env: {
      ...process.env,
      VLTASK_CONFIG: join(repo, "test", "fixtures", "worker.config.ts"),
      VLTASK_TEST_RUNS: runs
    },
    stdio: ["ignore", "pipe", "pipe"]
  })
  let out = ""
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()))
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()))
  const exited = new Promise<number | null>((r) => child.on("close", (code) => r(code)))
  const deadline = Date.now() + 20_000
  while (!out.includes("running up to")) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the worker did not start: ${out}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  return { child, output: () => out, exited }
}

/** A runner of this test process on `url` (to submit and to await), open until the test process ends. */
const submitter = (url: string) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        TaskRunner.layer({ tasks: [Job] }).pipe(Layer.provide(StoreUrl.layer(url))),
        scope
      )
      return { runner: Context.get(context, TaskRunner.TaskRunner), scope }
    })
  )

/** The prefix of the tables of a store URL made by `freshUrl`. */
const prefixOf = (url: string) => new URL(url).searchParams.get("vltask_prefix")!

/** Counts of tasks by status, straight from the table. */
const statusCounts = async (url: string): Promise<Record<string, number>> => {
  const client = new pg.Client({ connectionString: postgresUrl })
  await client.connect()
  try {
    const { rows } = await client.query<{ status: string; n: number }>(
      `SELECT status, count(*)::int AS n FROM ${prefixOf(url)}tasks GROUP BY status`
    )
    return Object.fromEntries(rows.map((r) => [r.status, r.n]))
  } finally {
    await client.end()
  }
}

const waitFor = async (check: () => Promise<boolean>, what: string, ms: number, everyMs = 50) => {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** Waits until every task of `ids` runs and has written at least `revision` revisions (started, checkpointed). */
const waitRunning = (
  runner: TaskRunner.TaskRunner["Type"],
  ids: ReadonlyArray<string>,
  revision: number,
  what: string
) =>
  waitFor(
    async () => {
      const infos = await Effect.runPromise(Effect.forEach(ids, (id) => runner.status(id)))
      return infos.every((i) => i.status === "running" && i.revision >= revision)
    },
    what,
    20_000
  )

/** The run files of `runs`, parsed. */
const runFiles = (runs: string) =>
  readdirSync(runs).map((name) => {
    const [id, what, ...rest] = name.split(".")
    return what === "start"
      ? { id: id!, what, attempt: Number(rest[0]), pid: Number(rest[1]), from: Number(rest[2]) }
      : { id: id!, what: what!, attempt: 0, pid: Number(rest[0]), from: 0 }
  })

const stopAll = async (workers: ReadonlyArray<Worker>) => {
  for (const w of workers) w.child.kill("SIGKILL")
  await Promise.all(workers.map((w) => w.exited))
}

/** Runs `vltask` to its end. */
const vltask = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: work,
      env: { ...process.env, VLTASK_CONFIG: join(repo, "test", "fixtures", "worker.config.ts"), ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()))
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  })

describe("vltask submit and worker on the file store", () => {
  it.live("queued tasks run in a worker by priority; a delayed one waits; show says until when", () =>
    Effect.promise(async () => {
      const store = `file:${join(work, "file-queue")}`
      const runs = join(work, "file-runs")
      mkdirSync(runs)
      const env = { VLTASK_STORE: store, VLTASK_TEST_RUNS: runs }
      const input = '{"steps":1,"ms":1}'
      const submit = async (args: ReadonlyArray<string>) => {
        const out = await vltask(["submit", "job", "--input", input, "--json", ...args], env)
        assert.strictEqual(out.code, 0, out.stderr)
        return (JSON.parse(out.stdout) as { id: string }).id
      }
      const low = await submit(["--id", "low"])
      const high = await submit(["--id", "high", "--priority", "5"])
      const later = await submit(["--id", "later", "--delay", "1h"])
      const shown = await vltask(["show", later], env)
      assert.match(shown.stdout, /not before .*\(in 59:5\d|not before .*\(in 1:00:00/)
      const worker = await startWorker(store, runs, ["--concurrency", "1"])
      try {
        await waitFor(
          async () => runFiles(runs).filter((f) => f.what === "done").length === 2,
          "two tasks done",
          20_000
        )
        // One at a time: the one of higher priority first, though it was queued second.
        const startedAt = (id: string) => {
          const name = readdirSync(runs).find((n) => n.startsWith(`${id}.start.`))!
          return statSync(join(runs, name)).mtimeMs
        }
        assert.isBelow(startedAt(high), startedAt(low))
        const list = await vltask(["list", "--json"], env)
        const statuses = Object.fromEntries(
          (JSON.parse(list.stdout) as Array<{ id: string; status: string }>).map((t) => [t.id, t.status])
        )
        assert.deepStrictEqual(statuses, { high: "completed", later: "pending", low: "completed" })
      } finally {
        await stopAll([worker])
      }
    })
  )
})

describe.skipIf(!postgres)("vltask worker on Postgres (processes)", () => {
  it.live("4 workers × concurrency 8 drain 2,000 tasks: each runs once and completes once; none is left", () =>
    Effect.promise(async () => {
      const url = freshUrl()
      const runs = join(work, "drain")
      mkdirSync(runs)
      const { runner } = await submitter(url)
      const workers = await Promise.all([1, 2, 3, 4].map(() => startWorker(url, runs, ["--concurrency", "8"])))
      try {
        await Effect.runPromise(
          Effect.forEach(Array.from({ length: 2000 }), () => runner.submit(Job, { steps: 3, ms: 2 }), {
            concurrency: 8,
            discard: true
          })
        )
        await waitFor(async () => (await statusCounts(url)).completed === 2000, "2,000 completed tasks", 240_000)
        const counts = await statusCounts(url)
        assert.deepStrictEqual(counts, { completed: 2000 })
        const files = runFiles(runs)
        const starts = files.filter((f) => f.what === "start")
        const dones = files.filter((f) => f.what === "done")
        assert.strictEqual(new Set(starts.map((f) => f.id)).size, 2000)
        assert.strictEqual(starts.length, 2000, "no task ran twice")
        assert.strictEqual(dones.length, 2000, "every task completed once")
        // The work was shared: every worker ran some.
        assert.strictEqual(new Set(starts.map((f) => f.pid)).size, 4)
      } finally {
        await stopAll(workers)
      }
    })
  )

  it.live("a SIGKILLed worker's tasks are taken over at once on this host, from their last checkpoints", () =>
    Effect.promise(async () => {
      const url = freshUrl()
      const runs = join(work, "kill")
      mkdirSync(runs)
      const { runner } = await submitter(url)
      const victim = await startWorker(url, runs, ["--concurrency", "4"])
      const ids = await Effect.runPromise(
        Effect.forEach(Array.from({ length: 4 }), () => runner.submit(Job, { steps: 40, ms: 25 }))
      )
      // Every task started in the victim and checkpointed a few times.
      await waitRunning(runner, ids, 5, "the victim to be well into its tasks")
      victim.child.kill("SIGKILL")
      await victim.exited
      const killedAt = Date.now()
      const rescuer = await startWorker(url, runs, ["--concurrency", "4", "--takeover"])
      try {
        // (Not `await`: in the moment between the kill and the takeover, an awaiter sees the task stale and stops.)
        await waitFor(async () => (await statusCounts(url)).completed === 4, "the four tasks to complete", 30_000)
        const files = runFiles(runs)
        for (const id of ids) {
          const starts = files.filter((f) => f.id === id && f.what === "start").sort((a, b) => a.attempt - b.attempt)
          assert.strictEqual(starts.length, 2, `${id}: run by the victim, then by the rescuer`)
          assert.strictEqual(starts[0]!.pid, victim.child.pid)
          assert.strictEqual(starts[1]!.pid, rescuer.child.pid)
          assert.isAbove(starts[1]!.from, 0, `${id}: resumed from its checkpoint`)
          assert.strictEqual(files.filter((f) => f.id === id && f.what === "done").length, 1)
        }
        // Taken over at once (well within the 3 s lease), not after the lease ran out.
        assert.isBelow(Date.now() - killedAt, 15_000)
      } finally {
        await stopAll([rescuer])
      }
    })
  )

  it.live("a frozen (SIGSTOPped) worker's tasks are taken over after their lease; its late writes are fenced", () =>
    Effect.promise(async () => {
      const url = freshUrl()
      const runs = join(work, "stop")
      mkdirSync(runs)
      const { runner } = await submitter(url)
      const frozen = await startWorker(url, runs, ["--concurrency", "2"])
      const ids = await Effect.runPromise(
        Effect.forEach(Array.from({ length: 2 }), () => runner.submit(Job, { steps: 150, ms: 20 }))
      )
      await waitRunning(runner, ids, 5, "the frozen worker to be well into both tasks")
      frozen.child.kill("SIGSTOP")
      const rescuer = await startWorker(url, runs, ["--concurrency", "2", "--takeover"])
      try {
        // Its holder is alive (only frozen): the tasks are taken over once their 3 s lease has run out.
        await waitFor(
          async () => {
            const files = runFiles(runs)
            return ids.every((id) =>
              files.some((f) => f.id === id && f.what === "start" && f.pid === rescuer.child.pid)
            )
          },
          "the rescuer to take both tasks over",
          20_000
        )
        const revisions = await Effect.runPromise(Effect.forEach(ids, (id) => runner.status(id)))
        frozen.child.kill("SIGCONT")
        await waitFor(async () => (await statusCounts(url)).completed === 2, "both tasks to complete", 30_000)
        const files = runFiles(runs)
        for (const [i, id] of ids.entries()) {
          assert.strictEqual(files.filter((f) => f.id === id && f.what === "done").length, 1, id)
          assert.isFalse(
            files.some((f) => f.id === id && f.what === "done" && f.pid === frozen.child.pid),
            `${id}: the frozen worker did not finish it`
          )
          const info = await Effect.runPromise(runner.status(id))
          assert.strictEqual(info.lease, undefined)
          assert.isAbove(info.revision, revisions[i]!.revision)
        }
        // Woken, it found its leases gone and stopped those runs without writing; it keeps serving.
        assert.isNull(frozen.child.exitCode)
      } finally {
        await stopAll([rescuer, frozen])
      }
    })
  )

  it.live("a cancel from another process reaches a task in a worker within 100 ms (median of 20)", () =>
    Effect.promise(async () => {
      const url = freshUrl()
      const runs = join(work, "cancel")
      mkdirSync(runs)
      const { runner } = await submitter(url)
      const worker = await startWorker(url, runs, ["--concurrency", "2"])
      try {
        const latencies: Array<number> = []
        for (let i = 0; i < 20; i++) {
          const id = await Effect.runPromise(runner.submit(Job, { steps: 10_000, ms: 10 }))
          await waitFor(
            async () => (await Effect.runPromise(runner.status(id))).status === "running",
            "the task to start",
            10_000
          )
          const asked = Date.now()
          await Effect.runPromise(runner.cancel(id))
          // Looked at every 5 ms, so that the figure is the cancel's, not the polling's.
          await waitFor(
            async () => (await Effect.runPromise(runner.status(id))).status === "cancelled",
            "the cancel to be recorded",
            10_000,
            5
          )
          latencies.push(Date.now() - asked)
        }
        latencies.sort((a, b) => a - b)
        const median = (latencies[9]! + latencies[10]!) / 2
        assert.isAtMost(median, 100, `latencies: ${latencies.join(", ")} ms`)
      } finally {
        await stopAll([worker])
      }
    })
  )

  it.live("SIGTERM hands a worker's tasks back to the queue; another worker has them within a second", () =>
    Effect.promise(async () => {
      const url = freshUrl()
      const runs = join(work, "term")
      mkdirSync(runs)
      const { runner } = await submitter(url)
      const leaving = await startWorker(url, runs, ["--concurrency", "3"])
      const ids = await Effect.runPromise(
        Effect.forEach(Array.from({ length: 3 }), () => runner.submit(Job, { steps: 200, ms: 20 }))
      )
      await waitRunning(runner, ids, 3, "the leaving worker to run all three")
      const staying = await startWorker(url, runs, ["--concurrency", "3"])
      try {
        const termAt = Date.now()
        leaving.child.kill("SIGTERM")
        assert.strictEqual(await leaving.exited, 0, leaving.output())
        await waitFor(
          async () => {
            const files = runFiles(runs)
            return ids.every((id) =>
              files.some((f) => f.id === id && f.what === "start" && f.pid === staying.child.pid)
            )
          },
          "the staying worker to run all three",
          5_000
        )
        assert.isBelow(Date.now() - termAt, 1000, "within a second of the signal")
        const files = runFiles(runs)
        for (const id of ids) {
          const second = files.find((f) => f.id === id && f.what === "start" && f.pid === staying.child.pid)!
          assert.isAbove(second.from, 0, `${id}: continued from its checkpoint`)
        }
      } finally {
        await stopAll([staying])
      }
    })
  )
})

describe("vltask worker through a Postgres restart (a private server)", () => {
  it.live("the server restarts mid-run: no task is lost, restarted or completed twice; every task completes", () =>
    Effect.promise(async () => {
      const server = await startPrivatePostgres()
      if (server === undefined) {
        if (process.env.CI === "true") throw new Error("no Postgres server binaries (initdb, pg_ctl) on this machine")
        process.stdout.write("Skipping the Postgres restart test: no server binaries (initdb, pg_ctl).\n")
        return
      }
      const workers: Array<Worker> = []
      try {
        const url = `${server.url}?vltask_prefix=vltask_restart_`
        const runs = join(work, "restart")
        mkdirSync(runs)
        const { runner } = await submitter(url)
        for (let i = 0; i < 2; i++) workers.push(await startWorker(url, runs, ["--concurrency", "4", "--takeover"]))
        const ids = await Effect.runPromise(
          Effect.forEach(Array.from({ length: 24 }), () => runner.submit(Job, { steps: 30, ms: 20 }))
        )
        const done = () => runFiles(runs).filter((f) => f.what === "done")
        await waitFor(async () => done().length >= 4, "a few tasks to complete", 30_000)
        // Down for well under the tasks' 3 s lease: the runs under way ride it out.
        server.stop()
        await new Promise((r) => setTimeout(r, 500))
        server.start()
        await waitFor(async () => done().length >= ids.length, "every task to complete after the restart", 90_000)
        // Give a late duplicate the time to show, then count.
        await new Promise((r) => setTimeout(r, 1000))
        const completions = done()
        for (const id of ids) assert.strictEqual(completions.filter((f) => f.id === id).length, 1, id)
        // Not even restarted: each checkpoint that met the outage was tried again until the server was back.
        const starts = runFiles(runs).filter((f) => f.what === "start")
        for (const id of ids) assert.strictEqual(starts.filter((f) => f.id === id).length, 1, `${id} ran once`)
        const infos = await Effect.runPromise(Effect.forEach(ids, (id) => runner.status(id)))
        assert.deepStrictEqual(
          infos.map((i) => i.status),
          ids.map(() => "completed")
        )
      } finally {
        await stopAll(workers)
        server.destroy()
      }
    })
  )
})

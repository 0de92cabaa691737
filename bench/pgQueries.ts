/**
 * `npx tsx bench/pgQueries.ts [checkpoint|noop]`: on Postgres, how long `pg` takes to answer each statement the runner
 * issues, inside a loop of the runner's work, against the whole of that work and against the same statements made
 * raw in the same process (`raw.ts`: `checkpointWritesPostgres`, `taskWritesPostgres`). The difference between a
 * statement's time and the work's is what the runner and the store do around it. Every `pg` query is timed from its
 * call to its answer (`pg.Client.prototype.query` wrapped), by the start of its text.
 *
 * - `checkpoint`: a task checkpointing a 1 KiB state, three rounds of 2,000, each followed by 2,000 of the store's
 *   checkpoint statement made raw.
 * - `noop`: 2,000 sequential `runner.run` of a task that does nothing (after `noop.ts`'s warm-up), then 2,000 of its
 *   two writes made raw.
 */
import { Effect, Layer, Schema } from "effect"
import pg from "pg"
import { Task, TaskRunner } from "../src/index.js"
import * as Postgres from "../src/TaskStore/Postgres.js"
import { Noop, warmupRuns } from "./noop.js"
import { checkpointWritesPostgres, dropTables, type Raw, taskWritesPostgres } from "./raw.js"

const work = (process.argv[2] ?? "checkpoint") as "checkpoint" | "noop"
const url = process.env.VLTASK_BENCH_POSTGRES ?? "postgres://root@127.0.0.1:5432/test"
const prefix = `vltask_bench_q${process.pid}_`
const n = 2000

/** Total answer time and count of the statements timed since the last `take`, by the first words of their text. */
let timed = new Map<string, { n: number; ms: number }>()
const take = () => {
  const taken = timed
  timed = new Map()
  return taken
}
type Query = (this: pg.Client, query: unknown, ...rest: Array<unknown>) => unknown
const query = pg.Client.prototype.query as unknown as Query
;(pg.Client.prototype as unknown as { query: Query }).query = function (q, ...rest) {
  const answer = query.call(this, q, ...rest)
  const text = typeof q === "string" ? q : (q as { text?: unknown } | undefined)?.text
  if (typeof text === "string" && answer instanceof Promise) {
    const key = text
      .replace(/"[^"]*"/g, "")
      .split(/\s+/)
      .slice(0, 2)
      .join(" ")
    const start = performance.now()
    answer.then(
      () => {
        const t = timed.get(key) ?? { n: 0, ms: 0 }
        t.n++
        t.ms += performance.now() - start
        timed.set(key, t)
      },
      () => {}
    )
  }
  return answer
}

/** Each statement's mean answer time in µs, per `per` operations. */
const show = (label: string, us: number, statements: Map<string, { n: number; ms: number }>, per: number) =>
  console.log(
    `${label}: ${us.toFixed(0)} µs each; ` +
      Array.from(
        statements,
        ([key, t]) => `${key} ×${(t.n / per).toFixed(2)} ${((t.ms * 1e3) / t.n).toFixed(0)} µs`
      ).join(", ")
  )

const timeRaw = (raw: Raw) =>
  Effect.promise(async () => {
    take()
    const start = performance.now()
    await raw.write(n)
    return ((performance.now() - start) * 1e3) / n
  })

const pad = "x".repeat(1008)
const utf8 = new TextEncoder()

const Checkpointer = Task.make({
  name: "bench-pg-checkpoint",
  input: Schema.Struct({}),
  state: Schema.Struct({ i: Schema.Int, pad: Schema.String }),
  success: Schema.Number,
  initial: () => ({ i: 0, pad }),
  run: (_, task) =>
    Effect.gen(function* () {
      const raw = yield* Effect.acquireRelease(
        Effect.promise(
          async () =>
            (await checkpointWritesPostgres(url, `${prefix}tasks`, (i) => utf8.encode(JSON.stringify({ i, pad }))))!
        ),
        (raw) => Effect.promise(async () => raw.close())
      )
      for (let round = 0; round < 3; round++) {
        take()
        const start = performance.now()
        for (let i = 0; i < n; i++) yield* task.checkpoint({ i, pad })
        show("checkpoint", ((performance.now() - start) * 1e3) / n, take(), n)
        const us = yield* timeRaw(raw)
        show("  its statement raw", us, take(), n)
      }
      return 0
    })
})

try {
  await Effect.runPromise(
    Effect.gen(function* () {
      const runner = yield* TaskRunner.TaskRunner
      if (work === "checkpoint") {
        yield* runner.run(Checkpointer, {})
        return
      }
      // The runner in its steady state, as `noop.ts` measures it.
      for (let i = 0; i < warmupRuns; i++) yield* runner.run(Noop, {})
      take()
      const start = performance.now()
      for (let i = 0; i < n; i++) yield* runner.run(Noop, {})
      show("no-op run", ((performance.now() - start) * 1e3) / n, take(), n)
      const raw = yield* Effect.acquireRelease(
        Effect.promise(async () => (await taskWritesPostgres(url, `${prefix}tasks`))!),
        (raw) => Effect.promise(async () => raw.close())
      )
      show("  its two writes raw", yield* timeRaw(raw), take(), n)
    }).pipe(
      Effect.provide(
        TaskRunner.layer({ tasks: [Checkpointer, Noop] }).pipe(
          Layer.provide(Postgres.layer({ url, tablePrefix: prefix }))
        )
      ),
      Effect.scoped
    )
  )
} finally {
  await dropTables(url, prefix)
}

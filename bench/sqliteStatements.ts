/**
 * `npx tsx bench/sqliteStatements.ts [rounds] [skip]`: on SQLite, how long better-sqlite3 takes to run the statement
 * of each checkpoint inside the runner's loop, against the same statement made raw in the same process (`raw.ts`:
 * `checkpointWritesSqlite`, on the same database file), back to back and inside one Effect step each. Every
 * statement's `run` is timed from its call to its return (`Statement.prototype.run` wrapped), by its first words.
 *
 * What the runner adds to a checkpoint splits in two: its own JavaScript (the work's time less the statement's), and
 * what that JavaScript does to the statement after it (the statement's time in the runner's loop less its time raw):
 * the CPU's caches, cold after the JavaScript and the fsync, as `spacing.ts` shows for a raw write with work between.
 *
 * With `skip`, the checkpoints' `UPDATE`s are not run at all (their `run` answers one row changed at once, and the
 * store goes on from the revision it knows): what is left is each loop's JavaScript alone, warm, with no I/O between,
 * 20 times as many per round.
 */
import Database from "better-sqlite3"
import { Effect, Layer, Schema } from "effect"
import { join } from "node:path"
import { Task, TaskRunner } from "../src/index.js"
import * as Sqlite from "../src/TaskStore/Sqlite.js"
import { checkpointWritesSqlite, type Raw } from "./raw.js"
import { scratchDir } from "./util.js"

const rounds = Number(process.argv[2] ?? 6)
const skip = process.argv[3] === "skip"
const n = skip ? 20_000 : 1000

/** Total run time and count of the statements timed since the last `take`, by the first words of their text. */
let timed = new Map<string, { n: number; ms: number }>()
const take = () => {
  const taken = timed
  timed = new Map()
  return taken
}
type Run = (this: Database.Statement, ...params: Array<unknown>) => Database.RunResult
const probe = new Database(":memory:")
const statementPrototype = Object.getPrototypeOf(probe.prepare("SELECT 1")) as { run: Run }
probe.close()
const run = statementPrototype.run
/** A statement's key, its first words: made once per statement, outside the time it is charged. */
const keys = new WeakMap<Database.Statement, string>()
const keyOf = (statement: Database.Statement) => {
  let key = keys.get(statement)
  if (key === undefined) {
    key = statement.source
      .replace(/"[^"]*"/g, "")
      .trim()
      .split(/\s+/)
      .slice(0, 2)
      .join(" ")
    keys.set(statement, key)
  }
  return key
}
/** What a skipped `UPDATE` answers: one row changed, as the store expects of a write from the revision it knows. */
const skipped: Database.RunResult = { changes: 1, lastInsertRowid: 0 }
statementPrototype.run = function (...params) {
  const start = performance.now()
  try {
    return skip && this.source.startsWith("UPDATE") ? skipped : run.apply(this, params)
  } finally {
    const ms = performance.now() - start
    const key = keyOf(this)
    const t = timed.get(key) ?? { n: 0, ms: 0 }
    t.n++
    t.ms += ms
    timed.set(key, t)
  }
}

/** One line: µs per operation, the statements' share of it, and what is left around them. */
const show = (label: string, us: number, statements: Map<string, { n: number; ms: number }>) => {
  const inStatements = (Array.from(statements.values()).reduce((sum, t) => sum + t.ms, 0) * 1e3) / n
  console.log(
    `${label.padEnd(34)} ${us.toFixed(0).padStart(5)} µs each; in statements ${inStatements.toFixed(0).padStart(5)} µs (` +
      Array.from(statements, ([key, t]) => `${key} ×${(t.n / n).toFixed(2)}`).join(", ") +
      `), around them ${(us - inStatements).toFixed(1)} µs`
  )
  return { us, inStatements }
}

const pad = "x".repeat(1008)
const utf8 = new TextEncoder()
const { dir, cleanup } = scratchDir("sqlite-statements")
const filename = join(dir, "store.db")

const timeRaw = (raw: Raw, oneStepEach: boolean) =>
  Effect.gen(function* () {
    take()
    const start = performance.now()
    if (oneStepEach) for (let i = 0; i < n; i++) yield* Effect.sync(() => raw.write(1))
    else yield* Effect.sync(() => raw.write(n))
    return ((performance.now() - start) * 1e3) / n
  })

const Checkpointer = Task.make({
  name: "bench-sqlite-statements",
  input: Schema.Struct({}),
  state: Schema.Struct({ i: Schema.Int, pad: Schema.String }),
  success: Schema.Number,
  initial: () => ({ i: 0, pad }),
  run: (_, task) =>
    Effect.gen(function* () {
      const raw = yield* Effect.acquireRelease(
        Effect.sync(() =>
          checkpointWritesSqlite(filename, "vltask_tasks", (i) => utf8.encode(JSON.stringify({ i, pad })))
        ),
        (raw) => Effect.promise(async () => raw.close())
      )
      // Warm-up (the JIT, the caches, the WAL), not shown.
      for (let i = 0; i < n; i++) yield* task.checkpoint({ i, pad })
      yield* timeRaw(raw, false)
      const sums = { checkpoint: [0, 0], raw: [0, 0], step: [0, 0] }
      const add = (into: Array<number>, r: { us: number; inStatements: number }) => {
        into[0]! += r.us / rounds
        into[1]! += r.inStatements / rounds
      }
      for (let round = 0; round < rounds; round++) {
        take()
        const start = performance.now()
        for (let i = 0; i < n; i++) yield* task.checkpoint({ i, pad })
        add(sums.checkpoint, show("checkpoint", ((performance.now() - start) * 1e3) / n, take()))
        add(sums.raw, show("  its statement raw", yield* timeRaw(raw, false), take()))
        add(sums.step, show("  the same, one Effect step each", yield* timeRaw(raw, true), take()))
      }
      const [ckpt, ckptStatement] = sums.checkpoint as [number, number]
      const [raw1, rawStatement] = sums.raw as [number, number]
      const [step] = sums.step as [number, number]
      console.log(
        `mean of ${rounds} rounds: a checkpoint ${ckpt.toFixed(0)} µs against ${raw1.toFixed(0)} µs raw ` +
          `(${(raw1 / ckpt).toFixed(2)} of its rate); its statement ${ckptStatement.toFixed(0)} µs against ` +
          `${rawStatement.toFixed(0)} raw (+${(ckptStatement - rawStatement).toFixed(0)}), around it ` +
          `${(ckpt - ckptStatement).toFixed(0)} µs against ${(raw1 - rawStatement).toFixed(0)} raw ` +
          `(+${(ckpt - ckptStatement - raw1 + rawStatement).toFixed(0)}); raw in one Effect step each ` +
          `${step.toFixed(0)} µs (${(raw1 / step).toFixed(2)})`
      )
      return 0
    })
})

try {
  await Effect.runPromise(
    Effect.flatMap(TaskRunner.TaskRunner, (runner) => runner.run(Checkpointer, {})).pipe(
      Effect.provide(TaskRunner.layer({ tasks: [Checkpointer] }).pipe(Layer.provide(Sqlite.layer({ filename })))),
      Effect.scoped
    )
  )
} finally {
  cleanup()
}

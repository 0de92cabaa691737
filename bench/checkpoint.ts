/**
 * Durable checkpoint cost with a 1 KiB state: `task.checkpoint` through the runner and a store, against the physical
 * limit measured in the same process, interleaved round by round inside one running task.
 *
 * - file: the raw recipe in a tight synchronous loop (create a temp file, write, fsync, close, rename over the
 *   target, fsync the directory): the least any durable atomic replace of a file costs.
 * - SQLite: a raw better-sqlite3 `UPDATE` of one row with a 1 KiB BLOB, same pragmas (WAL, synchronous=FULL).
 * - Postgres: a raw single-row `UPDATE` with a 1 KiB `bytea` through `pg`, one round trip each.
 */
import Database from "better-sqlite3"
import { Effect, Layer, Schema } from "effect"
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from "node:fs"
import { join } from "node:path"
import pg from "pg"
import { Task, TaskRunner, type TaskStore } from "../src/index.js"
import * as File from "../src/TaskStore/File.js"
import * as Postgres from "../src/TaskStore/Postgres.js"
import * as Sqlite from "../src/TaskStore/Sqlite.js"
import { median, scratchDir } from "./util.js"

const pad = "x".repeat(1024 - 16)

/** The raw loops run by the task between its own rounds, registered per run. */
const raws = new Map<string, (n: number) => void | Promise<void>>()

const Checkpointer = Task.make({
  name: "bench-checkpoint",
  input: Schema.Struct({ raw: Schema.String, rounds: Schema.Int, perRound: Schema.Int }),
  state: Schema.Struct({ n: Schema.Int, pad: Schema.String }),
  success: Schema.Struct({ store: Schema.Array(Schema.Number), raw: Schema.Array(Schema.Number) }),
  initial: () => ({ n: 0, pad }),
  run: (input, task) =>
    Effect.gen(function* () {
      const raw = raws.get(input.raw)!
      const store: Array<number> = []
      const rawRates: Array<number> = []
      let n = 0
      // Warm-up (the JIT, the caches, the WAL), not counted.
      for (let w = 0; w < 5; w++) {
        yield* Effect.promise(async () => raw(input.perRound))
        for (let i = 0; i < input.perRound; i++) yield* task.checkpoint({ n: ++n, pad })
      }
      for (let r = 0; r < input.rounds; r++) {
        let start = process.hrtime.bigint()
        yield* Effect.promise(async () => raw(input.perRound))
        rawRates.push((input.perRound * 1e9) / Number(process.hrtime.bigint() - start))
        start = process.hrtime.bigint()
        for (let i = 0; i < input.perRound; i++) yield* task.checkpoint({ n: ++n, pad })
        store.push((input.perRound * 1e9) / Number(process.hrtime.bigint() - start))
      }
      return { store, raw: rawRates }
    })
})

const measure = async (
  name: string,
  store: Layer.Layer<TaskStore.TaskStore, unknown>,
  raw: (n: number) => void | Promise<void>,
  rounds: number,
  perRound: number
) => {
  raws.set(name, raw)
  const result = await Effect.runPromise(
    Effect.flatMap(TaskRunner.TaskRunner, (runner) => runner.run(Checkpointer, { raw: name, rounds, perRound })).pipe(
      Effect.provide(TaskRunner.layer({ tasks: [Checkpointer] }).pipe(Layer.provide(store))),
      Effect.scoped
    )
  )
  const s = median(result.store)
  const r = median(result.raw)
  return { per_s: s, raw_per_s: r, ratio: s / r }
}

export const fileCheckpoints = async (rounds = 9, perRound = 200) => {
  const { dir, cleanup } = scratchDir("file-ckpt")
  try {
    const rawDir = join(dir, "raw")
    mkdirSync(rawDir)
    const dirFd = openSync(rawDir, "r")
    // The same bytes a 1 KiB state makes in a record file (state plus metadata, about 1.3 KiB).
    const body = Buffer.alloc(1350, 1)
    let k = 0
    const raw = (n: number) => {
      for (let i = 0; i < n; i++) {
        const temp = join(rawDir, `.tmp-${k++}`)
        const fd = openSync(temp, "wx")
        writeSync(fd, body)
        fsyncSync(fd)
        closeSync(fd)
        renameSync(temp, join(rawDir, "record.task"))
        fsyncSync(dirFd)
      }
    }
    const result = await measure("file", File.layer({ directory: join(dir, "store") }), raw, rounds, perRound)
    closeSync(dirFd)
    return result
  } finally {
    cleanup()
  }
}

export const sqliteCheckpoints = async (rounds = 9, perRound = 200) => {
  const { dir, cleanup } = scratchDir("sqlite-ckpt")
  try {
    const db = new Database(join(dir, "raw.db"))
    db.pragma("journal_mode = WAL")
    db.pragma("synchronous = FULL")
    db.exec("CREATE TABLE t (id TEXT PRIMARY KEY, revision INTEGER, state BLOB)")
    db.prepare("INSERT INTO t VALUES ('a', 0, ?)").run(Buffer.alloc(1024))
    const update = db.prepare("UPDATE t SET state = ?, revision = revision + 1 WHERE id = 'a'")
    const body = Buffer.alloc(1024, 1)
    const raw = (n: number) => {
      for (let i = 0; i < n; i++) update.run(body)
    }
    const result = await measure("sqlite", Sqlite.layer({ filename: join(dir, "store.db") }), raw, rounds, perRound)
    db.close()
    return result
  } finally {
    cleanup()
  }
}

/** Postgres: against a raw single-row `UPDATE` through `pg`; `undefined` when no server answers. */
export const postgresCheckpoints = async (url: string, rounds = 9, perRound = 200) => {
  const client = new pg.Client({ connectionString: url })
  try {
    await client.connect()
  } catch {
    return undefined
  }
  const prefix = `vltask_bench${process.pid}_`
  try {
    await client.query(`CREATE TABLE ${prefix}raw (id TEXT PRIMARY KEY, revision INTEGER, state BYTEA)`)
    await client.query(`INSERT INTO ${prefix}raw VALUES ('a', 0, $1)`, [Buffer.alloc(1024)])
    const body = Buffer.alloc(1024, 1)
    const raw = async (n: number) => {
      for (let i = 0; i < n; i++) {
        await client.query(`UPDATE ${prefix}raw SET state = $1, revision = revision + 1 WHERE id = 'a'`, [body])
      }
    }
    return await measure("postgres", Postgres.layer({ url, tablePrefix: prefix }), raw, rounds, perRound)
  } finally {
    const { rows } = await client.query<{ tablename: string }>(
      "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE $1",
      [`${prefix}%`]
    )
    for (const { tablename } of rows) await client.query(`DROP TABLE IF EXISTS "${tablename}"`)
    await client.end()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log("file", await fileCheckpoints())
  console.log("sqlite", await sqliteCheckpoints())
  console.log(
    "postgres",
    await postgresCheckpoints(process.env.VLTASK_BENCH_POSTGRES ?? "postgres://root@127.0.0.1:5432/test")
  )
}

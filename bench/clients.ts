/**
 * `npx tsx bench/clients.ts`: what the database clients cost around the same statements, for docs/performance.md.
 *
 * - SQLite: one single-row `UPDATE` through `@effect/sql-sqlite-node` and straight on better-sqlite3, with
 *   `synchronous = OFF` (commits cost nothing, so what is left is the client) and `FULL`.
 * - SQLite `RETURNING`: the store's checkpoint `UPDATE` on its own table (better-sqlite3, `synchronous = FULL`) as it
 *   runs from a revision the store does not know (`RETURNING` the metadata) and from one it knows (no `RETURNING`, the
 *   creation time in the `WHERE`), against a raw single-row `UPDATE`, alternated round by round.
 * - SQLite memory: peak RSS growth over 16 MiB for twenty `UPDATE`s of one and the same 16 MiB BLOB, better-sqlite3
 *   alone, with the default page cache and with `cache_size = -512` (in a child process each).
 * - Postgres: the store's checkpoint `UPDATE … RETURNING` (as the store writes it from a revision it does not know)
 *   and the raw `UPDATE` of `raw.ts`, on one plain `pg` client; the store's statement prepared (named), on that client
 *   and through a `pg` pool (a checkout and return around each); prepared without `RETURNING` (from a known revision).
 */
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import Database from "better-sqlite3"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import { join } from "node:path"
import pg from "pg"
import { TaskStore } from "../src/index.js"
import * as Sqlite from "../src/TaskStore/Sqlite.js"
import { connectedClient } from "./raw.js"
import { median, runningRecord, scratchDir } from "./util.js"

const n = 1500
const us = (start: bigint, count = n) => Number(process.hrtime.bigint() - start) / 1e3 / count

const sqliteClient = (synchronous: "OFF" | "FULL") => {
  const { dir, cleanup } = scratchDir("clients-sqlite")
  const body = Buffer.alloc(1024, 1)
  const text = "UPDATE t SET state = ?, revision = revision + 1 WHERE id = 'a'"
  return Effect.runPromise(
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      yield* sql.unsafe(`PRAGMA synchronous = ${synchronous}`)
      yield* sql.unsafe("CREATE TABLE t (id TEXT PRIMARY KEY, revision INTEGER, state BLOB)")
      yield* sql.unsafe("INSERT INTO t VALUES ('a', 0, ?)", [body])
      const db = new Database(join(dir, "plain.db"))
      db.pragma("journal_mode = WAL")
      db.pragma(`synchronous = ${synchronous}`)
      db.exec("CREATE TABLE t (id TEXT PRIMARY KEY, revision INTEGER, state BLOB)")
      db.prepare("INSERT INTO t VALUES ('a', 0, ?)").run(body)
      const statement = db.prepare(text)
      const client: Array<number> = []
      const plain: Array<number> = []
      for (let round = 0; round < 4; round++) {
        let start = process.hrtime.bigint()
        for (let i = 0; i < n; i++) yield* sql.unsafe(text, [body]).raw
        if (round > 0) client.push(us(start))
        start = process.hrtime.bigint()
        for (let i = 0; i < n; i++) statement.run(body)
        if (round > 0) plain.push(us(start))
      }
      db.close()
      return { client: median(client), plain: median(plain) }
    }).pipe(
      Effect.provide(SqliteClient.layer({ filename: join(dir, "client.db") })),
      Effect.ensuring(Effect.sync(cleanup))
    )
  )
}

/** Runs in a child: `clients.ts memory DIR [pragma]`. */
const sqliteMemory = (dir: string, pragma: string | undefined) => {
  const db = new Database(join(dir, "memory.db"))
  db.pragma("journal_mode = WAL")
  db.pragma("synchronous = FULL")
  if (pragma !== undefined) db.pragma(pragma)
  db.exec("CREATE TABLE t (id TEXT PRIMARY KEY, state BLOB)")
  db.prepare("INSERT INTO t VALUES ('a', x'00')").run()
  const update = db.prepare("UPDATE t SET state = ? WHERE id = 'a'")
  const size = 16 * 1024 * 1024
  const blob = new Uint8Array(size).fill(97)
  const baseline = process.memoryUsage().rss
  for (let i = 0; i < 20; i++) {
    blob[0] = i
    update.run(blob)
  }
  db.close()
  process.stdout.write(String((process.resourceUsage().maxRSS * 1024 - baseline) / size))
}

const postgres = async (url: string) => {
  const client = await connectedClient(url)
  if (client === undefined) return undefined
  const prefix = `vltask_bench_c${process.pid}_`
  // As the store's pool is set up (`TaskStore/Postgres.ts`).
  const pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 5_000 })
  try {
    await client.query(`CREATE TABLE ${prefix}raw (id TEXT PRIMARY KEY, revision INTEGER, state BYTEA)`)
    await client.query(`INSERT INTO ${prefix}raw VALUES ('a', 0, $1)`, [Buffer.alloc(1024)])
    // The store's table and a running task in it, as the store makes them.
    await client.query(`CREATE TABLE ${prefix}tasks (id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL,
      revision INTEGER NOT NULL, progress TEXT NOT NULL, lease TEXT, interrupt TEXT, reason TEXT, failure TEXT,
      attempts INTEGER NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, started_at BIGINT,
      finished_at BIGINT, polled_at BIGINT, input BYTEA NOT NULL, state BYTEA, result BYTEA, error BYTEA,
      priority INTEGER NOT NULL DEFAULT 0, run_at BIGINT, parent TEXT, weight DOUBLE PRECISION)`)
    await client.query(
      `INSERT INTO ${prefix}tasks (id, kind, status, revision, progress, attempts, created_at, updated_at, input)
       VALUES ('a', 'k', 'running', 1, '{"done":0}', 1, 0, 0, $1)`,
      [Buffer.alloc(20)]
    )
    const body = Buffer.alloc(1024, 1)
    const lease = JSON.stringify({ token: "01a220b5-41e9-7080-884f-f28554064fdc", holder: { host: "h", pid: 1 } })
    const meta =
      "id, kind, status, revision, progress, lease, interrupt, reason, failure, attempts, created_at, updated_at, started_at, finished_at, polled_at, priority, run_at, parent, weight"
    const checkpoint = `UPDATE ${prefix}tasks SET "progress" = $1, "lease" = $2, "updated_at" = $3, "state" = $4, revision = revision + 1 WHERE id = $5 AND revision = $6 RETURNING ${meta}`
    const lean = `UPDATE ${prefix}tasks SET "progress" = $1, "lease" = $2, "updated_at" = $3, "state" = $4, revision = revision + 1 WHERE id = $5 AND revision = $6 AND created_at = $7`
    let revision = 1
    const created = 0
    const store: Array<number> = []
    const raw: Array<number> = []
    const prepared: Array<number> = []
    const pooled: Array<number> = []
    const leaned: Array<number> = []
    const named = () => ({
      name: "checkpoint",
      text: checkpoint,
      values: [`{"done":${revision}}`, lease, Date.now(), body, "a", revision++]
    })
    for (let round = 0; round < 4; round++) {
      let start = process.hrtime.bigint()
      for (let i = 0; i < n / 3; i++) {
        await client.query(checkpoint, [`{"done":${i}}`, lease, Date.now(), body, "a", revision])
        revision++
      }
      if (round > 0) store.push(us(start, n / 3))
      start = process.hrtime.bigint()
      for (let i = 0; i < n / 3; i++) {
        await client.query(`UPDATE ${prefix}raw SET state = $1, revision = revision + 1 WHERE id = 'a'`, [body])
      }
      if (round > 0) raw.push(us(start, n / 3))
      start = process.hrtime.bigint()
      for (let i = 0; i < n / 3; i++) await client.query(named())
      if (round > 0) prepared.push(us(start, n / 3))
      start = process.hrtime.bigint()
      for (let i = 0; i < n / 3; i++) await pool.query(named())
      if (round > 0) pooled.push(us(start, n / 3))
      start = process.hrtime.bigint()
      for (let i = 0; i < n / 3; i++) {
        const values = [`{"done":${revision}}`, lease, Date.now(), body, "a", revision++, created]
        await client.query({ name: "lean", text: lean, values })
      }
      if (round > 0) leaned.push(us(start, n / 3))
    }
    return {
      store: median(store),
      raw: median(raw),
      prepared: median(prepared),
      pooled: median(pooled),
      lean: median(leaned)
    }
  } finally {
    await client.query(`DROP TABLE IF EXISTS ${prefix}raw, ${prefix}tasks`)
    await client.end()
    await pool.end()
  }
}

const sqliteReturning = async () => {
  const { dir, cleanup } = scratchDir("clients-returning")
  try {
    const filename = join(dir, "store.db")
    // The store's own table, made by the store.
    await Effect.runPromise(
      Effect.flatMap(TaskStore.TaskStore, (store) => store.create(runningRecord("a"))).pipe(
        Effect.provide(Sqlite.layer({ filename })),
        Effect.scoped
      )
    )
    const db = new Database(filename)
    db.pragma("synchronous = FULL")
    const body = Buffer.alloc(1024, 1)
    const lease = JSON.stringify({ token: "01a220b5-41e9-7080-884f-f28554064fdc", holder: { host: "h", pid: 1 } })
    const meta =
      "id, kind, status, revision, progress, lease, interrupt, reason, failure, attempts, created_at, updated_at, started_at, finished_at, polled_at, priority, run_at, parent, weight"
    const sets = `"progress" = ?, "lease" = ?, "updated_at" = ?, "state" = ?, revision = revision + 1`
    const returning = db.prepare(`UPDATE vltask_tasks SET ${sets} WHERE id = ? AND revision = ? RETURNING ${meta}`)
    const lean = db.prepare(`UPDATE vltask_tasks SET ${sets} WHERE id = ? AND revision = ? AND created_at = ?`)
    const { revision: first, created_at: created } = db
      .prepare("SELECT revision, created_at FROM vltask_tasks WHERE id = 'a'")
      .get() as { revision: number; created_at: number }
    let revision = first
    db.exec("CREATE TABLE raw (id TEXT PRIMARY KEY, revision INTEGER, state BLOB)")
    db.prepare("INSERT INTO raw VALUES ('a', 0, ?)").run(body)
    const raw = db.prepare("UPDATE raw SET state = ?, revision = revision + 1 WHERE id = 'a'")
    const kinds = {
      raw: () => raw.run(body),
      returning: () => returning.all(`{"done":${revision}}`, lease, Date.now(), body, "a", revision++),
      lean: () => lean.run(`{"done":${revision}}`, lease, Date.now(), body, "a", revision++, created)
    }
    const times = { raw: [] as Array<number>, returning: [] as Array<number>, lean: [] as Array<number> }
    for (let round = -1; round < 10; round++) {
      for (const kind of ["raw", "returning", "lean"] as const) {
        const start = process.hrtime.bigint()
        for (let i = 0; i < 300; i++) kinds[kind]()
        if (round >= 0) times[kind].push(us(start, 300))
      }
    }
    db.close()
    return { raw: median(times.raw), returning: median(times.returning), lean: median(times.lean) }
  } finally {
    cleanup()
  }
}

if (process.argv[2] === "memory") sqliteMemory(process.argv[3]!, process.argv[4])
else {
  for (const synchronous of ["OFF", "FULL"] as const) {
    const r = await sqliteClient(synchronous)
    console.log(
      `SQLite UPDATE, synchronous=${synchronous}: @effect/sql-sqlite-node ${r.client.toFixed(0)} µs, better-sqlite3 ${r.plain.toFixed(0)} µs`
    )
  }
  const r = await sqliteReturning()
  console.log(
    `SQLite, the store's checkpoint UPDATE: with RETURNING ${r.returning.toFixed(0)} µs, without (known revision) ${r.lean.toFixed(0)} µs; the raw UPDATE ${r.raw.toFixed(0)} µs`
  )
  for (const pragma of [undefined, "cache_size = -512"]) {
    const { dir, cleanup } = scratchDir("clients-memory")
    try {
      const args = ["--import", "tsx", import.meta.filename, "memory", dir, ...(pragma === undefined ? [] : [pragma])]
      const ratio = Number(execFileSync(process.execPath, args, { encoding: "utf8" }))
      console.log(
        `SQLite alone, 20 UPDATEs of one 16 MiB BLOB${pragma === undefined ? "" : ` (${pragma})`}: peak RSS growth ${ratio.toFixed(1)}× the BLOB`
      )
    } finally {
      cleanup()
    }
  }
  const url = process.env.VLTASK_BENCH_POSTGRES ?? "postgres://root@127.0.0.1:5432/test"
  const p = await postgres(url)
  console.log(
    p === undefined
      ? `no Postgres server at ${url}`
      : `Postgres on one pg client: the store's checkpoint UPDATE … RETURNING ${p.store.toFixed(0)} µs, the raw UPDATE ${p.raw.toFixed(0)} µs; the store's statement prepared ${p.prepared.toFixed(0)} µs, prepared through a pg pool ${p.pooled.toFixed(0)} µs, prepared without RETURNING (known revision) ${p.lean.toFixed(0)} µs`
  )
}

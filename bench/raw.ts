/**
 * The physical limits the benchmarks compare against: one durable write of about a record's size, done the plainest
 * way each store's medium allows, in a tight loop.
 *
 * - file: create a temp file, write, fsync, close, rename it over the target, fsync the directory: the least any
 *   durable atomic replace of a file costs.
 * - SQLite: one `UPDATE` of one row with a 1 KiB BLOB through better-sqlite3, same pragmas (WAL, synchronous=FULL).
 * - Postgres: one single-row `UPDATE` with a 1 KiB `bytea` through `pg`, one round trip each.
 */
import Database from "better-sqlite3"
import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync
} from "node:fs"
import { join } from "node:path"
import pg from "pg"
import * as TaskId from "../src/TaskId.js"

/** A raw writer: `write(n)` does n writes; `close` frees what it holds. */
export interface Raw {
  readonly write: (n: number) => void | Promise<void>
  readonly close: () => void | Promise<void>
}

/**
 * Durable atomic replaces of files in directory `rawDir` (made if missing) by `body`: temp file, write, fsync, close,
 * rename over the target, fsync the directory. `close` lets the directory go.
 */
const replacer = (rawDir: string, body: Uint8Array) => {
  mkdirSync(rawDir, { recursive: true })
  const dirFd = openSync(rawDir, "r")
  let k = 0
  return {
    replace: (name: string, bytes: Uint8Array = body) => {
      const temp = join(rawDir, `.tmp-${k++}`)
      const fd = openSync(temp, "wx")
      writeSync(fd, bytes)
      fsyncSync(fd)
      closeSync(fd)
      renameSync(temp, join(rawDir, name))
      fsyncSync(dirFd)
    },
    close: () => closeSync(dirFd)
  }
}

/** Durable atomic replaces of a 1,350-byte file in `dir` (the bytes a 1 KiB state makes in a record file). */
export const fileRaw = (dir: string): Raw => {
  const files = replacer(join(dir, "raw"), Buffer.alloc(1350, 1))
  return {
    write: (n) => {
      for (let i = 0; i < n; i++) files.replace("record.task")
    },
    close: files.close
  }
}

/** Single-row `UPDATE`s of a 1 KiB BLOB in a database of its own in `dir`. */
export const sqliteRaw = (dir: string): Raw => {
  const db = new Database(join(dir, "raw.db"))
  db.pragma("journal_mode = WAL")
  db.pragma("synchronous = FULL")
  db.exec("CREATE TABLE t (id TEXT PRIMARY KEY, revision INTEGER, state BLOB)")
  db.prepare("INSERT INTO t VALUES ('a', 0, ?)").run(Buffer.alloc(1024))
  const update = db.prepare("UPDATE t SET state = ?, revision = revision + 1 WHERE id = 'a'")
  const body = Buffer.alloc(1024, 1)
  return {
    write: (n) => {
      for (let i = 0; i < n; i++) update.run(body)
    },
    close: () => void db.close()
  }
}

/** Single-row `UPDATE`s of a 1 KiB `bytea` in table `<prefix>raw`; `undefined` when no server answers. */
/** A connected `pg` client, or undefined when no server answers at `url`. */
export const connectedClient = async (url: string): Promise<pg.Client | undefined> => {
  const client = new pg.Client({ connectionString: url })
  try {
    await client.connect()
    return client
  } catch {
    return undefined
  }
}

export const postgresRaw = async (url: string, prefix: string): Promise<Raw | undefined> => {
  const client = await connectedClient(url)
  if (client === undefined) return undefined
  await client.query(`CREATE TABLE ${prefix}raw (id TEXT PRIMARY KEY, revision INTEGER, state BYTEA)`)
  await client.query(`INSERT INTO ${prefix}raw VALUES ('a', 0, $1)`, [Buffer.alloc(1024)])
  const body = Buffer.alloc(1024, 1)
  return {
    write: async (n) => {
      for (let i = 0; i < n; i++) {
        await client.query(`UPDATE ${prefix}raw SET state = $1, revision = revision + 1 WHERE id = 'a'`, [body])
      }
    },
    close: () => client.end()
  }
}

/**
 * The two writes a task that does nothing costs, raw, as a store makes them: its record created already claimed
 * (running, with a lease), then its end (completed, with its result, the lease cleared). `write(n)` does this for n
 * new tasks. A no-op task cannot cost less than these: the floor under `noop_<store>_vs_raw`.
 *
 * - file: two durable atomic replaces (as `fileRaw`), the first making the task's file, the second replacing it.
 * - SQLite and Postgres: the store's own `INSERT` of a new row and its `UPDATE` of the end, on a table the store
 *   itself made (`table`, with its indexes), through better-sqlite3 or `pg` (prepared, as the store's own are).
 */
export const taskWritesFile = (dir: string): Raw => {
  const files = replacer(join(dir, "tasks-raw"), Buffer.alloc(400, 1))
  return {
    write: (n) => {
      for (let i = 0; i < n; i++) {
        const name = `${TaskId.make(Date.now())}.task`
        files.replace(name)
        files.replace(name)
      }
    },
    close: files.close
  }
}

/** The columns of a new record, in the store's order, and the end's, as `TaskStore/Sql.ts` writes them. */
const insertColumns = ["id", "kind", "status", "revision", "progress", "lease", "interrupt", "reason", "failure"]
  .concat(["attempts", "created_at", "updated_at", "started_at", "finished_at", "polled_at", "priority", "run_at"])
  .concat(["parent", "weight", "input", "state", "result", "error"])
const endColumns = [
  "status",
  "progress",
  "lease",
  "interrupt",
  "reason",
  "failure",
  "updated_at",
  "finished_at",
  "result"
]

const taskStatements = (table: string, param: (n: number) => string) => ({
  insert: `INSERT INTO "${table}" (${insertColumns.map((c) => `"${c}"`).join(", ")}) VALUES (${insertColumns
    .map((_, i) => param(i + 1))
    .join(", ")}) ON CONFLICT (id) DO NOTHING RETURNING id`,
  end: `UPDATE "${table}" SET ${endColumns.map((c, i) => `"${c}" = ${param(i + 1)}`).join(", ")}, revision = revision + 1
    WHERE id = ${param(endColumns.length + 1)} AND revision = ${param(endColumns.length + 2)} AND created_at = ${param(endColumns.length + 3)}`
})

/** The parameters of a new task's row and of its end, at time `now`. */
const taskParams = (id: string, now: number) => {
  const lease = JSON.stringify({
    token: id,
    holder: { host: "bench", pid: process.pid, processStart: "1" },
    expiresAt: now + 30_000
  })
  const progress = JSON.stringify({ done: 0 })
  const row: Record<string, unknown> = {
    id,
    kind: "bench-noop",
    status: "running",
    revision: 1,
    progress,
    lease,
    attempts: 1,
    created_at: now,
    updated_at: now,
    started_at: now,
    priority: 0,
    input: Buffer.from("{}")
  }
  return {
    insert: insertColumns.map((c) => row[c] ?? null),
    end: ["completed", progress, null, null, null, null, now, now, Buffer.from("0"), id, 1, now]
  }
}

/** See `taskWritesFile`: in the SQLite database `filename`, in the table `table` its store made. */
export const taskWritesSqlite = (filename: string, table: string): Raw => {
  const db = new Database(filename)
  db.pragma("synchronous = FULL")
  const text = taskStatements(table, () => "?")
  const insert = db.prepare(text.insert)
  const end = db.prepare(text.end)
  return {
    write: (n) => {
      for (let i = 0; i < n; i++) {
        const now = Date.now()
        const params = taskParams(TaskId.make(now), now)
        insert.all(...params.insert)
        end.run(...params.end)
      }
    },
    close: () => void db.close()
  }
}

/** A checkpoint's `UPDATE` as the SQL store makes it from a known revision: progress, lease, time and state. */
const checkpointStatement = (table: string, param: (n: number) => string) =>
  `UPDATE "${table}" SET "progress" = ${param(1)}, "lease" = ${param(2)}, "updated_at" = ${param(3)}, "state" = ${param(4)},
   revision = revision + 1 WHERE id = ${param(5)} AND revision = ${param(6)} AND created_at = ${param(7)}`

/**
 * The parameters of task `id`'s checkpoints one after another, from revision 1: the metadata made JSON and the state
 * encoded by `encode` before each, as a store must.
 */
const checkpointParams = (id: string, createdAt: number, encode: (n: number) => Uint8Array) => {
  const holder = { host: "bench", pid: process.pid, processStart: "1" }
  let revision = 1
  return () => {
    const at = Date.now()
    const state = encode(revision)
    const lease = JSON.stringify({ token: id, holder, expiresAt: at + 30_000 })
    return [JSON.stringify({ done: revision }), lease, at, state, id, revision++, createdAt]
  }
}

/**
 * A checkpoint's write as the SQLite store makes it, raw: its own `UPDATE` from a known revision (progress, lease, time
 * and state) of a row of its own in the table the store made (`table` in `filename`), with the state encoded by
 * `encode` and the metadata made JSON before each, and nothing else: the floor under any store that writes what a
 * checkpoint must.
 */
export const checkpointWritesSqlite = (filename: string, table: string, encode: (n: number) => Uint8Array): Raw => {
  const db = new Database(filename)
  db.pragma("synchronous = FULL")
  const now = Date.now()
  const id = TaskId.make(now)
  db.prepare(taskStatements(table, () => "?").insert).all(...taskParams(id, now).insert)
  const update = db.prepare(checkpointStatement(table, () => "?"))
  const next = checkpointParams(id, now, encode)
  return {
    write: (n) => {
      for (let i = 0; i < n; i++) update.run(...next())
    },
    close: () => void db.close()
  }
}

/**
 * A checkpoint's write as the file store makes it back to back, raw, in a directory of its own in `dir`: every system
 * call of the store's protocol, in its order — the fairness hint looked for, the durable replace (as `fileRaw`) — with
 * the state encoded by `encode` and the metadata made JSON before each, and nothing else: the floor under a file
 * store that writes what a checkpoint must, under a lock between processes. The lock (a hard link to a holder file)
 * is taken once and kept, as the store keeps it between a running task's writes until the event loop turns, and the
 * record is not read again, as the store does not read what it wrote under a lock it kept.
 */
export const checkpointWritesFile = (dir: string, encode: (n: number) => Uint8Array): Raw => {
  const rawDir = join(dir, "protocol")
  const files = replacer(rawDir, Buffer.alloc(0))
  const now = Date.now()
  const id = TaskId.make(now)
  const [lock, want, holder] = [".lock", ".want", ".holder"].map((s) => join(rawDir, `${id}${s}`))
  writeFileSync(holder!, "L:bench")
  const next = checkpointParams(id, now, encode)
  const utf8 = new TextEncoder()
  const preamble = 68
  const write = () => {
    const [progress, lease, at, state] = next() as [string, string, number, Uint8Array]
    statSync(want!, { throwIfNoEntry: false })
    const meta = utf8.encode(`{"progress":${progress},"lease":${lease},"updatedAt":${at}}`)
    const bytes = new Uint8Array(preamble + meta.length + state.length)
    bytes.set(meta, preamble)
    bytes.set(state, preamble + meta.length)
    files.replace(`${id}.task`, bytes)
  }
  files.replace(`${id}.task`, Buffer.alloc(1350, 1))
  linkSync(holder!, lock!)
  return {
    write: (n) => {
      for (let i = 0; i < n; i++) write()
    },
    close: () => {
      unlinkSync(lock!)
      files.close()
    }
  }
}

/**
 * See `checkpointWritesSqlite`: on the Postgres server at `url`, in the table `table` its store made, through `pg`
 * with the statement prepared (as the store's own are).
 */
export const checkpointWritesPostgres = async (
  url: string,
  table: string,
  encode: (n: number) => Uint8Array
): Promise<Raw | undefined> => {
  const client = await connectedClient(url)
  if (client === undefined) return undefined
  const now = Date.now()
  const id = TaskId.make(now)
  await client.query(taskStatements(table, (n) => `$${n}`).insert, taskParams(id, now).insert)
  const text = checkpointStatement(table, (n) => `$${n}`)
  const next = checkpointParams(id, now, encode)
  return {
    write: async (n) => {
      for (let i = 0; i < n; i++) await client.query({ name: "checkpoint", text, values: next() })
    },
    close: () => client.end()
  }
}

/** See `taskWritesFile`: on the Postgres server at `url`, in the table `table` its store made. */
export const taskWritesPostgres = async (url: string, table: string): Promise<Raw | undefined> => {
  const client = await connectedClient(url)
  if (client === undefined) return undefined
  const text = taskStatements(table, (n) => `$${n}`)
  return {
    write: async (n) => {
      for (let i = 0; i < n; i++) {
        const now = Date.now()
        const params = taskParams(TaskId.make(now), now)
        await client.query({ name: "insert", text: text.insert, values: params.insert })
        await client.query({ name: "end", text: text.end, values: params.end })
      }
    },
    close: () => client.end()
  }
}

/** Drops the tables a benchmark made under `prefix`. */
export const dropTables = async (url: string, prefix: string) => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  const { rows } = await client.query<{ tablename: string }>(
    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE $1",
    [`${prefix}%`]
  )
  for (const { tablename } of rows) await client.query(`DROP TABLE IF EXISTS "${tablename}"`)
  await client.end()
}

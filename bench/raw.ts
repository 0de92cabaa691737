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
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from "node:fs"
import { join } from "node:path"
import pg from "pg"

/** A raw writer: `write(n)` does n writes; `close` frees what it holds. */
export interface Raw {
  readonly write: (n: number) => void | Promise<void>
  readonly close: () => void | Promise<void>
}

/** Durable atomic replaces of a 1,350-byte file in `dir` (the bytes a 1 KiB state makes in a record file). */
export const fileRaw = (dir: string): Raw => {
  const rawDir = join(dir, "raw")
  mkdirSync(rawDir, { recursive: true })
  const dirFd = openSync(rawDir, "r")
  const body = Buffer.alloc(1350, 1)
  let k = 0
  return {
    write: (n) => {
      for (let i = 0; i < n; i++) {
        const temp = join(rawDir, `.tmp-${k++}`)
        const fd = openSync(temp, "wx")
        writeSync(fd, body)
        fsyncSync(fd)
        closeSync(fd)
        renameSync(temp, join(rawDir, "record.task"))
        fsyncSync(dirFd)
      }
    },
    close: () => closeSync(dirFd)
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

/**
 * The SQLite store: durable, queryable, safe for many processes on one host, through `@effect/sql-sqlite-node`
 * (better-sqlite3). It migrates its own schema (tables prefixed `vltask_`, so it can share a database with yours).
 *
 * Durability: WAL with `synchronous = FULL` on the connection (better-sqlite3 would leave WAL databases at NORMAL,
 * which can lose acknowledged commits on power loss); `NORMAL` is an explicit opt-in. Concurrency: a busy timeout, and
 * every multi-statement write runs in a transaction that begins `IMMEDIATE`, so it waits for the write lock instead
 * of failing with SQLITE_BUSY on the upgrade from read to write.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlConnection from "@effect/sql/SqlConnection"
import type { SqlError } from "@effect/sql/SqlError"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { RevisionConflict, TaskAlreadyExists, TaskNotFound, TaskStoreError } from "../TaskError.js"
import * as TaskId from "../TaskId.js"
import type * as TaskRecord from "../TaskRecord.js"
import { defaultKeepLogs, TaskStore } from "../TaskStore.js"
import type { Service } from "../TaskStore.js"
import {
  casUpdate,
  type FullRow,
  insert,
  listPage,
  metaColumns,
  type MetaRow,
  toInfo,
  toPage,
  toRecord
} from "./SqlRow.js"

/** Options of the SQLite store. */
export interface Options {
  /** The database file; created (with its directory) if missing. */
  readonly filename: string
  /**
   * `FULL` (default) makes every acknowledged commit survive power loss. `NORMAL` is faster but may lose the last
   * commits on power loss (never on a process crash); choose it only knowingly.
   */
  readonly synchronous?: "FULL" | "NORMAL" | undefined
  /** How long a write waits for another process's write lock (default 30 s). */
  readonly busyTimeoutMs?: number | undefined
}

/** The prefix of every table this store creates. */
export const tablePrefix = "vltask_"

/** Schema migrations, applied in order inside one IMMEDIATE transaction, recorded in `vltask_migrations`. */
export const migrations: ReadonlyArray<{
  readonly id: number
  readonly name: string
  readonly sql: ReadonlyArray<string>
}> = [
  {
    id: 1,
    name: "create_tasks",
    sql: [
      `CREATE TABLE vltask_tasks (
        id TEXT NOT NULL PRIMARY KEY,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        revision INTEGER NOT NULL,
        progress TEXT NOT NULL,
        lease TEXT,
        lease_token TEXT,
        lease_expires_at INTEGER,
        interrupt TEXT,
        reason TEXT,
        failure TEXT,
        attempts INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER,
        polled_at INTEGER,
        input BLOB NOT NULL,
        state BLOB,
        result BLOB,
        error BLOB
      )`,
      `CREATE INDEX vltask_tasks_status_id ON vltask_tasks (status, id)`,
      `CREATE INDEX vltask_tasks_kind_status_id ON vltask_tasks (kind, status, id)`,
      `CREATE TABLE vltask_logs (
        task_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        time INTEGER NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL,
        PRIMARY KEY (task_id, seq)
      ) WITHOUT ROWID`
    ]
  }
]

const errorCode = (error: SqlError): string | undefined => (error.cause as { code?: string } | undefined)?.code

/** What a SQLite result code says about the store: busy (retry), damaged, or any other I/O failure. */
const reasonOf = (code: string | undefined): "Unavailable" | "Corrupt" | "Io" =>
  code === "SQLITE_BUSY" || code === "SQLITE_LOCKED" ? "Unavailable" : code === "SQLITE_CORRUPT" ? "Corrupt" : "Io"

/** A database written by a newer version of this library than the one running. */
export class SchemaTooNew extends TaskStoreError {}

/**
 * Builds the store over the `SqlClient` in context (a SQLite one): sets the connection's pragmas, migrates, and
 * returns the service.
 */
export const make = (
  options: Omit<Options, "filename"> = {}
): Effect.Effect<Service, TaskStoreError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient

    const fail =
      (operation: string, id?: string) =>
      (error: SqlError): TaskStoreError => {
        const code = errorCode(error)
        return new TaskStoreError({
          reason: reasonOf(code),
          operation,
          detail: String((error.cause as Error | undefined)?.message ?? error.message),
          cause: error,
          ...(code === undefined ? {} : { errno: code }),
          ...(id === undefined ? {} : { id })
        })
      }

    const run = <A = Record<string, unknown>>(text: string, params: ReadonlyArray<unknown> = []) =>
      sql.unsafe<A & object>(text, params as Array<unknown>).withoutTransform

    /** Runs `f` in a transaction that takes the write lock first (waiting on the busy timeout if it must). */
    const immediate = <A, E>(f: (conn: SqlConnection.Connection) => Effect.Effect<A, E>) =>
      Effect.scoped(
        Effect.flatMap(sql.reserve, (conn) =>
          Effect.acquireUseRelease(
            conn.executeRaw("BEGIN IMMEDIATE", []),
            () => Effect.tap(f(conn), () => conn.executeRaw("COMMIT", [])),
            (_, exit) => (Exit.isSuccess(exit) ? Effect.void : Effect.ignore(conn.executeRaw("ROLLBACK", [])))
          )
        )
      )
    const exec = <A = Record<string, unknown>>(
      conn: SqlConnection.Connection,
      text: string,
      params: ReadonlyArray<unknown> = []
    ) => conn.execute(text, params, undefined) as Effect.Effect<ReadonlyArray<A>, SqlError>

    // ---- connection and schema -----------------------------------------------------------------------------------

    const synchronous = options.synchronous ?? "FULL"
    yield* run(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 30_000))}`).pipe(
      Effect.zipRight(run(`PRAGMA synchronous = ${synchronous}`)),
      Effect.mapError(fail("open"))
    )
    const mode = yield* run<{ journal_mode: string }>("PRAGMA journal_mode").pipe(Effect.mapError(fail("open")))
    const journal = mode[0]!.journal_mode
    if (journal !== "wal" && journal !== "memory") {
      yield* run("PRAGMA journal_mode = WAL").pipe(Effect.mapError(fail("open")))
    }

    yield* immediate((conn) =>
      Effect.gen(function* () {
        yield* exec(
          conn,
          `CREATE TABLE IF NOT EXISTS vltask_migrations (
            migration_id INTEGER PRIMARY KEY NOT NULL,
            name TEXT NOT NULL,
            created_at INTEGER NOT NULL
          )`
        )
        const latest =
          (yield* exec<{ id: number | null }>(conn, "SELECT MAX(migration_id) AS id FROM vltask_migrations"))[0]!.id ??
          0
        const known = migrations[migrations.length - 1]!.id
        if (latest > known) {
          return yield* new SchemaTooNew({
            reason: "Io",
            operation: "open",
            detail: `the database has schema version ${latest}, newer than this version of @vectorlink/task knows (${known}); upgrade the library`
          })
        }
        for (const migration of migrations) {
          if (migration.id <= latest) continue
          for (const statement of migration.sql) yield* exec(conn, statement)
          yield* exec(conn, "INSERT INTO vltask_migrations (migration_id, name, created_at) VALUES (?, ?, ?)", [
            migration.id,
            migration.name,
            Date.now()
          ])
        }
      })
    ).pipe(Effect.mapError((e) => (e._tag === "SqlError" ? fail("migrate")(e) : e)))

    // ---- the service ---------------------------------------------------------------------------------------------

    const getInfo = (id: string) =>
      Effect.gen(function* () {
        const rows = yield* run<MetaRow>(`SELECT ${metaColumns} FROM vltask_tasks WHERE id = ?`, [id]).pipe(
          Effect.mapError(fail("read", id))
        )
        const row = rows[0]
        return row === undefined ? yield* new TaskNotFound({ id }) : toInfo(row)
      })

    const service: Service = {
      create: (record) =>
        Effect.flatMap(TaskId.validate(record.id), (id) =>
          immediate((conn) =>
            Effect.gen(function* () {
              const statement = insert("vltask_tasks", id, record)
              const rows = yield* exec<MetaRow>(conn, statement.text, statement.params)
              // Logs left by a deleted task of the same id must not show up in the new one.
              yield* exec(conn, "DELETE FROM vltask_logs WHERE task_id = ?", [id])
              return toInfo(rows[0]!)
            })
          ).pipe(
            Effect.catchTag("SqlError", (e) =>
              Effect.fail(
                errorCode(e)?.startsWith("SQLITE_CONSTRAINT") === true
                  ? new TaskAlreadyExists({ id })
                  : fail("create", id)(e)
              )
            )
          )
        ),
      get: (id) =>
        Effect.flatMap(TaskId.validate(id), (id) =>
          Effect.gen(function* () {
            const rows = yield* run<FullRow>(`SELECT * FROM vltask_tasks WHERE id = ?`, [id]).pipe(
              Effect.mapError(fail("read", id))
            )
            const row = rows[0]
            return row === undefined ? yield* new TaskNotFound({ id }) : toRecord(row)
          })
        ),
      getInfo: (id) => Effect.flatMap(TaskId.validate(id), getInfo),
      update: (id, expected, patch) =>
        Effect.flatMap(TaskId.validate(id), (id) =>
          Effect.gen(function* () {
            // One statement: compare-and-swap on the revision, atomically, without a read first.
            const cas = casUpdate("vltask_tasks", id, expected, patch)
            const rows = yield* run<MetaRow>(cas.text, cas.params).pipe(Effect.mapError(fail("update", id)))
            if (rows[0] !== undefined) return toInfo(rows[0])
            const current = yield* getInfo(id)
            return yield* new RevisionConflict({ id, expected, found: current.revision })
          })
        ),
      list: (filter = {}) =>
        Effect.gen(function* () {
          const query = listPage("vltask_tasks", filter)
          const rows = yield* run<MetaRow>(query.text, query.params).pipe(Effect.mapError(fail("list")))
          return toPage(rows, query.limit)
        }),
      delete: (id, expected) =>
        Effect.flatMap(TaskId.validate(id), (id) =>
          immediate((conn) =>
            Effect.gen(function* () {
              const deleted = yield* exec<{ id: string }>(
                conn,
                `DELETE FROM vltask_tasks WHERE id = ?${expected === undefined ? "" : " AND revision = ?"} RETURNING id`,
                expected === undefined ? [id] : [id, expected]
              )
              if (deleted.length === 0) {
                const current = yield* exec<{ revision: number }>(
                  conn,
                  "SELECT revision FROM vltask_tasks WHERE id = ?",
                  [id]
                )
                return yield* current[0] === undefined
                  ? Effect.fail(new TaskNotFound({ id }))
                  : // A row that exists was missed only by a delete that named a revision.
                    Effect.fail(new RevisionConflict({ id, expected: expected!, found: current[0].revision }))
              }
              yield* exec(conn, "DELETE FROM vltask_logs WHERE task_id = ?", [id])
            })
          ).pipe(Effect.catchTag("SqlError", (e) => Effect.fail(fail("delete", id)(e))))
        ),
      appendLogs: (id, lines, logOptions) =>
        Effect.flatMap(TaskId.validate(id), (id) => {
          // Stryker disable next-line ConditionalExpression: no lines make an empty transaction; this only saves it.
          if (lines.length === 0) return Effect.void
          const keep = logOptions?.keep ?? defaultKeepLogs
          return immediate((conn) =>
            Effect.gen(function* () {
              const last =
                (yield* exec<{ seq: number | null }>(
                  conn,
                  "SELECT MAX(seq) AS seq FROM vltask_logs WHERE task_id = ?",
                  [id]
                ))[0]!.seq ?? 0
              let seq = last
              for (const line of lines) {
                seq++
                yield* exec(
                  conn,
                  "INSERT INTO vltask_logs (task_id, seq, time, level, message) VALUES (?, ?, ?, ?, ?)",
                  [id, seq, line.time, line.level, line.message]
                )
              }
              // Stryker disable next-line ConditionalExpression,EqualityOperator: under the bound the DELETE matches no row.
              if (seq > keep)
                yield* exec(conn, "DELETE FROM vltask_logs WHERE task_id = ? AND seq <= ?", [id, seq - keep])
            })
          ).pipe(Effect.mapError(fail("appendLogs", id)))
        }),
      readLogs: (id, logOptions) =>
        Effect.flatMap(TaskId.validate(id), (id) => {
          const after = logOptions?.after ?? 0
          const limit = logOptions?.limit
          return run<TaskRecord.LogLine>(
            `SELECT seq, time, level, message FROM vltask_logs WHERE task_id = ? AND seq > ? ORDER BY seq${
              limit === undefined ? "" : " LIMIT ?"
            }`,
            limit === undefined ? [id, after] : [id, after, limit]
          ).pipe(
            Effect.map((rows) => rows.map((r) => ({ seq: r.seq, time: r.time, level: r.level, message: r.message }))),
            Effect.mapError(fail("readLogs", id))
          )
        })
    }
    return service
  })

/** The store over a SQLite client you provide (to share the database, or in tests). */
export const layerClient = (
  options: Omit<Options, "filename"> = {}
): Layer.Layer<TaskStore, TaskStoreError, SqlClient.SqlClient> => Layer.scoped(TaskStore, make(options))

/** The store in a SQLite database file. */
export const layer = (options: Options): Layer.Layer<TaskStore, TaskStoreError> =>
  layerClient(options).pipe(
    Layer.provide(
      Layer.unwrapEffect(
        Effect.sync(() => {
          mkdirSync(dirname(options.filename), { recursive: true })
          return SqliteClient.layer({ filename: options.filename })
        })
      )
    ),
    // better-sqlite3 throws while the client is built (a file that is no database, a directory, a path it cannot
    // create): a defect there is a failure to open, with SQLite's code.
    Layer.catchAllCause((cause) => {
      const failure = Cause.failureOption(cause)
      if (Option.isSome(failure) && failure.value instanceof TaskStoreError) return Layer.fail(failure.value)
      const error = Cause.squash(cause) as { message?: string; code?: string }
      return Layer.fail(
        new TaskStoreError({
          reason: reasonOf(error.code),
          operation: "open",
          detail: `cannot open ${options.filename}: ${String(error.message ?? error)}`,
          cause: error,
          ...(error.code === undefined ? {} : { errno: error.code })
        })
      )
    })
  )

/** The store with its file name from `Config` (e.g. `Config.string("VLTASK_SQLITE")`). */
export const layerConfig = (
  filename: Config.Config<string>
): Layer.Layer<TaskStore, TaskStoreError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(filename, (filename) => layer({ filename })))

/** The default `Config` key: `VLTASK_SQLITE`. */
export const defaultConfig: Config.Config<string> = Config.string("VLTASK_SQLITE")

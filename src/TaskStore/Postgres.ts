/**
 * The Postgres store: tasks shared by runners on many machines, through `@effect/sql-pg`. It migrates its own schema
 * (tables named with a prefix, `vltask_` by default, so it can share a database with yours).
 *
 * Compare-and-swap is one `UPDATE … WHERE id = $ AND revision = $ RETURNING …`; statements that must go together run
 * in a transaction that first takes a transaction-level advisory lock on the task, so concurrent writers of one task's
 * logs queue instead of colliding.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { RevisionConflict, TaskAlreadyExists, TaskNotFound, TaskStoreError } from "../TaskError.js"
import * as TaskId from "../TaskId.js"
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

/** Options of the Postgres store. */
export interface Options {
  /** The connection string, e.g. `postgres://user@host:5432/db`. */
  readonly url: string
  /** The prefix of the store's tables (default `vltask_`): letters, digits and `_`. */
  readonly tablePrefix?: string | undefined
  /** Connections in the pool (default 10). */
  readonly maxConnections?: number | undefined
}

const migrations = (
  p: string
): ReadonlyArray<{ readonly id: number; readonly name: string; readonly sql: ReadonlyArray<string> }> => [
  {
    id: 1,
    name: "create_tasks",
    sql: [
      `CREATE TABLE ${p}tasks (
        id TEXT COLLATE "C" PRIMARY KEY,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        revision INTEGER NOT NULL,
        progress TEXT NOT NULL,
        lease TEXT,
        lease_token TEXT,
        lease_expires_at BIGINT,
        interrupt TEXT,
        reason TEXT,
        failure TEXT,
        attempts INTEGER NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        started_at BIGINT,
        finished_at BIGINT,
        polled_at BIGINT,
        input BYTEA NOT NULL,
        state BYTEA,
        result BYTEA,
        error BYTEA
      )`,
      `CREATE INDEX ${p}tasks_status_id ON ${p}tasks (status, id)`,
      `CREATE INDEX ${p}tasks_kind_status_id ON ${p}tasks (kind, status, id)`,
      `CREATE TABLE ${p}logs (
        task_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        time BIGINT NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL,
        PRIMARY KEY (task_id, seq)
      )`
    ]
  }
]

/** `?` placeholders to Postgres's `$1, $2, …`. The SQL here never has a `?` of its own. */
const numbered = (text: string) => {
  let n = 0
  return text.replace(/\?/g, () => `$${++n}`)
}

const errorCode = (error: SqlError): string | undefined => (error.cause as { code?: string } | undefined)?.code

/** Server codes (SQLSTATE) and socket errors that say the database cannot be reached now, not that a query is wrong. */
const unreachableCodes = new Set([
  "57P01", // admin_shutdown: the connection was terminated
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now: starting up or shutting down
  "53300", // too_many_connections
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "EAI_AGAIN"
])

/** node-postgres reports a lost or timed-out connection by message only (no code). */
const connectionLost = /connection terminated|timeout exceeded when trying to connect|connection error|not queryable/i

/**
 * What a failed query says about the store: `Unavailable` when the server cannot be reached (connection exceptions,
 * class 08, a terminated or refused connection), `Io` for any other error the server reports with a code, `Unknown`
 * for anything else (a driver error that is none of these).
 */
export const reasonOf = (error: SqlError): "Unavailable" | "Io" | "Unknown" => {
  const code = errorCode(error)
  if (code !== undefined) return code.startsWith("08") || unreachableCodes.has(code) ? "Unavailable" : "Io"
  const message = (error.cause as Error | undefined)?.message ?? error.message
  return connectionLost.test(message) ? "Unavailable" : "Unknown"
}

/** Builds the store over the `SqlClient` in context (a Postgres one): migrates, and returns the service. */
export const make = (
  options: Omit<Options, "url" | "maxConnections"> = {}
): Effect.Effect<Service, TaskStoreError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const p = options.tablePrefix ?? "vltask_"
    if (!/^[a-z_][a-z0-9_]*$/.test(p)) {
      return yield* new TaskStoreError({
        reason: "Unknown",
        operation: "open",
        detail: `the table prefix ${JSON.stringify(p)} must be lower-case letters, digits and '_'`
      })
    }
    const fail =
      (operation: string, id?: string) =>
      (error: SqlError): TaskStoreError => {
        const code = errorCode(error)
        return new TaskStoreError({
          reason: reasonOf(error),
          operation,
          detail: String((error.cause as Error | undefined)?.message ?? error.message),
          cause: error,
          ...(code === undefined ? {} : { errno: code }),
          ...(id === undefined ? {} : { id })
        })
      }
    const run = <A = Record<string, unknown>>(text: string, params: ReadonlyArray<unknown> = []) =>
      sql.unsafe<A & object>(numbered(text), params as Array<unknown>).withoutTransform
    /** Runs `f` in a transaction holding the advisory lock of `key` (released at commit or rollback). */
    const locked = <A, E>(key: string, f: Effect.Effect<A, E>) =>
      sql.withTransaction(Effect.zipRight(run("SELECT pg_advisory_xact_lock(hashtext(?))", [`${p}${key}`]), f)).pipe(
        // @effect/sql turns a failed COMMIT or ROLLBACK into a defect; here that is a lost connection, so a failure.
        Effect.catchSomeDefect((defect) =>
          defect instanceof SqlError ? Option.some(Effect.fail(defect)) : Option.none()
        )
      )

    yield* locked(
      "migrations",
      Effect.gen(function* () {
        yield* run(
          `CREATE TABLE IF NOT EXISTS ${p}migrations (migration_id INTEGER PRIMARY KEY, name TEXT NOT NULL, created_at BIGINT NOT NULL)`
        )
        const latest = Number(
          (yield* run<{ id: number | null }>(`SELECT MAX(migration_id) AS id FROM ${p}migrations`))[0]!.id ?? 0
        )
        const all = migrations(p)
        const known = all[all.length - 1]!.id
        if (latest > known) {
          return yield* new TaskStoreError({
            reason: "Io",
            operation: "open",
            detail: `the database has schema version ${latest}, newer than this version of @vectorlink/task knows (${known}); upgrade the library`
          })
        }
        for (const migration of all) {
          if (migration.id <= latest) continue
          for (const statement of migration.sql) yield* run(statement)
          yield* run(`INSERT INTO ${p}migrations (migration_id, name, created_at) VALUES (?, ?, ?)`, [
            migration.id,
            migration.name,
            Date.now()
          ])
        }
      })
    ).pipe(Effect.mapError((e) => (e._tag === "SqlError" ? fail("migrate")(e) : e)))

    const getInfo = (id: string) =>
      Effect.gen(function* () {
        const rows = yield* run<MetaRow>(`SELECT ${metaColumns} FROM ${p}tasks WHERE id = ?`, [id]).pipe(
          Effect.mapError(fail("read", id))
        )
        return rows[0] === undefined ? yield* new TaskNotFound({ id }) : toInfo(rows[0])
      })

    const service: Service = {
      create: (record) =>
        Effect.flatMap(TaskId.validate(record.id), (id) =>
          locked(
            id,
            Effect.gen(function* () {
              const statement = insert(`${p}tasks`, id, record, " ON CONFLICT (id) DO NOTHING")
              const rows = yield* run<MetaRow>(statement.text, statement.params)
              if (rows[0] === undefined) return yield* new TaskAlreadyExists({ id })
              // Logs left by a deleted task of the same id must not show up in the new one.
              yield* run(`DELETE FROM ${p}logs WHERE task_id = ?`, [id])
              return toInfo(rows[0])
            })
          ).pipe(Effect.catchTag("SqlError", (e) => Effect.fail(fail("create", id)(e))))
        ),
      get: (id) =>
        Effect.flatMap(TaskId.validate(id), (id) =>
          Effect.gen(function* () {
            const rows = yield* run<FullRow>(`SELECT * FROM ${p}tasks WHERE id = ?`, [id]).pipe(
              Effect.mapError(fail("read", id))
            )
            return rows[0] === undefined ? yield* new TaskNotFound({ id }) : toRecord(rows[0])
          })
        ),
      getInfo: (id) => Effect.flatMap(TaskId.validate(id), getInfo),
      update: (id, expected, patch) =>
        Effect.flatMap(TaskId.validate(id), (id) =>
          Effect.gen(function* () {
            // One statement: compare-and-swap on the revision, atomically, without a read first.
            const cas = casUpdate(`${p}tasks`, id, expected, patch)
            const rows = yield* run<MetaRow>(cas.text, cas.params).pipe(Effect.mapError(fail("update", id)))
            if (rows[0] !== undefined) return toInfo(rows[0])
            const current = yield* getInfo(id)
            return yield* new RevisionConflict({ id, expected, found: current.revision })
          })
        ),
      list: (filter = {}) =>
        Effect.gen(function* () {
          const query = listPage(`${p}tasks`, filter)
          const rows = yield* run<MetaRow>(query.text, query.params).pipe(Effect.mapError(fail("list")))
          return toPage(rows, query.limit)
        }),
      delete: (id, expected) =>
        Effect.flatMap(TaskId.validate(id), (id) =>
          locked(
            id,
            Effect.gen(function* () {
              const deleted = yield* run<{ id: string }>(
                `DELETE FROM ${p}tasks WHERE id = ?${expected === undefined ? "" : " AND revision = ?"} RETURNING id`,
                expected === undefined ? [id] : [id, expected]
              )
              if (deleted.length === 0) {
                const current = yield* run<{ revision: number }>(`SELECT revision FROM ${p}tasks WHERE id = ?`, [id])
                return yield* current[0] === undefined
                  ? Effect.fail(new TaskNotFound({ id }))
                  : // A row that exists was missed only by a delete that named a revision.
                    Effect.fail(new RevisionConflict({ id, expected: expected!, found: Number(current[0].revision) }))
              }
              yield* run(`DELETE FROM ${p}logs WHERE task_id = ?`, [id])
            })
          ).pipe(Effect.catchTag("SqlError", (e) => Effect.fail(fail("delete", id)(e))))
        ),
      appendLogs: (id, lines, logOptions) =>
        Effect.flatMap(TaskId.validate(id), (id) => {
          // Stryker disable next-line ConditionalExpression: no lines make an empty transaction; this only saves it.
          if (lines.length === 0) return Effect.void
          const keep = logOptions?.keep ?? defaultKeepLogs
          return locked(
            id,
            Effect.gen(function* () {
              const last = Number(
                (yield* run<{ seq: number | null }>(`SELECT MAX(seq) AS seq FROM ${p}logs WHERE task_id = ?`, [id]))[0]!
                  .seq ?? 0
              )
              let seq = last
              const values: Array<unknown> = []
              for (const line of lines) values.push(id, ++seq, line.time, line.level, line.message)
              yield* run(
                `INSERT INTO ${p}logs (task_id, seq, time, level, message) VALUES ${lines.map(() => "(?, ?, ?, ?, ?)").join(", ")}`,
                values
              )
              // Stryker disable next-line ConditionalExpression,EqualityOperator: under the bound the DELETE matches no row.
              if (seq > keep) yield* run(`DELETE FROM ${p}logs WHERE task_id = ? AND seq <= ?`, [id, seq - keep])
            })
          ).pipe(Effect.mapError(fail("appendLogs", id)))
        }),
      readLogs: (id, logOptions) =>
        Effect.flatMap(TaskId.validate(id), (id) => {
          const after = logOptions?.after ?? 0
          const limit = logOptions?.limit
          return run<{ seq: number; time: string | number; level: string; message: string }>(
            `SELECT seq, time, level, message FROM ${p}logs WHERE task_id = ? AND seq > ? ORDER BY seq${
              limit === undefined ? "" : " LIMIT ?"
            }`,
            limit === undefined ? [id, after] : [id, after, limit]
          ).pipe(
            Effect.map((rows) =>
              rows.map((r) => ({ seq: Number(r.seq), time: Number(r.time), level: r.level, message: r.message }))
            ),
            Effect.mapError(fail("readLogs", id))
          )
        })
    }
    return service
  })

/** The store over a Postgres client you provide (to share its pool). */
export const layerClient = (
  options: Omit<Options, "url" | "maxConnections"> = {}
): Layer.Layer<TaskStore, TaskStoreError, SqlClient.SqlClient> => Layer.scoped(TaskStore, make(options))

/** The store in the Postgres database at `url`. */
export const layer = (options: Options): Layer.Layer<TaskStore, TaskStoreError> =>
  layerClient(options).pipe(
    Layer.provide(
      PgClient.layer({
        url: Redacted.make(options.url),
        maxConnections: options.maxConnections ?? 10,
        connectTimeout: "5 seconds"
      })
    ),
    Layer.catchAll((error) =>
      Layer.fail(
        error instanceof TaskStoreError
          ? error
          : new TaskStoreError({
              reason: "Unavailable",
              operation: "open",
              // The driver's own words (e.g. "connect ECONNREFUSED 127.0.0.1:5432"), not the client's wrapper.
              detail: `cannot connect to Postgres: ${String((error as { cause?: { message?: string } }).cause?.message ?? error)}`,
              cause: error
            })
      )
    )
  )

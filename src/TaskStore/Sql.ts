/**
 * The SQL store: one driver over any `SqlClient` of a dialect it knows (SQLite, Postgres). Metadata lives in plain
 * columns (JSON text for the nested parts), data in BLOB/BYTEA columns; compare-and-swap is one
 * `UPDATE … WHERE id = ? AND revision = ? RETURNING …`. It migrates its own tables, named with a prefix (`vltask_` by
 * default) so it can share a database with yours.
 *
 * What differs by dialect: statements that must go together run in a transaction that takes the write lock first —
 * `BEGIN IMMEDIATE` in SQLite (so it waits on the busy timeout instead of failing on the upgrade from read to write),
 * a transaction-level advisory lock on the task in Postgres (so concurrent writers of one task's logs queue); the
 * column types; and what an error code says about the store.
 *
 * `Sqlite.ts` and `Postgres.ts` build the client (and, for SQLite, set up the connection) and provide it.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { RevisionConflict, TaskAlreadyExists, TaskNotFound, TaskStoreError } from "../TaskError.js"
import * as TaskRecord from "../TaskRecord.js"
import * as TaskStore from "../TaskStore.js"
import * as AtOnce from "../internal/atOnce.js"
import * as ChangeFeed from "../internal/changeFeed.js"
import * as DataVersion from "../internal/sql/dataVersion.js"
import * as Direct from "../internal/sql/direct.js"

/**
 * Options of the SQL store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The prefix of the store's tables (default `vltask_`): lower-case letters, digits and `_`. */
  readonly tablePrefix?: string | undefined
  /**
   * How the store announces and hears of changes between connections, where the database has a way (Postgres
   * `LISTEN/NOTIFY`: `TaskStore/Postgres` gives it). Without it a SQLite store watches its `data_version`, and any
   * other store hears of nothing (readers poll).
   */
  readonly signals?: Signals | undefined
}

/**
 * A channel between the connections of one store: requests (pause, cancel) are announced on it by task id.
 *
 * @since 0.1.0
 * @category models
 */
export interface Signals {
  /** The ids announced, while consumed. */
  readonly listen: Stream.Stream<string | undefined>
  /** Announces that the record of `id` changed (best effort: a failure is only a later look). */
  readonly announce: (id: string) => Effect.Effect<void>
}

/** How often a SQLite store looks at its `data_version` while someone follows its changes. */
const sqliteChangeCheck = Duration.millis(25)

/** How many records' metadata a store keeps for updates without `RETURNING` (see `known` in `make`). */
const knownLimit = 4096

/**
 * A database written by a newer version of this library than the one running.
 *
 * @since 0.1.0
 * @category errors
 */
export class SchemaTooNew extends TaskStoreError {}

/** The dialects this store speaks. */
type Dialect = "sqlite" | "pg"

/** A migration: statements applied in order, in one locked transaction, recorded in `<prefix>migrations`. */
interface Migration {
  readonly id: number
  readonly name: string
  readonly statements: (p: string, dialect: Dialect) => ReadonlyArray<string>
}

/** Column types by dialect: SQLite compares TEXT by code unit already; Postgres needs `COLLATE "C"` for that. */
const types = {
  sqlite: { id: "TEXT NOT NULL", int: "INTEGER", bytes: "BLOB", logsTable: " WITHOUT ROWID" },
  pg: { id: 'TEXT COLLATE "C"', int: "BIGINT", bytes: "BYTEA", logsTable: "" }
} as const

/**
 * The schema's history. Migration 2 drops two columns that were written and never read (the lease is read from its
 * JSON column, and the compare-and-swap is on the revision).
 *
 * @since 0.1.0
 * @category migrations
 */
export const migrations: ReadonlyArray<Migration> = [
  {
    id: 1,
    name: "create_tasks",
    statements: (p, dialect) => {
      const t = types[dialect]
      return [
        `CREATE TABLE ${p}tasks (
        id ${t.id} PRIMARY KEY,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        revision INTEGER NOT NULL,
        progress TEXT NOT NULL,
        lease TEXT,
        lease_token TEXT,
        lease_expires_at ${t.int},
        interrupt TEXT,
        reason TEXT,
        failure TEXT,
        attempts INTEGER NOT NULL,
        created_at ${t.int} NOT NULL,
        updated_at ${t.int} NOT NULL,
        started_at ${t.int},
        finished_at ${t.int},
        polled_at ${t.int},
        input ${t.bytes} NOT NULL,
        state ${t.bytes},
        result ${t.bytes},
        error ${t.bytes}
      )`,
        `CREATE INDEX ${p}tasks_status_id ON ${p}tasks (status, id)`,
        `CREATE INDEX ${p}tasks_kind_status_id ON ${p}tasks (kind, status, id)`,
        `CREATE TABLE ${p}logs (
        task_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        time ${t.int} NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL,
        PRIMARY KEY (task_id, seq)
      )${t.logsTable}`
      ]
    }
  },
  {
    id: 2,
    name: "drop_unread_lease_columns",
    statements: (p) => [
      `ALTER TABLE ${p}tasks DROP COLUMN lease_token`,
      `ALTER TABLE ${p}tasks DROP COLUMN lease_expires_at`
    ]
  },
  {
    id: 3,
    name: "queue",
    // Workers claim the pending task of highest priority, oldest first, once its run-after time has come: an index
    // of pending tasks only, in that order, keeps a claim O(log n) in the length of the queue (and costs nothing for
    // tasks that are not pending).
    statements: (p, dialect) => [
      `ALTER TABLE ${p}tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0`,
      `ALTER TABLE ${p}tasks ADD COLUMN run_at ${types[dialect].int}`,
      `CREATE INDEX ${p}tasks_pending ON ${p}tasks (priority DESC, created_at, id) WHERE status = 'pending'`
    ]
  },
  {
    id: 4,
    name: "families",
    // A child task names its parent: listing a family is an index range, and tasks without a parent cost the index
    // nothing.
    statements: (p, dialect) => [
      `ALTER TABLE ${p}tasks ADD COLUMN parent ${dialect === "pg" ? 'TEXT COLLATE "C"' : "TEXT"}`,
      `ALTER TABLE ${p}tasks ADD COLUMN weight ${dialect === "pg" ? "DOUBLE PRECISION" : "REAL"}`,
      `CREATE INDEX ${p}tasks_parent ON ${p}tasks (parent, id) WHERE parent IS NOT NULL`
    ]
  },
  {
    id: 5,
    name: "drop_orphan_logs",
    // Creating a task no longer clears its id's log (one statement instead of a transaction of three): lines that
    // earlier versions could leave under an id without a record go now, and `appendLogs` adds none such any more.
    statements: (p) => [`DELETE FROM ${p}logs WHERE task_id NOT IN (SELECT id FROM ${p}tasks)`]
  }
]

// ---- rows ----------------------------------------------------------------------------------------------------------

/** The metadata columns, in `SELECT` and `RETURNING` order. */
const metaColumns =
  "id, kind, status, revision, progress, lease, interrupt, reason, failure, attempts, created_at, updated_at, started_at, finished_at, polled_at, priority, run_at, parent, weight"

/**
 * Every column of a record, in `SELECT` and `RETURNING` order: named, never `*`, so that a column a newer version adds
 * (a rolling upgrade) changes no statement's result (Postgres refuses to run a prepared statement whose result
 * would change: "cached plan must not change result type").
 */
const allColumns = `${metaColumns}, input, state, result, error`

/** A row of metadata as drivers return it (Postgres returns BIGINT as strings; JSON columns are TEXT everywhere). */
interface MetaRow {
  readonly id: string
  readonly kind: string
  readonly status: TaskRecord.Status
  readonly revision: number | string
  readonly progress: string
  readonly lease: string | null
  readonly interrupt: TaskRecord.Interrupt | null
  readonly reason: string | null
  readonly failure: string | null
  readonly attempts: number | string
  readonly created_at: number | string
  readonly updated_at: number | string
  readonly started_at: number | string | null
  readonly finished_at: number | string | null
  readonly polled_at: number | string | null
  readonly priority: number | string
  readonly run_at: number | string | null
  readonly parent: string | null
  readonly weight: number | string | null
}

/** A whole row. */
interface FullRow extends MetaRow {
  readonly input: Uint8Array
  readonly state: Uint8Array | null
  readonly result: Uint8Array | null
  readonly error: Uint8Array | null
}

const toInfo = (row: MetaRow): TaskRecord.TaskInfo => {
  const info: Record<string, unknown> = {
    id: row.id,
    kind: row.kind,
    status: row.status,
    revision: Number(row.revision),
    progress: JSON.parse(row.progress),
    attempts: Number(row.attempts),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at)
  }
  if (row.lease !== null) info.lease = JSON.parse(row.lease)
  if (row.interrupt !== null) info.interrupt = row.interrupt
  if (row.reason !== null) info.reason = row.reason
  if (row.failure !== null) info.failure = JSON.parse(row.failure)
  if (row.started_at !== null) info.startedAt = Number(row.started_at)
  if (row.finished_at !== null) info.finishedAt = Number(row.finished_at)
  if (row.polled_at !== null) info.polledAt = Number(row.polled_at)
  if (Number(row.priority) !== 0) info.priority = Number(row.priority)
  if (row.run_at !== null) info.runAt = Number(row.run_at)
  if (row.parent !== null) info.parent = row.parent
  if (row.weight !== null) info.weight = Number(row.weight)
  return info as TaskRecord.TaskInfo
}

const toRecord = (row: FullRow): TaskRecord.TaskRecord => {
  // `toInfo` makes a new object: the data goes into it (a literal starting with a spread is slow to build).
  const record = toInfo(row) as Record<string, unknown>
  record.input = row.input
  if (row.state !== null) record.state = row.state
  if (row.result !== null) record.result = row.result
  if (row.error !== null) record.error = row.error
  return record as unknown as TaskRecord.TaskRecord
}

/** Metadata as its row reads back (`toInfo`): no field left `undefined`, and a priority of 0 is no priority. */
const asStored = (info: TaskRecord.TaskInfo): TaskRecord.TaskInfo => {
  const out = info as Record<string, unknown>
  for (const key of Object.keys(out)) if (out[key] === undefined) delete out[key]
  if (out.priority === 0) delete out.priority
  return info
}

/** better-sqlite3 binds Buffers as BLOBs (a view, not a copy); node-postgres binds them as BYTEA. */
const blob = (bytes: Uint8Array | undefined): Buffer | null =>
  bytes === undefined ? null : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
// Stryker disable next-line ConditionalExpression: the drivers bind `undefined` as NULL too.
const json = (value: unknown): string | null => (value === undefined ? null : JSON.stringify(value))
// Stryker disable next-line ConditionalExpression: the drivers bind `undefined` as NULL too.
const orNull = <A>(value: A | undefined): A | null => (value === undefined ? null : value)

/** The columns a patch sets, and their values. */
const columnsOf = (patch: TaskRecord.TaskPatch): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  const has = (key: keyof TaskRecord.TaskPatch) => Object.prototype.hasOwnProperty.call(patch, key)
  if (has("status")) out.status = patch.status
  if (has("progress")) out.progress = json(patch.progress)
  if (has("lease")) out.lease = json(patch.lease)
  if (has("interrupt")) out.interrupt = orNull(patch.interrupt)
  if (has("reason")) out.reason = orNull(patch.reason)
  if (has("failure")) out.failure = json(patch.failure)
  if (has("attempts")) out.attempts = patch.attempts
  if (has("updatedAt")) out.updated_at = patch.updatedAt
  if (has("startedAt")) out.started_at = orNull(patch.startedAt)
  if (has("finishedAt")) out.finished_at = orNull(patch.finishedAt)
  if (has("polledAt")) out.polled_at = orNull(patch.polledAt)
  if (has("priority")) out.priority = patch.priority ?? 0
  if (has("runAt")) out.run_at = orNull(patch.runAt)
  if (has("state")) out.state = blob(patch.state)
  if (has("result")) out.result = blob(patch.result)
  if (has("error")) out.error = blob(patch.error)
  return out
}

/** The columns of a new record. */
const rowOf = (record: TaskRecord.TaskRecord): Record<string, unknown> => ({
  id: record.id,
  kind: record.kind,
  status: record.status,
  revision: record.revision,
  progress: json(record.progress),
  lease: json(record.lease),
  interrupt: orNull(record.interrupt),
  reason: orNull(record.reason),
  failure: json(record.failure),
  attempts: record.attempts,
  created_at: record.createdAt,
  updated_at: record.updatedAt,
  started_at: orNull(record.startedAt),
  finished_at: orNull(record.finishedAt),
  polled_at: orNull(record.polledAt),
  priority: record.priority ?? 0,
  run_at: orNull(record.runAt),
  parent: orNull(record.parent),
  weight: orNull(record.weight),
  input: blob(record.input),
  state: blob(record.state),
  result: blob(record.result),
  error: blob(record.error)
})

// ---- errors --------------------------------------------------------------------------------------------------------

const errorCode = (error: SqlError): string | undefined => (error.cause as { code?: string } | undefined)?.code

/** Postgres codes (SQLSTATE) and socket errors that say the database cannot be reached now, not that a query is wrong. */
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
 * What a failed Postgres query says about the store: `Unavailable` when the server cannot be reached (connection
 * exceptions, class 08, a terminated or refused connection), `Io` for any other error the server reports with a code,
 * `Unknown` for anything else (a driver error that is none of these).
 *
 * @since 0.1.0
 * @category errors
 */
export const reasonOfPostgres = (error: SqlError): "Unavailable" | "Io" | "Unknown" => {
  const code = errorCode(error)
  if (code !== undefined) return code.startsWith("08") || unreachableCodes.has(code) ? "Unavailable" : "Io"
  const message = (error.cause as Error | undefined)?.message ?? error.message
  return connectionLost.test(message) ? "Unavailable" : "Unknown"
}

/**
 * What a SQLite result code says about the store: busy (retry), damaged, or any other I/O failure.
 *
 * @since 0.1.0
 * @category errors
 */
export const reasonOfSqlite = (code: string | undefined): "Unavailable" | "Corrupt" | "Io" =>
  code === "SQLITE_BUSY" || code === "SQLITE_LOCKED" ? "Unavailable" : code === "SQLITE_CORRUPT" ? "Corrupt" : "Io"

// ---- the driver ----------------------------------------------------------------------------------------------------

/** A driver's error on the direct connection, as the client would have reported it. */
const executeError = (cause: unknown) => new SqlError({ cause, message: "Failed to execute statement" })

/**
 * Builds the store over the `SqlClient` in context: migrates its tables, and returns the service. Fails on a dialect
 * it does not speak, a malformed prefix, or a schema newer than this library.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<TaskStore.Service, TaskStoreError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    // A client built by `Sqlite.layer` or `Postgres.layer` has a plain connection beside it for the hot path
    // (`internal/sql/direct.ts`).
    const direct = Direct.of(sql)
    const dialect = sql.onDialectOrElse<Dialect | undefined, Dialect, Dialect>({
      sqlite: () => "sqlite",
      pg: () => "pg",
      orElse: () => undefined
    })
    if (dialect === undefined) {
      return yield* new TaskStoreError({
        reason: "Unknown",
        operation: "open",
        detail: "the SQL store speaks SQLite and Postgres; this client is of another dialect"
      })
    }
    const p = options.tablePrefix ?? "vltask_"
    if (!/^[a-z_][a-z0-9_]*$/.test(p)) {
      return yield* new TaskStoreError({
        reason: "Unknown",
        operation: "open",
        detail: `the table prefix ${JSON.stringify(p)} must be lower-case letters, digits and '_'`
      })
    }
    const tasks = sql(`${p}tasks`)
    const logs = sql(`${p}logs`)
    const meta = sql.literal(metaColumns)

    const fail =
      (operation: string, id?: string) =>
      (error: SqlError): TaskStoreError => {
        const code = errorCode(error)
        return new TaskStoreError({
          reason: dialect === "pg" ? reasonOfPostgres(error) : reasonOfSqlite(code),
          operation,
          detail: String((error.cause as Error | undefined)?.message ?? error.message),
          cause: error,
          ...(code === undefined ? {} : { errno: code }),
          ...(id === undefined ? {} : { id })
        })
      }

    /** Transactions of this store open or on their way (while any is, the direct connection is not used). */
    let transactions = 0

    /** Runs `effect` in a transaction that holds the write lock of `key` from its first statement. */
    const locked = <A, E>(key: string, effect: Effect.Effect<A, E>): Effect.Effect<A, E | SqlError> =>
      dialect === "sqlite"
        ? // One writer at a time for the whole database: take the lock at BEGIN, waiting on the busy timeout.
          counted(
            Effect.scoped(
              Effect.flatMap(sql.reserve, (conn) =>
                Effect.acquireUseRelease(
                  conn.executeRaw("BEGIN IMMEDIATE", []),
                  () =>
                    Effect.tap(Effect.provideService(effect, SqlClient.TransactionConnection, [conn, 0]), () =>
                      conn.executeRaw("COMMIT", [])
                    ),
                  (_, exit) => (Exit.isSuccess(exit) ? Effect.void : Effect.ignore(conn.executeRaw("ROLLBACK", [])))
                )
              )
            )
          )
        : sql
            .withTransaction(Effect.zipRight(sql`SELECT pg_advisory_xact_lock(hashtext(${`${p}${key}`}))`, effect))
            .pipe(
              // @effect/sql turns a failed COMMIT or ROLLBACK into a defect; here that is a lost connection: a failure.
              Effect.catchSomeDefect((defect) =>
                defect instanceof SqlError ? Option.some(Effect.fail(defect)) : Option.none()
              )
            )

    /** `effect` counted in `transactions` while it runs. */
    function counted<A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> {
      return Effect.suspend(() => {
        transactions++
        return Effect.ensuring(
          effect,
          Effect.sync(() => {
            transactions--
          })
        )
      })
    }

    /**
     * One statement: on the direct connection when there is one (a synchronous one only while no transaction is
     * about, decided when it runs), else through the client; its rows turned into `A` by `then`, or its failure by
     * `failure`.
     */
    const statement = <A, E, F>(
      text: string,
      params: ReadonlyArray<unknown>,
      then: (rows: ReadonlyArray<any>) => Effect.Effect<A, E>,
      failure: (error: SqlError) => F
    ): Effect.Effect<A, E | F> =>
      Effect.suspend((): Effect.Effect<A, E | F> => {
        if (direct?._tag === "Async") return Effect.flatMap(awaited(direct.all, text, params, failure), then)
        if (direct?._tag === "Sync" && transactions === 0) {
          let rows: ReadonlyArray<unknown>
          try {
            rows = direct.all(text, params)
          } catch (cause) {
            return Effect.fail(failure(executeError(cause)))
          }
          return then(rows)
        }
        return Effect.flatMap(Effect.mapError(sql.unsafe(text, params).withoutTransform, failure), then)
      })

    /** What a statement on an asynchronous direct connection gives, or its failure as `failure` makes it. */
    function awaited<A, F>(
      run: (text: string, params: ReadonlyArray<unknown>) => Promise<A>,
      text: string,
      params: ReadonlyArray<unknown>,
      failure: (error: SqlError) => F
    ): Effect.Effect<A, F> {
      return Effect.async<A, F>((resume) => {
        try {
          run(text, params).then(
            (value) => resume(Effect.succeed(value)),
            (cause) => resume(Effect.fail(failure(executeError(cause))))
          )
        } catch (cause) {
          resume(Effect.fail(failure(executeError(cause))))
        }
      })
    }

    /** The `n`-th parameter (from 1) of a statement. */
    const param = (n: number) => (dialect === "pg" ? `$${n}` : "?")

    /**
     * SQL text by the columns an update sets (a handful of shapes: checkpoint, heartbeat, end, claim…): returning the
     * new metadata, or (`lean`) returning nothing, for a row whose metadata the store knows (see `known`), where the
     * creation time rules out a record deleted and created again under the same id up to the same revision.
     */
    const updateTexts = new Map<string, string>()
    const updateText = (columns: ReadonlyArray<string>, lean = false) => {
      const key = `${lean}:${columns.join(",")}`
      let text = updateTexts.get(key)
      if (text === undefined) {
        const sets = [...columns.map((c, i) => `"${c}" = ${param(i + 1)}`), "revision = revision + 1"].join(", ")
        const n = columns.length
        const where = `id = ${param(n + 1)} AND revision = ${param(n + 2)}`
        text = lean
          ? `UPDATE "${p}tasks" SET ${sets} WHERE ${where} AND created_at = ${param(n + 3)}`
          : `UPDATE "${p}tasks" SET ${sets} WHERE ${where} RETURNING ${metaColumns}`
        updateTexts.set(key, text)
      }
      return text
    }

    /**
     * With a direct connection: the metadata of the records this store last wrote or read, by id, at most
     * `knownLimit`. An update from the revision known here needs no `RETURNING` (that clause costs about a tenth of a
     * checkpoint's statement on SQLite, and Postgres's client reads and parses the row it returns: `npx tsx
     * bench/clients.ts`): the new metadata is the known one with the patch applied, as the row now holds it.
     */
    const known = direct === undefined ? undefined : new Map<string, TaskRecord.TaskInfo>()
    const remember = (info: TaskRecord.TaskInfo): TaskRecord.TaskInfo => {
      if (known !== undefined) {
        known.delete(info.id)
        known.set(info.id, info)
        // Stryker disable next-line ConditionalExpression,EqualityOperator: a bound on memory only.
        if (known.size > knownLimit) known.delete(known.keys().next().value!)
      }
      return info
    }
    const rowColumns = Object.keys(
      rowOf({
        id: "",
        kind: "",
        status: "pending",
        revision: 1,
        progress: { done: 0 },
        attempts: 0,
        createdAt: 0,
        updatedAt: 0,
        input: new Uint8Array(0)
      })
    )
    const insertText = `INSERT INTO "${p}tasks" (${rowColumns.map((c) => `"${c}"`).join(", ")}) VALUES (${rowColumns
      .map((_, i) => param(i + 1))
      .join(", ")}) ON CONFLICT (id) DO NOTHING RETURNING id`
    const getInfoText = `SELECT ${metaColumns} FROM "${p}tasks" WHERE id = ${param(1)}`
    const getText = `SELECT ${allColumns} FROM "${p}tasks" WHERE id = ${param(1)}`

    /** The claim of `claimNext` for `kinds` kinds (at least one). */
    const claimTexts = new Map<number, string>()
    const claimText = (kinds: number) => {
      let text = claimTexts.get(kinds)
      if (text === undefined) {
        const kindParams = Array.from({ length: kinds }, (_, i) => param(i + 4)).join(", ")
        text = `UPDATE "${p}tasks" SET status = 'running', lease = ${param(1)}, interrupt = NULL, reason = NULL,
          failure = NULL, error = NULL, finished_at = NULL, run_at = NULL, attempts = attempts + 1,
          started_at = COALESCE(started_at, ${param(2)}), updated_at = ${param(3)}, revision = revision + 1
        WHERE id = (SELECT id FROM "${p}tasks" WHERE status = 'pending' AND kind IN (${kindParams})
          AND (run_at IS NULL OR run_at <= ${param(kinds + 4)})
          ORDER BY priority DESC, created_at, id LIMIT 1${dialect === "pg" ? " FOR UPDATE SKIP LOCKED" : ""})
        RETURNING ${allColumns}`
        claimTexts.set(kinds, text)
      }
      return text
    }

    // ---- schema --------------------------------------------------------------------------------------------------

    yield* locked(
      "migrations",
      Effect.gen(function* () {
        yield* sql`CREATE TABLE IF NOT EXISTS ${sql(`${p}migrations`)} (
          migration_id INTEGER PRIMARY KEY NOT NULL,
          name TEXT NOT NULL,
          created_at ${sql.literal(types[dialect].int)} NOT NULL
        )`
        const rows = yield* sql<{ id: number | string | null }>`SELECT MAX(migration_id) AS id FROM ${sql(
          `${p}migrations`
        )}`.withoutTransform
        const latest = Number(rows[0]?.id ?? 0)
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
          for (const statement of migration.statements(p, dialect)) yield* sql.unsafe(statement)
          yield* sql`INSERT INTO ${sql(`${p}migrations`)} ${sql.insert({
            migration_id: migration.id,
            name: migration.name,
            created_at: Date.now()
          })}`
        }
      })
    ).pipe(Effect.mapError((e) => (e._tag === "SqlError" ? fail("migrate")(e) : e)))

    // ---- the driver ----------------------------------------------------------------------------------------------

    /** The first row as `A`, or `TaskNotFound`. */
    const found = <Row, A>(rows: ReadonlyArray<Row>, id: string, make: (row: Row) => A) =>
      rows[0] === undefined ? Effect.fail(new TaskNotFound({ id })) : Effect.succeed(make(rows[0]))

    const getInfo = (id: string) =>
      statement(
        getInfoText,
        [id],
        (rows: ReadonlyArray<MetaRow>) => found(rows, id, (row) => remember(toInfo(row))),
        fail("read", id)
      )

    /** Fails with the conflict a compare-and-swap on a row that exists missed, or `TaskNotFound`. */
    const missed = (id: string, expected: number) =>
      Effect.flatMap(
        sql<{ revision: number | string }>`SELECT revision FROM ${tasks} WHERE id = ${id}`.withoutTransform,
        (rows): Effect.Effect<never, TaskNotFound | RevisionConflict> =>
          rows[0] === undefined
            ? Effect.fail(new TaskNotFound({ id }))
            : Effect.fail(new RevisionConflict({ id, expected, found: Number(rows[0].revision) }))
      )

    /** Log lines go in by batches, well under every dialect's limit on parameters. */
    const logBatch = 500

    /** The rows of a statement, or the conflict a compare-and-swap on a row that exists missed. */
    const updatedOrMissed = (id: string, expected: number) => (rows: ReadonlyArray<MetaRow>) => {
      if (rows[0] !== undefined) return Effect.succeed(remember(toInfo(rows[0])))
      known?.delete(id)
      return Effect.catchTag(missed(id, expected), "SqlError", (e) => Effect.fail(fail("update", id)(e)))
    }

    /**
     * An update from the known metadata, when the store knows the revision it is from and may use its direct
     * connection now (no transaction about); `undefined` when not.
     */
    const leanUpdate = (
      id: string,
      expected: number,
      patch: TaskRecord.TaskPatch,
      columns: Record<string, unknown>
    ): Effect.Effect<TaskRecord.TaskInfo, TaskNotFound | RevisionConflict | TaskStoreError> | undefined => {
      if (direct === undefined || (direct._tag === "Sync" && transactions > 0)) return undefined
      const lean = leanStatement(id, expected, columns)
      if (lean === undefined) return undefined
      const { base, text, params } = lean
      const failed = (e: SqlError) => {
        known!.delete(id)
        return fail("update", id)(e)
      }
      const applied = (changed: number) =>
        changed === 0 ? updatedOrMissed(id, expected)([]) : Effect.succeed(leanApplied(base, patch))
      if (direct._tag === "Async") return Effect.flatMap(awaited(direct.run, text, params, failed), applied)
      let changed: number
      try {
        changed = direct.run(text, params)
      } catch (cause) {
        return Effect.fail(failed(executeError(cause)))
      }
      return applied(changed)
    }

    /** The statement of an update from the known revision, or `undefined` when the store does not know it. */
    const leanStatement = (id: string, expected: number, columns: Record<string, unknown>) => {
      const base = known?.get(id)
      if (base === undefined || base.revision !== expected) return undefined
      return {
        base,
        text: updateText(Object.keys(columns), true),
        params: [...Object.values(columns), id, expected, base.createdAt]
      }
    }

    /** The metadata after a lean update of `base` by `patch`, remembered. */
    const leanApplied = (base: TaskRecord.TaskInfo, patch: TaskRecord.TaskPatch) =>
      // The patch's byte fields (state, result, error) are not metadata: `info` leaves them out.
      remember(
        asStored(TaskRecord.info(TaskRecord.applyPatch(base, patch) as TaskRecord.TaskInfo as TaskRecord.TaskRecord))
      )

    /** Whether a write of `patch` is announced to other processes once stored (see `update`). */
    const announced = (patch: TaskRecord.TaskPatch) => options.signals !== undefined && ChangeFeed.announced(patch)

    /**
     * A lean update made at once (`AtOnce.Write`): on a synchronous direct connection, with no transaction about,
     * from the known revision, of a write nobody is told of; its failure as `update` reports it. Anything else, a
     * conflict included, is left to `update`.
     */
    const updateAtOnce: AtOnce.Write = (id, expected, patch) => {
      if (direct?._tag !== "Sync" || transactions > 0 || announced(patch)) return undefined
      const lean = leanStatement(id, expected, columnsOf(patch))
      if (lean === undefined) return undefined
      let changed: number
      try {
        changed = direct.run(lean.text, lean.params)
      } catch (cause) {
        known!.delete(id)
        // Not left to `update` to meet again: a database locked by another process would be waited for twice.
        return fail("update", id)(executeError(cause))
      }
      if (changed === 0) {
        known!.delete(id)
        return undefined
      }
      return leanApplied(lean.base, patch)
    }

    /**
     * A lean update issued at once on an asynchronous direct connection (`AtOnce.WriteAsync`), from the known
     * revision, of a write nobody is told of; once answered, what `updateAtOnce` gives.
     */
    const updateAsync: AtOnce.WriteAsync = (id, expected, patch) => {
      if (direct?._tag !== "Async" || announced(patch)) return undefined
      const lean = leanStatement(id, expected, columnsOf(patch))
      if (lean === undefined) return undefined
      const failed = (cause: unknown) => {
        known!.delete(id)
        return fail("update", id)(executeError(cause))
      }
      let changed: Promise<number>
      try {
        changed = direct.run(lean.text, lean.params)
      } catch (cause) {
        return Promise.resolve(failed(cause))
      }
      return changed.then((n) => {
        if (n > 0) return leanApplied(lean.base, patch)
        known!.delete(id)
        return undefined
      }, failed)
    }

    const service = TaskStore.make({
      create: (record) => {
        const inserted = (rows: ReadonlyArray<unknown>) => {
          if (rows.length === 0) return Effect.fail(new TaskAlreadyExists({ id: record.id }))
          remember(asStored(TaskRecord.info(record)))
          return Effect.void
        }
        // One statement (one round trip, one commit). Lines left under the id by a deleted task never show up in the
        // new one: a delete takes them with it, and `appendLogs` stores nothing for an id without a record.
        const created = statement(insertText, Object.values(rowOf(record)), inserted, fail("create", record.id))
        // A submitted task is announced once stored: idle workers, wherever they are, claim it at once.
        return options.signals !== undefined && record.status === "pending"
          ? Effect.tap(created, () => options.signals!.announce(record.id))
          : created
      },
      get: (id) =>
        statement(
          getText,
          [id],
          (rows: ReadonlyArray<FullRow>) =>
            found(rows, id, (row) => {
              const record = toRecord(row)
              remember(TaskRecord.info(record))
              return record
            }),
          fail("read", id)
        ),
      getInfo,
      update: (id, expected, patch) => {
        // One statement: compare-and-swap on the revision, atomically, without a read first.
        const columns = columnsOf(patch)
        const updated = Effect.suspend(
          () =>
            leanUpdate(id, expected, patch, columns) ??
            statement(
              updateText(Object.keys(columns)),
              [...Object.values(columns), id, expected],
              updatedOrMissed(id, expected),
              fail("update", id)
            )
        )
        // A request for the task's runner, wherever it is, is announced once it is stored; so is a task handed back
        // to the queue (a worker shutting down), for idle workers to claim at once.
        return announced(patch) ? Effect.tap(updated, () => options.signals!.announce(id)) : updated
      },
      list: (query) => {
        const where = [
          ...(query.statuses === undefined ? [] : [sql.in("status", query.statuses)]),
          ...(query.kind === undefined ? [] : [sql`kind = ${query.kind}`]),
          ...(query.parent === undefined ? [] : [sql`parent = ${query.parent}`]),
          ...(query.after === undefined ? [] : [sql`id > ${query.after}`])
        ]
        return sql<MetaRow>`SELECT ${meta} FROM ${tasks} ${
          where.length === 0 ? sql.literal("") : sql`WHERE ${sql.and(where)}`
        } ORDER BY id LIMIT ${query.take}`.withoutTransform.pipe(
          Effect.map((rows) => rows.map(toInfo)),
          Effect.mapError(fail("list"))
        )
      },
      delete: (id, expected) =>
        locked(
          id,
          Effect.gen(function* () {
            const deleted = yield* sql<{ id: string }>`DELETE FROM ${tasks} WHERE id = ${id}${
              expected === undefined ? sql.literal("") : sql` AND revision = ${expected}`
            } RETURNING id`.withoutTransform
            known?.delete(id)
            // A row that exists was missed only by a delete that named a revision.
            if (deleted.length === 0) return yield* missed(id, expected ?? -1)
            yield* sql`DELETE FROM ${logs} WHERE task_id = ${id}`
          })
        ).pipe(Effect.catchTag("SqlError", (e) => Effect.fail(fail("delete", id)(e)))),
      appendLogs: (id, lines, keep) =>
        locked(
          id,
          Effect.gen(function* () {
            // A late flush of a deleted task's lines goes nowhere (the delete holds the same lock): a task created
            // again under its id starts with an empty log.
            const exists = yield* sql`SELECT 1 AS one FROM ${tasks} WHERE id = ${id}`.withoutTransform
            if (exists.length === 0) return
            const last = yield* sql<{
              seq: number | string | null
            }>`SELECT MAX(seq) AS seq FROM ${logs} WHERE task_id = ${id}`.withoutTransform
            let seq = Number(last[0]?.seq ?? 0)
            for (let from = 0; from < lines.length; from += logBatch) {
              const rows = lines
                .slice(from, from + logBatch)
                .map((line) => ({ task_id: id, seq: ++seq, time: line.time, level: line.level, message: line.message }))
              yield* sql`INSERT INTO ${logs} ${sql.insert(rows)}`
            }
            // Stryker disable next-line ConditionalExpression,EqualityOperator: under the bound the DELETE matches no row.
            if (seq > keep) yield* sql`DELETE FROM ${logs} WHERE task_id = ${id} AND seq <= ${seq - keep}`
          })
        ).pipe(Effect.mapError(fail("appendLogs", id))),
      readLogs: (id, after, limit) =>
        sql<{
          seq: number | string
          time: number | string
          level: string
          message: string
        }>`SELECT seq, time, level, message FROM ${logs} WHERE task_id = ${id} AND seq > ${after} ORDER BY seq${
          limit === undefined ? sql.literal("") : sql` LIMIT ${limit}`
        }`.withoutTransform.pipe(
          Effect.map((rows) =>
            rows.map((r) => ({ seq: Number(r.seq), time: Number(r.time), level: r.level, message: r.message }))
          ),
          Effect.mapError(fail("readLogs", id))
        ),
      claimNext: ({ kinds, lease, now }) => {
        if (kinds.length === 0) return Effect.succeed(undefined)
        // Postgres: the oldest pending row nobody else is claiming, locked and updated in one statement; SQLite: the
        // same statement in a transaction that holds the write lock from its start.
        const claimed = (rows: ReadonlyArray<FullRow>) =>
          Effect.succeed(rows[0] === undefined ? undefined : toRecord(rows[0]))
        const claim = statement(claimText(kinds.length), [json(lease), now, now, ...kinds, now], claimed, fail("claim"))
        return dialect === "sqlite"
          ? locked("claim", claim).pipe(Effect.catchTag("SqlError", (e) => Effect.fail(fail("claim")(e))))
          : claim
      },
      changes:
        options.signals?.listen ??
        (dialect === "sqlite"
          ? // Another connection's commit moves `data_version`; this connection's own commits do not.
            // On the direct connection when there is one: the store's own hot writes go through it and do not move
            // it; the client's writes (claims, logs) do, as another process's would.
            direct?._tag === "Sync"
            ? DataVersion.changes(
                () =>
                  (direct.all("PRAGMA data_version", []) as ReadonlyArray<{ data_version: number }>)[0]?.data_version,
                Duration.toMillis(sqliteChangeCheck)
              )
            : Stream.repeatEffectWithSchedule(
                Effect.option(sql<{ data_version: number }>`PRAGMA data_version`.withoutTransform),
                Schedule.spaced(sqliteChangeCheck)
              ).pipe(
                Stream.map((rows) => Option.flatMap(rows, (r) => Option.fromNullable(r[0]?.data_version))),
                Stream.filterMap((version) => version),
                Stream.changes,
                Stream.drop(1),
                Stream.as(undefined)
              )
          : Stream.empty)
    })
    // A synchronous direct connection writes at once (SQLite's); an asynchronous one (Postgres's) issues at once.
    if (direct?._tag === "Sync") return AtOnce.registerWrite(service, updateAtOnce)
    if (direct?._tag === "Async") return AtOnce.registerWriteAsync(service, updateAsync)
    return service
  })

/**
 * The store over the `SqlClient` in context (to share a database or a pool with your own code).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<TaskStore.TaskStore, TaskStoreError, SqlClient.SqlClient> =>
  Layer.scoped(TaskStore.TaskStore, make(options))

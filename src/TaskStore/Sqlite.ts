/**
 * The SQLite store: durable, queryable, safe for many processes on one host, through `@effect/sql-sqlite-node`
 * (better-sqlite3): the SQL store (`Sql.ts`) over a SQLite client, with the connection set up for durability.
 *
 * Durability: WAL with `synchronous = FULL` on the connection (better-sqlite3 would leave WAL databases at NORMAL,
 * which can lose acknowledged commits on power loss); `NORMAL` is an explicit opt-in. Concurrency: a busy timeout, and
 * every multi-statement write runs in a transaction that begins `IMMEDIATE`, so it waits for the write lock instead
 * of failing with SQLITE_BUSY on the upgrade from read to write. Speed: `layer` also opens a plain better-sqlite3
 * connection of its own for the hot path's single statements (a checkpoint's `UPDATE`, a `create`, a read of one
 * record), which skips a client's per-statement work.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import Database from "better-sqlite3"
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import { TaskStoreError } from "../TaskError.js"
import { TaskStore } from "../TaskStore.js"
import type { Service } from "../TaskStore.js"
import * as Direct from "../internal/sql/direct.js"
import * as Sql from "./Sql.js"

/**
 * Options of the SQLite store.
 *
 * @since 0.1.0
 * @category models
 */
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
  /** The prefix of the store's tables (default `vltask_`). */
  readonly tablePrefix?: string | undefined
}

/**
 * A database written by a newer version of this library than the one running.
 *
 * @since 0.1.0
 * @category errors
 */
export const SchemaTooNew = Sql.SchemaTooNew

/**
 * Sets up the SQLite connection in context for durability and concurrency (busy timeout, `synchronous`, WAL), then
 * builds the SQL store over it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Omit<Options, "filename"> = {}
): Effect.Effect<Service, TaskStoreError, SqlClient.SqlClient | Scope.Scope> => build(options, undefined)

/**
 * A connection of the store's own to `filename`, with the client's settings, for the hot path's single statements
 * (see `internal/sql/direct.ts`): prepared once each, run synchronously. Closed with the store.
 */
const directConnection = (filename: string, options: Omit<Options, "filename">) =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => {
        const db = new Database(filename)
        db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 30_000))}`)
        db.pragma(`synchronous = ${options.synchronous ?? "FULL"}`)
        return db
      }),
      (db) => Effect.sync(() => db.close())
    ),
    (db): Direct.Sync => {
      const statements = new Map<string, Database.Statement>()
      const prepared = (text: string) => {
        let statement = statements.get(text)
        if (statement === undefined) {
          statement = db.prepare(text)
          statements.set(text, statement)
        }
        return statement
      }
      return {
        _tag: "Sync",
        all: (text, params) => prepared(text).all(...params),
        run: (text, params) => prepared(text).run(...params).changes
      }
    }
  )

/** The store over the client in context; with `filename`, its hot path on a direct connection to that file. */
const build = (
  options: Omit<Options, "filename">,
  filename: string | undefined
): Effect.Effect<Service, TaskStoreError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const pragma = <A extends object>(text: string) =>
      sql.unsafe<A>(`PRAGMA ${text}`).withoutTransform.pipe(
        Effect.mapError(
          (error) =>
            new TaskStoreError({
              reason: Sql.reasonOfSqlite((error.cause as { code?: string } | undefined)?.code),
              operation: "open",
              detail: String((error.cause as Error | undefined)?.message ?? error.message),
              cause: error
            })
        )
      )
    yield* pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 30_000))}`)
    yield* pragma(`synchronous = ${options.synchronous ?? "FULL"}`)
    const mode = yield* pragma<{ journal_mode: string }>("journal_mode")
    const journal = mode[0]!.journal_mode
    if (journal !== "wal" && journal !== "memory") yield* pragma("journal_mode = WAL")
    if (filename !== undefined) Direct.register(sql, yield* directConnection(filename, options))
    return yield* Sql.make({ tablePrefix: options.tablePrefix })
  })

/**
 * The store over a SQLite client you provide (to share the database, or in tests).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (
  options: Omit<Options, "filename"> = {}
): Layer.Layer<TaskStore, TaskStoreError, SqlClient.SqlClient> => Layer.scoped(TaskStore, make(options))

/** better-sqlite3's messages when its native module was not built (install scripts not run) or built for another Node. */
const nativeModuleMissing = /bindings file|NODE_MODULE_VERSION|compiled against a different Node/
const nativeModuleHint =
  " (better-sqlite3's native module is not built for this Node: run `npm rebuild better-sqlite3`; with npm 11, allow its install script first: `npm install-scripts approve better-sqlite3`)"

/**
 * The store in a SQLite database file.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<TaskStore, TaskStoreError> =>
  Layer.scoped(TaskStore, build(options, options.filename)).pipe(
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
          reason: Sql.reasonOfSqlite(error.code),
          operation: "open",
          detail: `cannot open ${options.filename}: ${String(error.message ?? error)}${
            nativeModuleMissing.test(String(error.message)) ? nativeModuleHint : ""
          }`,
          cause: error,
          ...(error.code === undefined ? {} : { errno: error.code })
        })
      )
    })
  )

/**
 * The store with its file name from `Config` (e.g. `Config.string("VLTASK_SQLITE")`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  filename: Config.Config<string>
): Layer.Layer<TaskStore, TaskStoreError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(filename, (filename) => layer({ filename })))

/**
 * The default `Config` key: `VLTASK_SQLITE`.
 *
 * @since 0.1.0
 * @category config
 */
export const defaultConfig: Config.Config<string> = Config.string("VLTASK_SQLITE")

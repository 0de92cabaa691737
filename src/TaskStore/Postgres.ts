/**
 * The Postgres store: tasks shared by runners on many machines, through `@effect/sql-pg`: the SQL store (`Sql.ts`)
 * over a Postgres pool. Its tables are named with a prefix (`vltask_` by default), so it can share a database with yours.
 *
 * @since 0.1.0
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import pg from "pg"
import { TaskStoreError } from "../TaskError.js"
import type { TaskStore } from "../TaskStore.js"
import * as Direct from "../internal/sql/direct.js"
import * as PgDirect from "../internal/sql/pgDirect.js"
import * as Sql from "./Sql.js"

/**
 * Options of the Postgres store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The connection string, e.g. `postgres://user@host:5432/db`. */
  readonly url: string
  /** The prefix of the store's tables (default `vltask_`): letters, digits and `_`. */
  readonly tablePrefix?: string | undefined
  /**
   * Connections in the pool (default 10). `layer` opens one more of its own, for the hot path's single statements
   * (see docs/stores.md).
   */
  readonly maxConnections?: number | undefined
}

/**
 * What a failed query says about the store: `Unavailable` when the server cannot be reached, `Io` for any other error
 * the server reports with a code, `Unknown` for anything else.
 *
 * @since 0.1.0
 * @category errors
 */
export const reasonOf = Sql.reasonOfPostgres

/**
 * The store over a Postgres client you provide (to share its pool).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (
  options: Omit<Options, "url" | "maxConnections"> = {}
): Layer.Layer<TaskStore, TaskStoreError, SqlClient.SqlClient> =>
  // With a PgClient (as `layer` and `PgClient.layer` give), requests reach a task's runner through LISTEN/NOTIFY.
  Layer.unwrapEffect(
    Effect.map(Effect.serviceOption(PgClient.PgClient), (client) =>
      Sql.layer({
        ...options,
        signals: Option.getOrUndefined(Option.map(client, (pg) => signals(pg, options.tablePrefix ?? "vltask_")))
      })
    )
  )

/** The store's channel: `<prefix>changes`, carrying task ids. */
const signals = (pg: PgClient.PgClient, prefix: string): Sql.Signals => {
  const channel = `${prefix}changes`
  return {
    // A lost connection ends a LISTEN: listen again, a second later, for as long as the stream is consumed.
    listen: pg.listen(channel).pipe(Stream.retry(Schedule.spaced(Duration.seconds(1))), Stream.orDie),
    // `pg_notify` rather than the client's `notify`, whose `NOTIFY channel, $1` the server rejects (no parameters there).
    announce: (id) => Effect.ignore(pg`SELECT pg_notify(${channel}, ${id})`)
  }
}

/** How the store connects: the pool and its direct connection alike. */
const connection = (options: Options): pg.ClientConfig => ({
  connectionString: options.url,
  connectionTimeoutMillis: 5_000,
  application_name: "@vectorlink/task"
})

/**
 * The store's own `pg` pool, checked with one query (so an unreachable server fails the layer at once), ended with
 * the layer.
 */
const pool = (options: Options) =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      const pool = new pg.Pool({ ...connection(options), max: options.maxConnections ?? 10 })
      // An idle connection the server drops is replaced at the next checkout; its error is not the process's.
      pool.on("error", () => {})
      return Effect.as(
        Effect.tryPromise({
          try: () => pool.query("SELECT 1"),
          catch: (cause) => {
            void pool.end()
            return cause
          }
        }),
        pool
      )
    }),
    // Interruptible, or the timeout could not cut an end that hangs (a finalizer is not).
    (pool) => Effect.promise(() => pool.end()).pipe(Effect.interruptible, Effect.timeoutOption(Duration.seconds(1)))
  )

/**
 * The `PgClient` over `pool`, with a direct connection beside it for the store's hot statements
 * (`internal/sql/pgDirect.ts`).
 */
const client = (pool: pg.Pool, options: Options) =>
  Layer.scopedContext(
    Effect.gen(function* () {
      const client = yield* PgClient.PgClient
      // Named apart from the pool's connections in `pg_stat_activity`, with the store's tables.
      const direct = yield* PgDirect.make(pool, {
        ...connection(options),
        application_name: `@vectorlink/task direct ${options.tablePrefix ?? "vltask_"}`
      })
      Direct.register(client, direct)
      return Context.empty()
    })
  ).pipe(Layer.provideMerge(PgClient.layerFromPool({ acquire: Effect.succeed(pool) })))

/**
 * The store in the Postgres database at `url`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<TaskStore, TaskStoreError> =>
  Layer.unwrapScoped(
    Effect.map(pool(options), (pool) => layerClient(options).pipe(Layer.provide(client(pool, options))))
  ).pipe(
    Layer.catchAll((error) =>
      Layer.fail(
        error instanceof TaskStoreError
          ? error
          : new TaskStoreError({
              reason: "Unavailable",
              operation: "open",
              // The driver's own words (e.g. "connect ECONNREFUSED 127.0.0.1:5432"), not the client's wrapper.
              detail: `cannot connect to Postgres: ${String(
                (error as { cause?: { message?: string }; message?: string }).cause?.message ??
                  (error as { message?: string }).message ??
                  error
              )}`,
              cause: error
            })
      )
    )
  )

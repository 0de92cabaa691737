/**
 * A plain driver connection to the same database as a `SqlClient`, for the SQL store's single statements (`update`,
 * `create`, `get`, `getInfo`, a Postgres `claimNext`): they run there directly, without the effects, spans and
 * statement cache a `SqlClient` puts around each one (on SQLite these cost as much as the statement itself: `npx tsx
 * bench/clients.ts`). The store's layers open one beside the client they build: `Sqlite.layer` a better-sqlite3
 * connection (synchronous), `Postgres.layer` a `pg` connection of its own with prepared statements, the pool's when
 * it is busy (asynchronous, `pgDirect.ts`). A store over a client of yours has none: the same statements go through
 * that client.
 *
 * A synchronous connection is never used while one of the store's transactions is open or waiting on the client: in
 * one thread, a write there would wait on a lock that transaction can only release once the write returns.
 */

/** Runs statements on a synchronous connection (SQLite, `?` placeholders). */
export interface Sync {
  readonly _tag: "Sync"
  /** Runs one statement with its parameters and returns its rows; throws the driver's error. */
  readonly all: (sql: string, params: ReadonlyArray<unknown>) => ReadonlyArray<unknown>
  /** Runs one statement that returns no rows; how many rows it changed. Throws the driver's error. */
  readonly run: (sql: string, params: ReadonlyArray<unknown>) => number
}

/** Runs statements asynchronously (Postgres, `$n` placeholders). */
export interface Async {
  readonly _tag: "Async"
  /** Runs one statement with its parameters; its rows, or the driver's error. */
  readonly all: (sql: string, params: ReadonlyArray<unknown>) => Promise<ReadonlyArray<unknown>>
  /** Runs one statement that returns no rows; how many rows it changed, or the driver's error. */
  readonly run: (sql: string, params: ReadonlyArray<unknown>) => Promise<number>
}

/** A direct connection. */
export type Direct = Sync | Async

/** The direct connections, by the client they sit beside. */
const directs = new WeakMap<object, Direct>()

/** Gives `client` a direct connection (only its maker may: it knows both are the same database). */
export const register = (client: object, direct: Direct): void => {
  directs.set(client, direct)
}

/** The direct connection beside `client`, if it has one. */
export const of = (client: object): Direct | undefined => directs.get(client)

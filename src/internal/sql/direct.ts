/**
 * A synchronous connection to the same SQLite database as a `SqlClient` (`Sqlite.layer` opens one beside the client
 * it builds), for the SQL store's hot path: its single statements (`update`, `create`, `get`, `getInfo`) run there
 * directly, without the effects, spans and statement cache a `SqlClient` puts around each one (they cost as much as the
 * statement itself). The store never uses it while one of its transactions is open or waiting on the client: in one
 * thread, a write there would wait on a lock that transaction can only release once the write returns.
 */

/** Runs statements on the direct connection. */
export interface Direct {
  /** Runs one statement with its parameters and returns its rows; throws the driver's error. */
  readonly all: (sql: string, params: ReadonlyArray<unknown>) => ReadonlyArray<unknown>
}

/** The direct connections, by the client they sit beside. */
const directs = new WeakMap<object, Direct>()

/** Gives `client` a direct connection (only its maker may: it knows both are the same database). */
export const register = (client: object, direct: Direct): void => {
  directs.set(client, direct)
}

/** The direct connection beside `client`, if it has one. */
export const of = (client: object): Direct | undefined => directs.get(client)

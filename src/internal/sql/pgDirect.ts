/**
 * The Postgres store's direct connection (`direct.ts`): one `pg` connection of its own for the hot path's statements,
 * each prepared once (parsed and planned by the server the first time only), and the client's pool for any statement
 * that comes while that connection is busy (tasks checkpointing at the same time) or gone.
 *
 * A connection of its own rather than one checked out of the pool: a checkout and its return cost 30–70 µs against
 * ~300 µs for the statement (`npx tsx bench/clients.ts`), and holding a pooled one would take it from the client's
 * transactions, which could then wait on it forever with a small pool. A lost connection is replaced in the
 * background, at most once a second, while the pool carries the statements.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import pg from "pg"
import type { Async } from "./direct.js"

/** How long a lost direct connection waits before it is opened again. */
const reconnectAfter = Duration.seconds(1)

/** Names of prepared statements, by their text (a name stands for one text only, on every connection). */
const statementNames = (): ((text: string) => string) => {
  const names = new Map<string, string>()
  return (text) => {
    let name = names.get(text)
    if (name === undefined) {
      name = `vltask_${names.size}`
      names.set(text, name)
    }
    return name
  }
}

/**
 * An idle direct connection does not keep the process alive (as the pool's idle connections, which close after 10
 * s, do not for long): a program that never closes the store still exits. A statement in flight does.
 */
const ref = (client: pg.Client) => (client as unknown as { ref(): void }).ref()
const unref = (client: pg.Client) => (client as unknown as { unref(): void }).unref()

/**
 * A direct connection to the database of `pool`, opened with `config`; closed with the scope.
 */
export const make = (pool: pg.Pool, config: pg.ClientConfig): Effect.Effect<Async, never, Scope.Scope> =>
  Effect.gen(function* () {
    const name = statementNames()
    /** The open connection, when there is one. */
    let own: pg.Client | undefined
    /** A statement is running on `own`. */
    let busy = false
    /** When the connection was last (re)opened, in ms; a lost one is opened again `reconnectAfter` later. */
    let openedAt = 0
    /** A connection is being opened (at most one at a time). */
    let opening = false
    let closed = false

    const drop = (client: pg.Client) => {
      if (own === client) own = undefined
      void client.end().catch(() => {})
    }

    const open = () => {
      openedAt = Date.now()
      opening = true
      const client = new pg.Client(config)
      // A lost connection: the pool carries the statements until a new one is open.
      client.on("error", () => drop(client))
      client.on("end", () => drop(client))
      return client
        .connect()
        .then(
          () => {
            if (closed) return client.end()
            unref(client)
            own = client
          },
          (cause: unknown) => {
            void client.end().catch(() => {})
            throw cause
          }
        )
        .finally(() => {
          opening = false
        })
    }

    // Opened before the store's first statement; one that cannot be opened now (the server's connection limit) is
    // tried again later, the pool carrying the statements meanwhile (an unreachable server fails the pool first).
    yield* Effect.acquireRelease(
      Effect.promise(() => open().catch(() => {})),
      () =>
        Effect.suspend(() => {
          closed = true
          const client = own
          own = undefined
          return client === undefined
            ? Effect.void
            : // Interruptible, or the timeout could not cut a close that hangs (a finalizer is not).
              Effect.promise(() => client.end().catch(() => {})).pipe(
                Effect.interruptible,
                Effect.timeoutOption(Duration.seconds(1))
              )
        })
    )

    const onOwn = (client: pg.Client, query: pg.QueryConfig) => {
      busy = true
      ref(client)
      return client.query(query).then(
        (result) => {
          busy = false
          unref(client)
          return result
        },
        (cause: unknown) => {
          busy = false
          unref(client)
          // The server's answer leaves the connection as good as before; anything else (a lost connection) drops it.
          if (!(cause instanceof pg.DatabaseError)) drop(client)
          throw cause
        }
      )
    }

    const query = (text: string, values: ReadonlyArray<unknown>): Promise<pg.QueryResult> => {
      const query: pg.QueryConfig = { name: name(text), text, values: values as Array<unknown> }
      if (own !== undefined && !busy) return onOwn(own, query)
      if (own === undefined && !opening && !closed && Date.now() - openedAt >= Duration.toMillis(reconnectAfter)) {
        void open().catch(() => {})
      }
      return pool.query(query)
    }

    return {
      _tag: "Async",
      all: (text, values) => query(text, values).then((result) => result.rows),
      run: (text, values) => query(text, values).then((result) => result.rowCount ?? 0)
    }
  })

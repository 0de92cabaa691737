/**
 * The one SQL store, dialect by dialect (SQLite in a temp file, the machine's Postgres): what is the SQL store's own
 * rather than a connection's — its schema history, its table prefix, and the patch rules every store shares.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Cause, Context, Effect, Exit, Layer, Redacted } from "effect"
import { join } from "node:path"
import { TaskStore } from "../src/index.js"
import * as Postgres from "../src/TaskStore/Postgres.js"
import * as Sql from "../src/TaskStore/Sql.js"
import * as Sqlite from "../src/TaskStore/Sqlite.js"
import { conformance } from "./TaskStore.conformance.js"
import { dropTables, freshPrefix, postgresAvailable, postgresUrl } from "./helpers/postgres.js"
import { bytes } from "./helpers/store.js"
import { inTempDir, tempDir } from "./helpers/tempDir.js"

const available = await postgresAvailable()

interface Dialect {
  readonly name: "sqlite" | "pg"
  /** A client on a fresh database (SQLite) or a fresh prefix (Postgres), and the prefix. */
  readonly client: Effect.Effect<
    { layer: Layer.Layer<SqlClient.SqlClient>; prefix: string },
    never,
    import("effect").Scope.Scope
  >
  /** The store as its connection module builds it, over that client. */
  readonly store: (prefix: string) => Layer.Layer<TaskStore.TaskStore, unknown, SqlClient.SqlClient>
}

const dialects: ReadonlyArray<Dialect> = [
  {
    name: "sqlite",
    client: Effect.map(Effect.orDie(tempDir), (dir) => ({
      layer: SqliteClient.layer({ filename: join(dir, "tasks.db") }) as Layer.Layer<SqlClient.SqlClient>,
      prefix: "vltask_"
    })),
    store: (prefix) => Sqlite.layerClient({ tablePrefix: prefix })
  },
  ...(available
    ? [
        {
          name: "pg",
          client: Effect.sync(() => ({
            layer: PgClient.layer({ url: Redacted.make(postgresUrl), maxConnections: 2 }).pipe(
              Layer.orDie
            ) as Layer.Layer<SqlClient.SqlClient>,
            prefix: freshPrefix()
          })),
          store: (prefix: string) => Sql.layer({ tablePrefix: prefix })
        } as const
      ]
    : [])
]

// Over a client of yours the store has no direct connection: every statement goes through the client.
conformance("sqlite over your client", () =>
  inTempDir((dir) => Sqlite.layerClient().pipe(Layer.provide(SqliteClient.layer({ filename: join(dir, "tasks.db") }))))
)
if (available) {
  conformance("postgres over your client", () =>
    Postgres.layerClient({ tablePrefix: freshPrefix() }).pipe(
      Layer.provide(PgClient.layer({ url: Redacted.make(postgresUrl), maxConnections: 4 }))
    )
  )
}

/** The store a layer builds, kept open for the rest of the test's scope. */
const open = <E>(layer: Layer.Layer<TaskStore.TaskStore, E>) =>
  Effect.map(Layer.build(layer), (context) => Context.get(context, TaskStore.TaskStore))

afterAll(async () => {
  if (available) await dropTables()
})

for (const dialect of dialects) {
  describe(`sql store: ${dialect.name}`, () => {
    it.scoped("a database at schema 1 is upgraded in place: its tasks are kept, the unread columns dropped", () =>
      Effect.gen(function* () {
        const { layer, prefix } = yield* dialect.client
        const context = yield* Layer.build(layer)
        const sql = SqlClient.SqlClient
        // Schema 1 exactly as an earlier version of the library left it, with one task in it.
        yield* Effect.flatMap(sql, (sql) =>
          Effect.gen(function* () {
            yield* sql.unsafe(
              `CREATE TABLE ${prefix}migrations (migration_id INTEGER PRIMARY KEY NOT NULL, name TEXT NOT NULL, created_at BIGINT NOT NULL)`
            )
            for (const statement of Sql.migrations[0]!.statements(prefix, dialect.name)) yield* sql.unsafe(statement)
            yield* sql.unsafe(`INSERT INTO ${prefix}migrations VALUES (1, 'create_tasks', 0)`)
            yield* sql.unsafe(
              `INSERT INTO ${prefix}tasks (id, kind, status, revision, progress, lease_token, attempts, created_at, updated_at, input)
               VALUES ('old', 'k', 'paused', 7, '{"done":3}', 'tok', 1, 10, 20, ${dialect.name === "pg" ? "'\\x7b7d'::bytea" : "X'7b7d'"})`
            )
          })
        ).pipe(Effect.provide(context), Effect.orDie)
        const store = yield* open(dialect.store(prefix).pipe(Layer.provide(Layer.succeedContext(context))))
        const old = yield* store.get("old")
        assert.deepStrictEqual(
          [old.status, old.revision, old.progress, Array.from(old.input)],
          ["paused", 7, { done: 3 }, [0x7b, 0x7d]]
        )
        const updated = yield* store.update("old", 7, { status: "pending", updatedAt: 30 })
        assert.strictEqual(updated.revision, 8)
        const columns = yield* Effect.flatMap(sql, (sql) =>
          dialect.name === "pg"
            ? sql.unsafe<{ name: string }>(
                `SELECT column_name AS name FROM information_schema.columns WHERE table_name = '${prefix}tasks'`
              )
            : sql.unsafe<{ name: string }>(`SELECT name FROM pragma_table_info('${prefix}tasks')`)
        ).pipe(Effect.provide(context), Effect.orDie)
        const names = columns.map((c) => c.name)
        assert.notInclude(names, "lease_token")
        assert.notInclude(names, "lease_expires_at")
        assert.include(names, "lease")
      })
    )

    it.scoped(
      "a patch may not carry what create fixes, nor clear a required field: a defect that names the field",
      () =>
        Effect.gen(function* () {
          const { layer, prefix } = yield* dialect.client
          const store = yield* open(dialect.store(prefix).pipe(Layer.provide(layer)))
          yield* store.create({
            id: "p",
            kind: "k",
            status: "pending",
            progress: { done: 0 },
            attempts: 0,
            createdAt: 1,
            updatedAt: 1,
            input: bytes("{}")
          })
          for (const [patch, field] of [
            [{ input: undefined }, "input"],
            [{ input: bytes("x") }, "input"],
            [{ kind: "other" }, "kind"],
            [{ status: undefined }, "status"],
            [{ progress: undefined }, "progress"]
          ] as const) {
            const exit = yield* Effect.exit(store.update("p", 1, patch as never))
            assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause), `${field} is rejected`)
            if (Exit.isFailure(exit)) assert.include(Cause.pretty(exit.cause), `"${field}"`)
          }
          const after = yield* store.get("p")
          assert.deepStrictEqual([after.revision, Array.from(after.input)], [1, [0x7b, 0x7d]], "nothing was written")
        })
    )
  })
}

describe("sql store", () => {
  it.scoped("a client of a dialect it does not speak fails to open, saying which it speaks", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const sqlite = yield* Layer.build(SqliteClient.layer({ filename: join(dir, "x.db") }))
      const client = yield* Effect.provide(SqlClient.SqlClient, sqlite)
      // The same client, claiming to be another dialect.
      const mysql = Object.assign(Object.create(client) as SqlClient.SqlClient, {
        onDialectOrElse: (options: { orElse: () => unknown; mysql?: () => unknown }) =>
          (options.mysql ?? options.orElse)()
      })
      const opened = yield* Effect.either(Sql.make().pipe(Effect.provideService(SqlClient.SqlClient, mysql)))
      assert.isTrue(opened._tag === "Left" && opened.left.message.includes("speaks SQLite and Postgres"))
    })
  )
})

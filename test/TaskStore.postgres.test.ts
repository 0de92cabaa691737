import { afterAll, assert, describe, it } from "@effect/vitest"
import { SqlError } from "@effect/sql/SqlError"
import { Effect, Either, Fiber } from "effect"
import pg from "pg"
import { TaskStore } from "../src/index.js"
import * as Postgres from "../src/TaskStore/Postgres.js"
import { conformance, eachFailureNamesItself, knownRevision } from "./TaskStore.conformance.js"
import { spawnChild } from "./helpers/child.js"
import { dropTables, freshPrefix, freshUrl, postgresAvailable, postgresUrl } from "./helpers/postgres.js"
import { record } from "./helpers/store.js"
import { waitUntil } from "./helpers/runner.js"

const available = await postgresAvailable()

const query = async (text: string) => {
  const client = new pg.Client({ connectionString: postgresUrl })
  await client.connect()
  try {
    return (await client.query(text)).rows
  } finally {
    await client.end()
  }
}

/** Opens a store with `options` and lists it: the error it fails with, or undefined. */
const opening = (options: Postgres.Options) =>
  Effect.map(
    Effect.either(Effect.flatMap(TaskStore.TaskStore, (s) => s.list()).pipe(Effect.provide(Postgres.layer(options)))),
    (e) => (Either.isLeft(e) ? e.left : undefined)
  )

if (available) {
  conformance("postgres", () => Postgres.layer({ url: postgresUrl, tablePrefix: freshPrefix(), maxConnections: 4 }), {
    writesAtOnce: "async"
  })
  knownRevision("postgres", () =>
    Effect.sync(() => {
      const tablePrefix = freshPrefix()
      return () => Postgres.layer({ url: postgresUrl, tablePrefix, maxConnections: 2 })
    })
  )

  describe("postgres store", () => {
    it.effect("migrates once into prefixed tables; a second store on the same prefix shares them", () =>
      Effect.gen(function* () {
        const tablePrefix = freshPrefix()
        const use = Effect.flatMap(TaskStore.TaskStore, (s) => s.create(record(`r${Math.random()}`.replace(".", ""))))
        yield* use.pipe(Effect.provide(Postgres.layer({ url: postgresUrl, tablePrefix, maxConnections: 2 })))
        yield* use.pipe(Effect.provide(Postgres.layer({ url: postgresUrl, tablePrefix, maxConnections: 2 })))
        const migrations = yield* Effect.promise(() => query(`SELECT migration_id, name FROM ${tablePrefix}migrations`))
        assert.deepStrictEqual(migrations, [
          { migration_id: 1, name: "create_tasks" },
          { migration_id: 2, name: "drop_unread_lease_columns" },
          { migration_id: 3, name: "queue" },
          { migration_id: 4, name: "families" },
          { migration_id: 5, name: "drop_orphan_logs" }
        ])
        // `list` filters by status, kind or parent in id order, workers claim the oldest pending task: the indexes
        // that keep both fast at 100,000 tasks.
        const indexes = yield* Effect.promise(() =>
          query(`SELECT indexdef FROM pg_indexes WHERE tablename = '${tablePrefix}tasks' ORDER BY indexname`)
        )
        assert.deepStrictEqual(indexes.map((i) => (i.indexdef as string).replace(/^.* USING btree /, "")).sort(), [
          "(id)",
          "(kind, status, id)",
          "(parent, id) WHERE (parent IS NOT NULL)",
          "(priority DESC, created_at, id) WHERE (status = 'pending'::text)",
          "(status, id)"
        ])
        const tasks = yield* Effect.promise(() => query(`SELECT count(*)::int AS n FROM ${tablePrefix}tasks`))
        assert.deepStrictEqual(tasks, [{ n: 2 }])
      })
    )

    it.effect("errors are told by their cause: a lost connection is Unavailable, a server error Io with its code", () =>
      Effect.gen(function* () {
        const tablePrefix = freshPrefix()
        const layer = Postgres.layer({ url: postgresUrl, tablePrefix, maxConnections: 2 })
        yield* Effect.gen(function* () {
          const store = yield* TaskStore.TaskStore
          yield* store.create(record("victim"))
          // Another session holds the task's lock; the store's delete waits for it, and its connection is then
          // terminated by the server (as a restart or an administrator would).
          const holder = new pg.Client({ connectionString: postgresUrl })
          yield* Effect.promise(() => holder.connect())
          yield* Effect.addFinalizer(() => Effect.promise(() => holder.end()))
          yield* Effect.promise(() => holder.query(`SELECT pg_advisory_lock(hashtext('${tablePrefix}victim'))`))
          const deleting = yield* Effect.fork(Effect.flip(store.delete("victim")))
          yield* waitUntil(
            Effect.promise(async () => {
              const rows = await query(
                `SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
                 WHERE wait_event_type = 'Lock' AND query LIKE '%pg_advisory_xact_lock%'`
              )
              return rows.length > 0
            }),
            "the waiting delete is terminated",
            { live: true }
          )
          const lost = yield* Fiber.join(deleting)
          assert.strictEqual(lost._tag, "TaskStoreError")
          if (lost._tag === "TaskStoreError") {
            assert.deepStrictEqual([lost.reason, lost.operation, lost.id], ["Unavailable", "delete", "victim"])
          }
          // A table gone under the store: the server's own error, with its SQLSTATE.
          yield* Effect.promise(() => query(`DROP TABLE ${tablePrefix}logs`))
          const broken = yield* Effect.flip(store.readLogs("victim"))
          assert.strictEqual(broken._tag, "TaskStoreError")
          if (broken._tag === "TaskStoreError") {
            assert.deepStrictEqual([broken.reason, broken.errno, broken.operation], ["Io", "42P01", "readLogs"])
          }
        }).pipe(Effect.provide(layer), Effect.scoped)
        // A driver error that is neither (no code, not about the connection) is Unknown, not Unavailable.
        const driverError = new SqlError({ cause: new TypeError("cannot serialize parameter 1") })
        assert.strictEqual(Postgres.reasonOf(driverError), "Unknown")
        const closed = new SqlError({ cause: new Error("Connection terminated unexpectedly") })
        assert.strictEqual(Postgres.reasonOf(closed), "Unavailable")
        const coded = (code: string) =>
          Postgres.reasonOf(new SqlError({ cause: Object.assign(new Error(code), { code }) }))
        assert.deepStrictEqual(["08006", "57P01", "53300", "ECONNRESET", "42P01", "23505"].map(coded), [
          "Unavailable",
          "Unavailable",
          "Unavailable",
          "Unavailable",
          "Io",
          "Io"
        ])
      })
    )

    it.effect("the hot path's own connection: used, and when lost, carried by the pool and opened again", () =>
      Effect.gen(function* () {
        const tablePrefix = freshPrefix()
        const directs = `SELECT pid FROM pg_stat_activity WHERE application_name = '@vectorlink/task direct ${tablePrefix}'`
        yield* Effect.gen(function* () {
          const store = yield* TaskStore.TaskStore
          const id = `d${Math.random()}`.replace(".", "")
          yield* store.create(record(id))
          let revision = 1
          const update = (done: number) =>
            Effect.map(store.update(id, revision, { progress: { done } }), (info) => {
              revision = info.revision
            })
          // A checkpoint's statement runs on the store's own connection, prepared once: the server counts its runs.
          for (let i = 0; i < 5; i++) yield* update(i)
          const own = yield* Effect.promise(() => query(directs))
          assert.lengthOf(own, 1, "the store opened one direct connection")
          const prepared = yield* Effect.promise(() =>
            query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ${own[0]!.pid} AND query LIKE 'UPDATE%'`)
          )
          assert.deepStrictEqual(prepared, [{ n: 1 }], "the last update ran there")
          // The server ends it (a restart, an administrator): the store hears it, and the pool carries the writes.
          yield* Effect.promise(() => query(`SELECT pg_terminate_backend(${own[0]!.pid})`))
          yield* waitUntil(
            Effect.map(
              Effect.either(update(100)),
              (e) => Either.isRight(e) || (e.left._tag === "TaskStoreError" && e.left.reason !== "Unavailable")
            ),
            "a write succeeds again",
            { live: true }
          )
          const done = yield* store.getInfo(id)
          assert.strictEqual(done.revision, revision)
          assert.deepStrictEqual(done.progress, { done: 100 })
          // A second later, a write opens the direct connection again.
          yield* waitUntil(
            Effect.gen(function* () {
              yield* update(200)
              const now = yield* Effect.promise(() => query(directs))
              return now.some((r) => r.pid !== own[0]!.pid)
            }),
            "a new direct connection is open",
            { live: true }
          )
        }).pipe(Effect.provide(Postgres.layer({ url: postgresUrl, tablePrefix, maxConnections: 2 })), Effect.scoped)
        // Closed with the store.
        yield* waitUntil(
          Effect.map(
            Effect.promise(() => query(directs)),
            (rows) => rows.length === 0
          ),
          "the direct connection is closed",
          { live: true }
        )
      })
    )

    it.effect("a column added by a newer version does not break this one's prepared statements", () =>
      Effect.gen(function* () {
        const tablePrefix = freshPrefix()
        yield* Effect.gen(function* () {
          const store = yield* TaskStore.TaskStore
          yield* store.create(record("a"))
          yield* store.create(record("q", { createdAt: 500 }))
          yield* store.get("a")
          yield* store.getInfo("a")
          // A rolling upgrade: a newer process migrates while this one runs with its statements prepared.
          yield* Effect.promise(() => query(`ALTER TABLE ${tablePrefix}tasks ADD COLUMN newer TEXT`))
          assert.strictEqual((yield* store.get("a")).id, "a")
          assert.strictEqual((yield* store.getInfo("a")).id, "a")
          const lease = { token: "t", holder: { host: "h", pid: 1, processStart: "1" }, expiresAt: 9_000_000_000_000 }
          const claimed = yield* store.claimNext({ kinds: ["test"], lease, now: Date.now() })
          assert.strictEqual(claimed?.id, "q")
        }).pipe(Effect.provide(Postgres.layer({ url: postgresUrl, tablePrefix, maxConnections: 2 })), Effect.scoped)
      })
    )

    it.effect(
      "a program that never closes its store still exits once its work is done",
      () =>
        Effect.gen(function* () {
          const child = yield* Effect.promise(() => spawnChild(["unclosed", freshUrl(), "u1"]))
          yield* Effect.promise(() => child.waitFor((line) => line === "DONE"))
          // The pool's idle connections close after 10 s; the store's own connection must not hold the process longer.
          const code = yield* Effect.promise(() =>
            Promise.race([child.exited, new Promise<string>((r) => setTimeout(() => r("still running"), 30_000))])
          )
          if (code === "still running") child.process.kill("SIGKILL")
          assert.strictEqual(code, 0, child.stderr)
        }),
      40_000
    )

    it.effect("every failed operation names itself and its task, with the server's code and message", () =>
      Effect.gen(function* () {
        const tablePrefix = freshPrefix()
        yield* Effect.gen(function* () {
          const store = yield* TaskStore.TaskStore
          yield* store.create(record("victim"))
          yield* Effect.promise(() => query(`DROP TABLE ${tablePrefix}logs, ${tablePrefix}tasks`))
          yield* eachFailureNamesItself(store, "victim", { errno: "42P01", detail: /^relation ".*" does not exist$/ })
        }).pipe(Effect.provide(Postgres.layer({ url: postgresUrl, tablePrefix, maxConnections: 2 })), Effect.scoped)
      })
    )

    it.effect("a schema newer than this code, a bad prefix and an unreachable server are typed errors", () =>
      Effect.gen(function* () {
        const tablePrefix = freshPrefix()
        assert.isUndefined(yield* opening({ url: postgresUrl, tablePrefix }))
        yield* Effect.promise(() =>
          query(`INSERT INTO ${tablePrefix}migrations (migration_id, name, created_at) VALUES (99, 'future', 0)`)
        )
        const newer = yield* opening({ url: postgresUrl, tablePrefix })
        assert.strictEqual(newer?._tag, "TaskStoreError")
        assert.include(newer?.message, "schema version 99, newer than this version of @vectorlink/task knows (5)")
        for (const bad of ["Robert'); DROP TABLE x;--", "x-", "-x", "x y"]) {
          const badPrefix = yield* opening({ url: postgresUrl, tablePrefix: bad })
          assert.include(badPrefix?.message, "must be lower-case letters, digits and '_'", bad)
          assert.strictEqual(badPrefix?._tag === "TaskStoreError" ? badPrefix.operation : undefined, "open")
        }
        if (newer?._tag === "TaskStoreError") assert.strictEqual(newer.operation, "open")
        // A table of the store's name that is not the store's: the migration fails, and says so.
        const taken = freshPrefix()
        yield* Effect.promise(() => query(`CREATE TABLE ${taken}tasks (x INT)`))
        const clash = yield* opening({ url: postgresUrl, tablePrefix: taken })
        assert.strictEqual(clash?._tag, "TaskStoreError")
        if (clash?._tag === "TaskStoreError") {
          assert.deepStrictEqual([clash.operation, clash.reason, clash.errno], ["migrate", "Io", "42P07"])
        }
        const down = yield* opening({ url: "postgres://root@127.0.0.1:1/test" })
        assert.strictEqual(down?._tag, "TaskStoreError")
        if (down?._tag === "TaskStoreError") {
          assert.deepStrictEqual([down.reason, down.operation], ["Unavailable", "open"])
          assert.strictEqual(down.detail, "cannot connect to Postgres: connect ECONNREFUSED 127.0.0.1:1")
        }
        assert.include(down?.message, "cannot connect to Postgres")
      })
    )
  })
} else describe.skip("TaskStore conformance: postgres (no server)", () => {})

afterAll(async () => {
  if (available) await dropTables()
}, 60_000)

import { assert, describe, it } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { Config, Context, Effect, Either, Layer } from "effect"
import Database from "better-sqlite3"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { TaskStore } from "../src/index.js"
import * as AtOnce from "../src/internal/atOnce.js"
import { TaskStoreError } from "../src/TaskError.js"
import * as Sqlite from "../src/TaskStore/Sqlite.js"
import { conformance, eachFailureNamesItself, knownRevision } from "./TaskStore.conformance.js"
import { record } from "./helpers/store.js"
import { inTempDir, tempDir } from "./helpers/tempDir.js"

conformance("sqlite", () => inTempDir((dir) => Sqlite.layer({ filename: join(dir, "tasks.db") })), {
  writesAtOnce: "sync"
})
knownRevision("sqlite", () => Effect.map(tempDir, (dir) => () => Sqlite.layer({ filename: join(dir, "known.db") })))

/** A store and the very client (connection) it runs on. */
const storeWithClient = (
  filename: string,
  options: Omit<Sqlite.Options, "filename"> = {},
  client: Partial<SqliteClient.SqliteClientConfig> = {}
) =>
  Layer.merge(Sqlite.layerClient(options), Layer.empty).pipe(
    Layer.provideMerge(SqliteClient.layer({ filename, ...client }))
  )

describe("sqlite store", () => {
  it.scoped("every connection it opens runs WAL with synchronous=FULL and a busy timeout", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const check = (options: Omit<Sqlite.Options, "filename">) =>
        Effect.gen(function* () {
          const sql = yield* SqlClient.SqlClient
          yield* TaskStore.TaskStore
          const sync = yield* sql.unsafe<{ synchronous: number }>("PRAGMA synchronous")
          const mode = yield* sql.unsafe<{ journal_mode: string }>("PRAGMA journal_mode")
          const busy = yield* sql.unsafe<{ timeout: number }>("PRAGMA busy_timeout")
          return [sync[0]!.synchronous, mode[0]!.journal_mode, busy[0]!.timeout] as const
        }).pipe(Effect.provide(storeWithClient(join(dir, "p.db"), options)))
      // 2 = FULL, 1 = NORMAL
      assert.deepStrictEqual(yield* check({}), [2, "wal", 30000])
      assert.deepStrictEqual(yield* check({ synchronous: "NORMAL", busyTimeoutMs: 5000 }), [1, "wal", 5000])
      // Over a client of the user's that does not turn WAL on, the store does.
      const own = Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* TaskStore.TaskStore
        return (yield* sql.unsafe<{ journal_mode: string }>("PRAGMA journal_mode"))[0]!.journal_mode
      }).pipe(Effect.provide(storeWithClient(join(dir, "own.db"), {}, { disableWAL: true })))
      assert.strictEqual(yield* own, "wal")
    })
  )

  it.scoped("migrates once into prefixed tables that share the database with the user's own", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const filename = join(dir, "shared.db")
      const tables = Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        yield* sql.unsafe("CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY)")
        const store = yield* TaskStore.TaskStore
        yield* store.create(record(`r${Date.now()}${Math.random()}`.replace(".", "")))
        const rows = yield* sql.unsafe<{ name: string }>(
          "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        )
        const migrations = yield* sql.unsafe<{ migration_id: number; name: string }>(
          "SELECT migration_id, name FROM vltask_migrations"
        )
        // `list` filters by status and kind in id order: the indexes that keep it fast at 100,000 tasks.
        const indexes = yield* sql.unsafe<{ sql: string }>(
          "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'vltask_tasks' AND sql IS NOT NULL ORDER BY name"
        )
        return {
          names: rows.map((r) => r.name),
          migrations: migrations.map((m) => `${m.migration_id} ${m.name}`),
          indexes: indexes.map((i) => i.sql)
        }
      })
      const first = yield* tables.pipe(Effect.provide(storeWithClient(filename)))
      const second = yield* tables.pipe(Effect.provide(storeWithClient(filename)))
      assert.deepStrictEqual(first.names, ["users", "vltask_logs", "vltask_migrations", "vltask_tasks"])
      assert.deepStrictEqual(second.migrations, [
        "1 create_tasks",
        "2 drop_unread_lease_columns",
        "3 queue",
        "4 families",
        "5 drop_orphan_logs"
      ])
      assert.deepStrictEqual(second.indexes, [
        "CREATE INDEX vltask_tasks_kind_status_id ON vltask_tasks (kind, status, id)",
        "CREATE INDEX vltask_tasks_parent ON vltask_tasks (parent, id) WHERE parent IS NOT NULL",
        "CREATE INDEX vltask_tasks_pending ON vltask_tasks (priority DESC, created_at, id) WHERE status = 'pending'",
        "CREATE INDEX vltask_tasks_status_id ON vltask_tasks (status, id)"
      ])
      const count = yield* Effect.flatMap(TaskStore.TaskStore, (s) => s.list()).pipe(
        Effect.provide(Sqlite.layer({ filename }))
      )
      assert.strictEqual(count.items.length, 2)
    })
  )

  it.scoped("opening a database of schema 4 drops log lines left without a task (migration 5), and only those", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const filename = join(dir, "old.db")
      const readLogs = (id: string) =>
        Effect.flatMap(TaskStore.TaskStore, (s) => s.readLogs(id)).pipe(Effect.provide(Sqlite.layer({ filename })))
      yield* Effect.flatMap(TaskStore.TaskStore, (s) =>
        Effect.zipRight(s.create(record("kept")), s.appendLogs("kept", [{ time: 1, level: "INFO", message: "mine" }]))
      ).pipe(Effect.provide(Sqlite.layer({ filename })))
      // What an earlier version could leave: lines under an id whose record is gone, at schema version 4.
      const db = new Database(filename)
      db.prepare("INSERT INTO vltask_logs (task_id, seq, time, level, message) VALUES (?, 1, 1, 'INFO', 'stale')").run(
        "gone"
      )
      db.prepare("DELETE FROM vltask_migrations WHERE migration_id = 5").run()
      db.close()
      assert.deepStrictEqual(yield* readLogs("kept").pipe(Effect.map((l) => l.map((x) => x.message))), ["mine"])
      const left = new Database(filename, { readonly: true })
      const rows = left.prepare("SELECT task_id FROM vltask_logs ORDER BY task_id").all()
      const version = left.prepare("SELECT MAX(migration_id) AS v FROM vltask_migrations").get() as { v: number }
      left.close()
      assert.deepStrictEqual(rows, [{ task_id: "kept" }])
      assert.strictEqual(version.v, 5)
    })
  )

  it.scoped("a database of a newer schema than this code knows is a typed error, and is left alone", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const filename = join(dir, "new.db")
      yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql.unsafe("INSERT INTO vltask_migrations (migration_id, name, created_at) VALUES (99, 'future', 0)")
      ).pipe(Effect.provide(storeWithClient(filename)))
      const opened = yield* Effect.either(
        Effect.flatMap(TaskStore.TaskStore, (s) => s.list()).pipe(Effect.provide(Sqlite.layer({ filename })))
      )
      assert.isTrue(Either.isLeft(opened))
      if (Either.isLeft(opened)) {
        assert.instanceOf(opened.left, Sqlite.SchemaTooNew)
        assert.strictEqual(opened.left.operation, "open")
        assert.include(opened.left.message, "schema version 99")
      }
    })
  )

  it.scoped("a write lock held too long by another connection is a typed Unavailable error, and nothing is lost", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const filename = join(dir, "busy.db")
      const store = Context.get(yield* Layer.build(Sqlite.layer({ filename, busyTimeoutMs: 100 })), TaskStore.TaskStore)
      yield* store.create(record("b"))
      const other = new Database(filename)
      yield* Effect.addFinalizer(() => Effect.sync(() => other.close()))
      other.exec("BEGIN IMMEDIATE")
      // A write at once meets the same, and says so rather than leave it to be met again.
      const atOnce = AtOnce.writeOf(store)!("b", 1, { reason: "blocked" })
      assert.instanceOf(atOnce, TaskStoreError)
      assert.deepStrictEqual(
        [(atOnce as TaskStoreError).reason, (atOnce as TaskStoreError).errno],
        ["Unavailable", "SQLITE_BUSY"]
      )
      for (const attempt of [
        store.update("b", 1, { reason: "blocked" }),
        store.appendLogs("b", [{ time: 1, level: "INFO", message: "blocked" }]),
        store.create(record("c")),
        store.delete("b")
      ] as ReadonlyArray<Effect.Effect<unknown, { readonly _tag: string }>>) {
        const blocked = yield* Effect.either(attempt)
        assert.isTrue(Either.isLeft(blocked) && blocked.left._tag === "TaskStoreError")
        if (Either.isLeft(blocked) && blocked.left._tag === "TaskStoreError") {
          const error = blocked.left as unknown as { reason: string; errno?: string; message: string }
          assert.strictEqual(error.reason, "Unavailable")
          assert.strictEqual(error.errno, "SQLITE_BUSY")
          assert.include(error.message, "Check that the store is reachable and retry")
        }
      }
      other.exec("ROLLBACK")
      assert.strictEqual((yield* store.update("b", 1, { reason: "through" })).revision, 2)
    })
  )

  it.scoped("a damaged database file is a typed Corrupt error, not a crash", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const filename = join(dir, "damaged.db")
      yield* Effect.scoped(
        Effect.flatMap(TaskStore.TaskStore, (s) => s.create(record("d"))).pipe(
          Effect.provide(Sqlite.layer({ filename }))
        )
      )
      // Every page but the first (the header and the schema) overwritten.
      const bytes = readFileSync(filename)
      bytes.fill(0xab, 4096)
      writeFileSync(filename, bytes)
      const opened = yield* Effect.either(
        Effect.flatMap(TaskStore.TaskStore, (s) => s.getInfo("d")).pipe(Effect.provide(Sqlite.layer({ filename })))
      )
      assert.isTrue(Either.isLeft(opened))
      if (Either.isLeft(opened) && opened.left._tag === "TaskStoreError") {
        assert.strictEqual(opened.left.reason, "Corrupt")
        assert.strictEqual(opened.left.errno, "SQLITE_CORRUPT")
        assert.include(opened.left.message, "The record is damaged")
      } else assert.fail(`expected a TaskStoreError, got ${Either.isLeft(opened) ? opened.left._tag : "success"}`)
    })
  )

  it.scoped("every failed operation names itself and its task, with SQLite's code and message", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      yield* Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const store = yield* TaskStore.TaskStore
        yield* store.create(record("victim"))
        yield* sql.unsafe("DROP TABLE vltask_logs")
        yield* sql.unsafe("DROP TABLE vltask_tasks")
        yield* eachFailureNamesItself(store, "victim", {
          errno: "SQLITE_ERROR",
          detail: /^no such table: vltask_(tasks|logs)$/
        })
      }).pipe(Effect.provide(storeWithClient(join(dir, "dropped.db"))))
    })
  )

  it.scoped("a file that is no database, a directory, and a table of the store's name fail to open, saying so", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const opening = (filename: string) =>
        Effect.flip(
          Effect.flatMap(TaskStore.TaskStore, (s) => s.list()).pipe(Effect.provide(Sqlite.layer({ filename })))
        )
      writeFileSync(join(dir, "notes.txt"), "x".repeat(8192))
      const notDb = yield* opening(join(dir, "notes.txt"))
      assert.deepStrictEqual([notDb.operation, notDb.errno], ["open", "SQLITE_NOTADB"])
      mkdirSync(join(dir, "a-directory"))
      const directory = yield* opening(join(dir, "a-directory"))
      assert.deepStrictEqual(
        [directory.operation, directory.reason, directory.errno],
        ["open", "Io", "SQLITE_CANTOPEN"]
      )
      assert.include(directory.message, `cannot open ${join(dir, "a-directory")}`)
      const clash = join(dir, "clash.db")
      const other = new Database(clash)
      other.exec("CREATE TABLE vltask_tasks (x INTEGER)")
      other.close()
      const migrate = yield* opening(clash)
      assert.deepStrictEqual([migrate.operation, migrate.reason, migrate.errno], ["migrate", "Io", "SQLITE_ERROR"])
      assert.include(migrate.detail, "vltask_tasks")
    })
  )

  it.scoped("Sqlite.layerConfig takes its file from Config", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const filename = join(dir, "cfg.db")
      yield* Effect.flatMap(TaskStore.TaskStore, (s) => s.create(record("cfg"))).pipe(
        Effect.provide(Sqlite.layerConfig(Config.succeed(filename)))
      )
      assert.deepStrictEqual(new Database(filename).prepare("SELECT id FROM vltask_tasks").all(), [{ id: "cfg" }])
    })
  )
})

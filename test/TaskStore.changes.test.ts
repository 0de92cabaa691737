/**
 * `TaskStore.changes` on the durable stores: a pause or cancel stored through one store instance (a separate
 * connection, as another process has) reaches a second instance's `changes` at once — the file store through the
 * kernel's notifications on its directory of announcements, SQLite through `data_version`, Postgres through
 * LISTEN/NOTIFY — which is how a task's runner hears of requests in milliseconds instead of at its next heartbeat.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Option, Stream } from "effect"
import { readdirSync } from "node:fs"
import { join } from "node:path"
import { TaskStore } from "../src/index.js"
import * as File from "../src/TaskStore/File.js"
import * as Postgres from "../src/TaskStore/Postgres.js"
import * as Sqlite from "../src/TaskStore/Sqlite.js"
import { dropTables, freshPrefix, postgresAvailable, postgresUrl } from "./helpers/postgres.js"
import { bytes, record } from "./helpers/store.js"
import { tempDir } from "./helpers/tempDir.js"

const postgres = await postgresAvailable()

/** A store instance that lives as long as the test's scope. */
const instance = (layer: Layer.Layer<TaskStore.TaskStore, unknown>) =>
  Effect.map(Layer.build(layer), (context) => Context.get(context, TaskStore.TaskStore))

/** Two store instances on one place: `a` follows its changes while `b` stores a pause request. */
const heard = (open: () => Layer.Layer<TaskStore.TaskStore, unknown>) =>
  Effect.gen(function* () {
    const a = yield* instance(open())
    const b = yield* instance(open())
    yield* b.create(record("watched", { status: "running" }))
    const first = yield* Effect.fork(Stream.runHead(a.changes.pipe(Stream.filter((id) => id !== "other"))))
    // Let the subscription start (a watch, a LISTEN, a first data_version) before the change is made.
    yield* Effect.sleep("300 millis")
    const started = Date.now()
    yield* b.update("watched", 1, { interrupt: "pause" })
    const change = yield* Fiber.join(first).pipe(Effect.timeout("2 seconds"))
    return { change, ms: Date.now() - started }
  })

describe("TaskStore.changes", () => {
  it.live("file: a write through another instance is heard (by task id)", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* tempDir
        const { change, ms } = yield* heard(() => File.layer({ directory: dir }))
        assert.deepStrictEqual(change, Option.some("watched"))
        assert.isBelow(ms, 1000)
      })
    )
  )

  it.live("file: a running task's own writes are not announced; a request and a queued task are, by id", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* tempDir
        const a = yield* instance(File.layer({ directory: dir }))
        const b = yield* instance(File.layer({ directory: dir }))
        const heard: Array<string | undefined> = []
        yield* Effect.forkScoped(Stream.runForEach(a.changes, (id) => Effect.sync(() => heard.push(id))))
        yield* Effect.sleep("300 millis")
        // What the task's runner writes while it runs: its creation as running, checkpoints, progress, logs.
        yield* b.create(record("busy", { status: "running" }))
        for (let revision = 1; revision <= 5; revision++) {
          yield* b.update("busy", revision, { state: bytes(String(revision)), progress: { done: revision } })
        }
        yield* b.appendLogs("busy", [{ time: 1, level: "INFO", message: "working" }])
        yield* Effect.sleep("300 millis")
        assert.deepStrictEqual(heard, [], "a watcher of the store is not woken by a running task's own writes")
        // What another process's runner or worker must hear of at once.
        yield* b.update("busy", 6, { interrupt: "cancel" })
        yield* b.create(record("queued"))
        yield* b.update("busy", 7, { status: "pending", interrupt: undefined, lease: undefined })
        const until = Date.now() + 2000
        while (heard.filter((id) => id === "busy").length < 2 || !heard.includes("queued")) {
          if (Date.now() > until) assert.fail(`not all heard within 2 s: ${JSON.stringify(heard)}`)
          yield* Effect.sleep("20 millis")
        }
        assert.deepStrictEqual(new Set(heard), new Set(["busy", "queued"]))
        assert.deepStrictEqual(readdirSync(join(dir, "tasks", ".signals")), [], "an announcement leaves no file")
      })
    )
  )

  it.live("sqlite: a commit on another connection is heard (which record, it cannot tell)", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* tempDir
        const { change } = yield* heard(() => Sqlite.layer({ filename: join(dir, "tasks.db") }))
        assert.deepStrictEqual(change, Option.some(undefined))
      })
    )
  )

  it.live("sqlite: its own commits are not news to a connection", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* tempDir
        const store = yield* instance(Sqlite.layer({ filename: join(dir, "tasks.db") }))
        yield* store.create(record("own", { status: "running" }))
        const collected = yield* Effect.fork(Stream.runCollect(store.changes.pipe(Stream.take(1))))
        yield* Effect.sleep("100 millis")
        yield* store.update("own", 1, { interrupt: "pause" })
        yield* Effect.sleep("200 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(collected)), "nothing was heard")
        yield* Fiber.interrupt(collected)
      })
    )
  )

  if (postgres) {
    afterAll(dropTables)
    it.live("postgres: a request stored through another pool is announced (by task id)", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const prefix = freshPrefix()
          const { change, ms } = yield* heard(() =>
            Postgres.layer({ url: postgresUrl, tablePrefix: prefix, maxConnections: 2 })
          )
          assert.deepStrictEqual(change, Option.some("watched"))
          assert.isBelow(ms, 1000)
        })
      )
    )
  }
})

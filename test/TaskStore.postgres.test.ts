import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import pg from "pg"
import { TaskStore } from "../src/index.js"
import * as Postgres from "../src/TaskStore/Postgres.js"
import { conformance } from "./TaskStore.conformance.js"
import { dropTables, freshPrefix, postgresAvailable, postgresUrl } from "./helpers/postgres.js"
import { record } from "./helpers/store.js"

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
  conformance("postgres", () => Postgres.layer({ url: postgresUrl, tablePrefix: freshPrefix(), maxConnections: 4 }))

  describe("postgres store", () => {
    it.effect("migrates once into prefixed tables; a second store on the same prefix shares them", () =>
      Effect.gen(function* () {
        const tablePrefix = freshPrefix()
        const use = Effect.flatMap(TaskStore.TaskStore, (s) => s.create(record(`r${Math.random()}`.replace(".", ""))))
        yield* use.pipe(Effect.provide(Postgres.layer({ url: postgresUrl, tablePrefix, maxConnections: 2 })))
        yield* use.pipe(Effect.provide(Postgres.layer({ url: postgresUrl, tablePrefix, maxConnections: 2 })))
        const migrations = yield* Effect.promise(() => query(`SELECT migration_id FROM ${tablePrefix}migrations`))
        assert.deepStrictEqual(migrations, [{ migration_id: 1 }])
        const tasks = yield* Effect.promise(() => query(`SELECT count(*)::int AS n FROM ${tablePrefix}tasks`))
        assert.deepStrictEqual(tasks, [{ n: 2 }])
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
        assert.include(newer?.message, "schema version 99, newer than this version of @vectorlink/task knows (1)")
        const badPrefix = yield* opening({ url: postgresUrl, tablePrefix: "Robert'); DROP TABLE x;--" })
        assert.include(badPrefix?.message, "must be lower-case letters, digits and '_'")
        const down = yield* opening({ url: "postgres://root@127.0.0.1:1/test" })
        assert.strictEqual(down?._tag, "TaskStoreError")
        if (down?._tag === "TaskStoreError") assert.strictEqual(down.reason, "Unavailable")
        assert.include(down?.message, "cannot connect to Postgres")
      })
    )
  })
} else describe.skip("TaskStore conformance: postgres (no server)", () => {})

afterAll(async () => {
  if (available) await dropTables()
}, 60_000)

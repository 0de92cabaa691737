/**
 * A store directory someone tampered with: files planted as symbolic links, FIFOs or sockets where the store expects
 * its own regular files. The store never follows such a link (the target stays untouched), never blocks on a FIFO,
 * and reports each as a typed error naming the path.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Either, Layer } from "effect"
import { execFileSync } from "node:child_process"
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { TaskStore } from "../src/index.js"
import * as File from "../src/TaskStore/File.js"
import { record } from "./helpers/store.js"
import { tempDir } from "./helpers/tempDir.js"

const openStore = (dir: string) =>
  Effect.map(Layer.build(File.layer({ directory: dir })), (context) => Context.get(context, TaskStore.TaskStore))

const line = { time: 1, level: "INFO", message: "hello" }

describe("file store in a tampered directory", () => {
  it.scoped(
    "a .log planted as a symbolic link: appending and reading fail naming it; the link's target is untouched",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const store = yield* openStore(dir)
        yield* store.create(record("t"))
        const target = join(dir, "precious.txt")
        writeFileSync(target, "do not touch\n")
        symlinkSync(target, join(dir, "tasks", "t.log"))
        const appended = yield* Effect.either(store.appendLogs("t", [line]))
        assert.isTrue(Either.isLeft(appended))
        if (Either.isLeft(appended)) {
          assert.strictEqual(appended.left._tag, "TaskStoreError")
          assert.strictEqual(appended.left._tag === "TaskStoreError" ? appended.left.errno : undefined, "ELOOP")
          assert.include(appended.left.message, join(dir, "tasks", "t.log"))
        }
        const read = yield* Effect.either(store.readLogs("t"))
        assert.isTrue(Either.isLeft(read))
        assert.strictEqual(readFileSync(target, "utf8"), "do not touch\n")
      })
  )

  it.scoped("a record planted as a symbolic link to another task's record is an error naming it, not that record", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const store = yield* openStore(dir)
      yield* store.create(record("real"))
      symlinkSync(join(dir, "tasks", "real.task"), join(dir, "tasks", "fake.task"))
      for (const read of [store.get("fake"), store.getInfo("fake")]) {
        const result = yield* Effect.either(read)
        assert.isTrue(Either.isLeft(result) && result.left._tag === "TaskStoreError")
        if (Either.isLeft(result)) assert.include(result.left.message, "fake.task")
      }
      const updated = yield* Effect.either(store.update("fake", 1, { reason: "x" }))
      assert.isTrue(Either.isLeft(updated))
      assert.strictEqual((yield* store.get("real")).revision, 1, "the link's target was not written")
    })
  )

  it.scopedLive("a FIFO planted as a .want hint or a .log: opening, listing, locking and logging do not hang", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      mkdirSync(join(dir, "tasks"), { recursive: true })
      execFileSync("mkfifo", [join(dir, "tasks", "t.want")])
      const store = yield* openStore(dir)
      yield* store.create(record("t"))
      yield* store.create(record("u"))
      // After create, which clears any log left under the id.
      execFileSync("mkfifo", [join(dir, "tasks", "u.log")])
      const page = yield* store.list()
      assert.deepStrictEqual(
        page.items.map((i) => i.id),
        ["t", "u"]
      )
      yield* store.update("t", 1, { reason: "locked and written past the FIFO hint" })
      // The FIFO log is refused, by name; nothing blocks.
      const appended = yield* Effect.either(store.appendLogs("u", [line]))
      assert.isTrue(Either.isLeft(appended))
      if (Either.isLeft(appended)) assert.include(appended.left.message, "u.log")
      assert.isTrue(existsSync(join(dir, "tasks", "t.task")))
    }).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("hung on a FIFO") }))
  )
})

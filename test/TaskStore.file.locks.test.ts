/**
 * The file store's per-task locks: a lock whose holder is gone is broken whenever it is met (not only when a store
 * opens), a reused pid does not keep a dead holder's lock, a live holder's lock is respected, and a process that
 * checkpoints back to back lets another process in.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { spawn, spawnSync } from "node:child_process"
import { existsSync, symlinkSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Lease } from "../src/index.js"
import * as File from "../src/TaskStore/File.js"
import * as FileSystemSync from "../src/TaskStore/FileSystemSync.js"
import { spawnChild } from "./helpers/child.js"
import { tempDir } from "./helpers/tempDir.js"
import { record } from "./helpers/store.js"

/** Plants the lock another process of this host would hold on task `id`. */
const plantLock = (dir: string, id: string, pid: number, processStart: string) =>
  symlinkSync(`L:${pid}:${processStart}:elsewhere:1`, join(dir, "tasks", `${id}.lock`))

const openStore = (dir: string) =>
  File.make({ directory: dir, lockTimeout: "1 second" }).pipe(Effect.provide(FileSystemSync.layer))

const liveProcess = Effect.acquireRelease(
  Effect.promise(() => {
    const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" })
    return new Promise<typeof child>((resolve) => child.once("spawn", () => resolve(child)))
  }),
  (child) => Effect.sync(() => child.kill("SIGKILL"))
)

describe("file store locks", () => {
  it.scoped("a lock left by a process that died after the store opened is broken, not waited for", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const store = yield* openStore(dir)
      yield* store.create(record("t"))
      plantLock(dir, "t", spawnSync(process.execPath, ["-e", "0"]).pid!, "12345")
      const started = Date.now()
      const updated = yield* Effect.either(store.update("t", 1, { reason: "through" }))
      assert.isTrue(Either.isRight(updated), Either.isLeft(updated) ? updated.left.message : "")
      assert.isBelow(Date.now() - started, 900, "the dead holder's lock was not waited for")
      assert.isFalse(existsSync(join(dir, "tasks", "t.lock")))
    })
  )

  it.scoped("a live process with another start time than the lock's holder is a reused pid: the lock is broken", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const store = yield* openStore(dir)
      const child = yield* liveProcess
      yield* store.create(record("reused"))
      plantLock(dir, "reused", child.pid!, "1")
      const updated = yield* Effect.either(store.update("reused", 1, { reason: "through" }))
      assert.isTrue(Either.isRight(updated), Either.isLeft(updated) ? updated.left.message : "")
    })
  )

  it.scoped("a live holder's lock is respected: the write fails after the lock timeout, naming the holder", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const store = yield* openStore(dir)
      const child = yield* liveProcess
      yield* store.create(record("held"))
      plantLock(dir, "held", child.pid!, Lease.processStart(child.pid!))
      const started = Date.now()
      const blocked = yield* Effect.either(store.update("held", 1, { reason: "never" }))
      assert.isTrue(Either.isLeft(blocked) && blocked.left._tag === "TaskStoreError")
      if (Either.isLeft(blocked)) assert.include(blocked.left.message, `pid ${child.pid}`)
      assert.isAtLeast(Date.now() - started, 1000)
      assert.strictEqual((yield* store.getInfo("held")).revision, 1)
    })
  )

  it.scoped("a process writing back to back without a pause still lets another process's writes in", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const child = yield* Effect.acquireRelease(
        Effect.promise(() => spawnChild(["hammer", `file:${dir}`, "busy"])),
        (c) => Effect.sync(() => c.process.kill("SIGKILL"))
      )
      yield* Effect.promise(() => child.waitFor((l) => l === "ACK 50"))
      const store = yield* openStore(dir)
      const line = { time: 1, level: "INFO", message: "from another process" }
      for (let k = 0; k < 20; k++) {
        const appended = yield* Effect.either(store.appendLogs("busy", [line]))
        assert.isTrue(Either.isRight(appended), `write ${k}: ${Either.isLeft(appended) ? appended.left.message : ""}`)
      }
      const acked = child.lastAck()
      yield* Effect.promise(() => child.waitFor((l) => l === `ACK ${acked + 20}`))
      assert.strictEqual((yield* store.readLogs("busy")).length, 20)
    })
  )

  it.scoped("a writer gives a fresh hint of a waiting store a turn before it takes the lock again", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const store = yield* openStore(dir)
      yield* store.create(record("h"))
      const want = join(dir, "tasks", "h.want")
      /** The fastest of five writes, in ms. */
      const fastestWrite = Effect.gen(function* () {
        let fastest = Infinity
        for (let k = 0; k < 5; k++) {
          const info = yield* store.getInfo("h")
          const started = performance.now()
          yield* store.update("h", info.revision, { reason: String(k) })
          fastest = Math.min(fastest, performance.now() - started)
        }
        return fastest
      })
      writeFileSync(want, `W:another-store:${Date.now() - 10_000}`)
      const staleHint = yield* fastestWrite
      writeFileSync(want, `W:another-store:${Date.now()}`)
      const freshHint = yield* fastestWrite
      // The holder pauses 3 ms for a fresh hint; timers may fire a little early, so ask for 1 ms over the stale case.
      assert.isAtLeast(freshHint - staleHint, 1, `each write waited for the waiter (${freshHint} vs ${staleHint} ms)`)
    })
  )
})

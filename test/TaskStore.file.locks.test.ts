/**
 * The file store's per-task locks: a lock whose holder is gone is broken whenever it is met (not only when a store
 * opens), a reused pid does not keep a dead holder's lock, a live holder's lock is respected, a process that
 * checkpoints back to back lets another process in, and the lock a task running here keeps between its writes is
 * dropped when the event loop turns and hides nobody's write.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Fiber, Logger } from "effect"
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  unlinkSync,
  writeFileSync
} from "node:fs"
import { join } from "node:path"
import { Holder } from "../src/index.js"
import * as File from "../src/TaskStore/File.js"
import * as FileSystemSync from "../src/internal/file/fileSystemSync.js"
import { deadPid, spawnChild, spawnSleeper } from "./helpers/child.js"
import { tempDir } from "./helpers/tempDir.js"
import { warningCollector } from "./helpers/logs.js"
import { Faults, layer as faultyLayer } from "./helpers/faultyFileSystem.js"
import { record } from "./helpers/store.js"
import { waitUntil } from "./helpers/runner.js"

/** Whether a lock (a symbolic link, dangling by design) exists: `existsSync` follows the link and says no. */
const linkExists = (path: string) => {
  try {
    lstatSync(path)
    return true
  } catch {
    return false
  }
}

/** Plants the lock another process of this host would hold on task `id`. */
const plantLock = (dir: string, id: string, pid: number, processStart: string) =>
  symlinkSync(`L:${pid}:${processStart}:elsewhere:1`, join(dir, "tasks", `${id}.lock`))

const openStore = (dir: string) =>
  File.make({ directory: dir, lockTimeout: "1 second" }).pipe(Effect.provide(FileSystemSync.layer))

const liveProcess = Effect.acquireRelease(
  Effect.promise(() => {
    const child = spawnSleeper()
    return new Promise<typeof child>((resolve) => child.once("spawn", () => resolve(child)))
  }),
  (child) => Effect.sync(() => child.kill("SIGKILL"))
)

/** A record running here (its lease this process's), as a runner writes it. */
const runningHere = (id: string) =>
  record(id, { status: "running", lease: { token: "t", holder: Holder.self(), expiresAt: Date.now() + 60_000 } })
const nextTurn = Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))

describe("file store locks", () => {
  it.scoped("a lock left by a process that died after the store opened is broken, not waited for", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const store = yield* openStore(dir)
      yield* store.create(record("t"))
      plantLock(dir, "t", deadPid(), "12345")
      const started = Date.now()
      const updated = yield* Effect.either(store.update("t", 1, { reason: "through" }))
      assert.isTrue(Either.isRight(updated), Either.isLeft(updated) ? updated.left.message : "")
      assert.isBelow(Date.now() - started, 900, "the dead holder's lock was not waited for")
      assert.isFalse(linkExists(join(dir, "tasks", "t.lock")))
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
      plantLock(dir, "held", child.pid!, Holder.processStart(child.pid!))
      const started = Date.now()
      const blocked = yield* Effect.either(store.update("held", 1, { reason: "never" }))
      assert.isTrue(Either.isLeft(blocked) && blocked.left._tag === "TaskStoreError")
      if (Either.isLeft(blocked) && blocked.left._tag === "TaskStoreError") {
        const { operation, detail, id } = blocked.left
        assert.deepStrictEqual([operation, id], ["lock", "held"])
        assert.strictEqual(detail, `the task is locked by pid ${child.pid} on ${Holder.self().host} for over 1s`)
      }
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

  it.scoped("a lock that names no complete holder is nobody's: broken when met, and swept when a store opens", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const child = yield* liveProcess
      const pid = child.pid!
      const start = Holder.processStart(pid)
      // Each is a live holder's lock with one part missing or wrong.
      const malformed = [
        "garbage",
        `X:${pid}:${start}:s:1`,
        "L",
        `L:${pid}`,
        `L:${pid}:${start}`,
        `L:${pid}:${start}:s`
      ]
      const tasks = join(dir, "tasks")
      mkdirSync(tasks, { recursive: true })
      malformed.forEach((content, k) => symlinkSync(content, join(tasks, `swept${k}.lock`)))
      symlinkSync(`L:${pid}:${start}:s:1`, join(tasks, "live.lock"))
      const store = yield* openStore(dir)
      assert.deepStrictEqual(
        readdirSync(tasks).filter((n) => n.endsWith(".lock")),
        ["live.lock"],
        "only the live holder's lock is left after the sweep"
      )
      for (const [k, content] of malformed.entries()) {
        yield* store.create(record(`m${k}`))
        symlinkSync(content, join(tasks, `m${k}.lock`))
        const started = Date.now()
        const updated = yield* Effect.either(store.update(`m${k}`, 1, { reason: "through" }))
        assert.isTrue(Either.isRight(updated), `${content}: ${Either.isLeft(updated) ? updated.left.message : ""}`)
        assert.isBelow(Date.now() - started, 900, `${content}: not waited for`)
      }
    })
  )

  it.scoped("a waiter leaves a hint while it waits and removes it when it gets the lock, but not another's", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const store = yield* File.make({ directory: dir, lockTimeout: "20 seconds" }).pipe(
        Effect.provide(FileSystemSync.layer)
      )
      const child = yield* liveProcess
      const lock = `L:${child.pid!}:${Holder.processStart(child.pid!)}:elsewhere:1`
      const want = join(dir, "tasks", "w.want")
      yield* store.create(record("w"))

      symlinkSync(lock, join(dir, "tasks", "w.lock"))
      const waiting = yield* Effect.fork(store.update("w", 1, { reason: "mine" }))
      yield* waitUntil(
        Effect.sync(() => existsSync(want)),
        "the waiter leaves its hint",
        { live: true }
      )
      const hint = readFileSync(want, "utf8")
      assert.match(hint, /^W:[^:]+:\d+$/)
      assert.notInclude(hint, "elsewhere")
      unlinkSync(join(dir, "tasks", "w.lock"))
      assert.strictEqual((yield* Fiber.join(waiting)).revision, 2)
      assert.isFalse(existsSync(want), "its own hint is removed")

      const others = `W:another-store:${Date.now() + 60_000}`
      writeFileSync(want, others)
      symlinkSync(lock, join(dir, "tasks", "w.lock"))
      const second = yield* Effect.fork(store.update("w", 2, { reason: "again" }))
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 200)))
      unlinkSync(join(dir, "tasks", "w.lock"))
      assert.strictEqual((yield* Fiber.join(second)).revision, 3)
      assert.strictEqual(readFileSync(want, "utf8"), others, "another store's hint is left to it")
    })
  )

  it.scoped("a lock replaced by a live holder between the check and the break is put back, not broken", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const child = yield* liveProcess
      const live = `L:${child.pid!}:${Holder.processStart(child.pid!)}:elsewhere:2`
      const lockFile = join(dir, "tasks", "r.lock")
      let race: "replace" | "remove" | undefined
      // The race, forced at the system call: just before the stale lock is renamed aside, another process takes it
      // over (or releases it).
      const syscalls: FileSystemSync.Syscalls = {
        ...FileSystemSync.nodeSyscalls,
        renameSync: (from, to) => {
          if (from === lockFile && race !== undefined) {
            unlinkSync(lockFile)
            if (race === "replace") symlinkSync(live, lockFile)
            race = undefined
          }
          FileSystemSync.nodeSyscalls.renameSync(from, to)
        }
      }
      const store = yield* File.make({ directory: dir, lockTimeout: "1 second" }).pipe(
        Effect.provide(FileSystemSync.layerWith(syscalls))
      )
      yield* store.create(record("r"))
      const dead = deadPid()

      symlinkSync(`L:${dead}:1:elsewhere:1`, lockFile)
      race = "replace"
      const blocked = yield* Effect.either(store.update("r", 1, { reason: "never" }))
      assert.isTrue(Either.isLeft(blocked), "the live holder's lock was broken")
      assert.strictEqual(readlinkSync(lockFile), live)
      assert.deepStrictEqual(
        readdirSync(join(dir, "tasks")).filter((n) => n.startsWith(".break-")),
        [],
        "nothing left aside"
      )

      unlinkSync(lockFile)
      symlinkSync(`L:${dead}:1:elsewhere:1`, lockFile)
      race = "remove"
      assert.strictEqual((yield* store.update("r", 1, { reason: "through" })).revision, 2)
    })
  )

  it.scoped("a failure while breaking a dead holder's lock is survived: the lock is broken on the next try", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const tasks = join(dir, "tasks")
      for (const failing of ["readlink", "unlink"] as const) {
        const faults = new Faults()
        const store = yield* File.make({ directory: dir, lockTimeout: "1 second" }).pipe(
          Effect.provide(faultyLayer(faults))
        )
        const id = `b-${failing}`
        yield* store.create(record(id))
        symlinkSync(`L:${deadPid()}:1:elsewhere:1`, join(tasks, `${id}.lock`))
        faults.armMatching("EIO", (c) => c.startsWith(`${failing} `) && c.includes("/.break-"))
        const updated = yield* Effect.either(store.update(id, 1, { reason: "through" }))
        const hit = faults.log.some((c) => c.startsWith(`${failing} `) && c.includes("/.break-"))
        faults.disarm()
        assert.isTrue(hit, `the ${failing} of the set-aside lock was failed`)
        assert.isTrue(Either.isRight(updated), `${failing}: ${Either.isLeft(updated) ? updated.left.message : ""}`)
        assert.isFalse(linkExists(join(tasks, `${id}.lock`)))
      }
    })
  )

  it.scoped("a lock this store failed to release is removed in the background, and does not block its next write", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const lockFile = join(dir, "tasks", "o.lock")
      let failures = 0
      const syscalls: FileSystemSync.Syscalls = {
        ...FileSystemSync.nodeSyscalls,
        unlinkSync: (path) => {
          if (path === lockFile && failures > 0) {
            failures--
            throw Object.assign(new Error("EIO: injected"), { code: "EIO" })
          }
          FileSystemSync.nodeSyscalls.unlinkSync(path)
        }
      }
      const store = yield* File.make({ directory: dir, lockTimeout: "300 millis" }).pipe(
        Effect.provide(FileSystemSync.layerWith(syscalls))
      )
      yield* store.create(record("o"))
      // The release fails, and so do the next retries in the background (after 10, 20, 40, 80, 160 ms): the lock
      // stays for longer than the lock timeout.
      failures = 6
      const { warnings, collect } = warningCollector()
      yield* store.update("o", 1, { reason: "a" }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, collect)))
      assert.isTrue(linkExists(lockFile), "the lock was left")
      assert.include(warnings, "Could not remove the lock of task o; retrying in the background")
      // This store's own leftover lock is no one else's: its next write breaks it instead of waiting it out.
      yield* store.update("o", 2, { reason: "b" })
      // Fail the next release once more; the background retries keep at it until the lock is gone.
      failures = 2
      yield* store.update("o", 3, { reason: "c" })
      yield* waitUntil(
        Effect.sync(() => !linkExists(lockFile)),
        "the lock is removed in the background",
        {
          live: true
        }
      )
      assert.strictEqual(failures, 0)
    })
  )

  it.scoped("a record running here keeps its lock between writes until the event loop turns, and is not re-read", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const lockFile = join(dir, "tasks", "k.lock")
      const recordFile = join(dir, "tasks", "k.task")
      const calls = { link: 0, unlink: 0, read: 0 }
      const syscalls: FileSystemSync.Syscalls = {
        ...FileSystemSync.nodeSyscalls,
        linkSync: (from, to) => {
          if (to === lockFile) calls.link++
          FileSystemSync.nodeSyscalls.linkSync(from, to)
        },
        unlinkSync: (path) => {
          if (path === lockFile) calls.unlink++
          FileSystemSync.nodeSyscalls.unlinkSync(path)
        },
        openSync: (path, flags, mode) => {
          if (path === recordFile) calls.read++
          return FileSystemSync.nodeSyscalls.openSync(path, flags, mode)
        }
      }
      const store = yield* File.make({ directory: dir }).pipe(Effect.provide(FileSystemSync.layerWith(syscalls)))

      yield* store.create(runningHere("k"))
      for (let revision = 1; revision <= 5; revision++) {
        yield* store.update("k", revision, { progress: { done: revision } })
      }
      assert.deepStrictEqual(calls, { link: 1, unlink: 0, read: 0 }, "taken once, kept, and the record trusted")
      assert.isTrue(linkExists(lockFile), "kept while the writes go on")
      yield* nextTurn
      assert.isFalse(linkExists(lockFile), "dropped when the event loop turns")
      assert.strictEqual(calls.unlink, 1)

      // Taken again at the next write, and its head read again: another writer may have come in between.
      yield* store.update("k", 6, { progress: { done: 6 } })
      assert.deepStrictEqual(calls, { link: 2, unlink: 1, read: 1 })
      // A write here that takes the lock the effect way (a log flush) drops the kept one first: the write after it
      // takes the lock again, and reads the record again.
      yield* store.appendLogs("k", [{ time: 1, level: "INFO", message: "m" }])
      yield* store.update("k", 7, { progress: { done: 7 } })
      assert.strictEqual(calls.read, 2, "not trusted after another write under the lock")
      yield* nextTurn

      // A record of another process's, or none's, is not kept: its lock goes with the write.
      yield* store.create(record("p"))
      yield* store.update("p", 1, { reason: "pending" })
      assert.isFalse(linkExists(join(dir, "tasks", "p.lock")))
      const elsewhere = { token: "u", holder: { ...Holder.self(), pid: deadPid() }, expiresAt: Date.now() + 60_000 }
      yield* store.update("k", 8, { lease: elsewhere })
      assert.isFalse(linkExists(lockFile), "a lease taken over: the lock is not kept for it")
      // A task's end leaves nothing kept either.
      yield* store.create(runningHere("e"))
      yield* store.update("e", 1, { status: "completed", lease: undefined })
      assert.isFalse(linkExists(join(dir, "tasks", "e.lock")))
    })
  )

  it.scoped("a lock kept by one store hides no other writer's change from it, and is dropped on closing", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      yield* Effect.scoped(kept(dir))
      // Its scope closed, the first store has dropped the lock it kept.
      assert.deepStrictEqual(
        readdirSync(join(dir, "tasks")).filter((n) => n.endsWith(".lock")),
        []
      )
    })
  )
})

/** Two stores on `dir`: the first keeps the lock of a task running here, the second writes the task all the same. */
const kept = (dir: string) =>
  Effect.gen(function* () {
    const a = yield* openStore(dir)
    const lockFile = join(dir, "tasks", "s.lock")
    yield* a.create(runningHere("s"))
    assert.isTrue(linkExists(lockFile), "kept by the first store")

    // A second store on the same directory waits for it: the first drops it when the event loop turns.
    yield* Effect.scoped(
      Effect.gen(function* () {
        const b = yield* openStore(dir)
        assert.strictEqual((yield* b.update("s", 1, { reason: "from b" })).revision, 2)
      })
    )
    // The first store takes the lock again and reads what the second wrote: its write from revision 1 conflicts.
    const stale = yield* Effect.either(a.update("s", 1, { progress: { done: 1 } }))
    assert.isTrue(Either.isLeft(stale) && stale.left._tag === "RevisionConflict", "the other's write is seen")
    const fresh = yield* a.update("s", 2, { progress: { done: 2 } })
    assert.strictEqual(fresh.reason, "from b")
    assert.strictEqual((yield* a.get("s")).reason, "from b")
    assert.isTrue(linkExists(lockFile), "kept again")
  })

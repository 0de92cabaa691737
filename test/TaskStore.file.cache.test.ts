/**
 * The file store's record cache, seen through the bytes it reads from disk: a record this store wrote is not read
 * again in full (only its preamble, to see that no one else replaced it), the cache stays within `cacheBytes`
 * (oldest records leave first), and a record changed by someone else is read again.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { statSync } from "node:fs"
import { basename, join } from "node:path"
import * as File from "../src/TaskStore/File.js"
import * as FileSystemSync from "../src/internal/file/fileSystemSync.js"
import * as Records from "../src/internal/file/records.js"
import { bytes, record } from "./helpers/store.js"
import { tempDir } from "./helpers/tempDir.js"

/** Node's system calls, with the bytes read from each file (by name) counted. */
const counting = () => {
  const read = new Map<string, number>()
  const paths = new Map<number, string>()
  const syscalls: FileSystemSync.Syscalls = {
    ...FileSystemSync.nodeSyscalls,
    openSync: (path, flags, mode) => {
      const fd = FileSystemSync.nodeSyscalls.openSync(path, flags, mode)
      paths.set(fd, basename(path))
      return fd
    },
    readSync: (fd, buffer, offset, length, position) => {
      const n = FileSystemSync.nodeSyscalls.readSync(fd, buffer, offset, length, position)
      const name = paths.get(fd) ?? "?"
      read.set(name, (read.get(name) ?? 0) + n)
      return n
    }
  }
  /** Bytes read from `name` while `effect` ran. */
  const during = <A, E>(name: string, effect: Effect.Effect<A, E>) =>
    Effect.gen(function* () {
      const before = read.get(name) ?? 0
      yield* effect
      return (read.get(name) ?? 0) - before
    })
  return { syscalls, during }
}

const big = 256 * 1024

const openStore = (dir: string, cacheBytes?: number) => {
  const count = counting()
  return File.make({ directory: dir, cacheBytes }).pipe(
    Effect.provide(FileSystemSync.layerWith(count.syscalls)),
    Effect.map((store) => ({ store, during: count.during }))
  )
}

const withState = (id: string) => record(id, { state: bytes("s".repeat(big)) })

describe("file store cache", () => {
  it.scoped("an update of a record this store wrote reads its preamble only; another store reads it whole", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { store, during } = yield* openStore(dir)
      yield* store.create(withState("t"))
      const cached = yield* during("t.task", store.update("t", 1, { reason: "a" }))
      assert.isBelow(cached, 4096)
      const other = yield* openStore(dir)
      const whole = yield* other.during("t.task", other.store.update("t", 2, { reason: "b" }))
      assert.isAtLeast(whole, big)
      // The first store sees that the record changed under it (its write nonce) and reads it again.
      const again = yield* during("t.task", store.update("t", 3, { reason: "c" }))
      assert.isAtLeast(again, big)
      assert.strictEqual((yield* store.get("t")).reason, "c")
    })
  )

  it.scoped("a record larger than `cacheBytes` is not cached", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { store, during } = yield* openStore(dir, big / 2)
      yield* store.create(withState("t"))
      assert.isAtLeast(yield* during("t.task", store.update("t", 1, { reason: "a" })), big)
      assert.isAtLeast(yield* during("t.task", store.update("t", 2, { reason: "b" })), big)
    })
  )

  it.scoped("a record of exactly `cacheBytes` is cached", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const first = yield* openStore(dir)
      yield* first.store.create(withState("t"))
      const size = statSync(join(dir, "tasks", "t.task")).size
      const { store, during } = yield* openStore(dir, size)
      // Patches that keep the record's size: each write leaves exactly `size` bytes.
      yield* store.update("t", 1, { progress: { done: 1 } })
      assert.strictEqual(statSync(join(dir, "tasks", "t.task")).size, size)
      assert.isBelow(yield* during("t.task", store.update("t", 2, { progress: { done: 2 } })), 4096)
    })
  )

  it.scoped("the cache keeps within `cacheBytes`: the least recently written record leaves first", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { store, during } = yield* openStore(dir, Math.floor(big * 2.5))
      yield* store.create(withState("a"))
      // Rewriting a record replaces its entry (its old size is given back), so it can be rewritten any number of times.
      for (let revision = 1; revision <= 4; revision++) yield* store.update("a", revision, { reason: `${revision}` })
      yield* store.create(withState("b"))
      assert.isBelow(yield* during("a.task", store.update("a", 5, { reason: "kept" })), 4096)
      assert.isBelow(yield* during("b.task", store.update("b", 1, { reason: "kept" })), 4096)
      // A third record does not fit: the oldest of the others (a, written before b's last write) leaves.
      yield* store.create(withState("c"))
      assert.isAtLeast(yield* during("a.task", store.update("a", 6, { reason: "evicted" })), big)
      assert.isBelow(yield* during("c.task", store.update("c", 1, { reason: "kept" })), 4096)
    })
  )

  it.scoped("a record too large for the cache does not push the others out", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { store, during } = yield* openStore(dir, Math.floor(big * 2.5))
      yield* store.create(withState("a"))
      yield* store.create(record("huge", { state: bytes("h".repeat(big * 3)) }))
      assert.isBelow(yield* during("a.task", store.update("a", 1, { reason: "still cached" })), 4096)
      assert.isAtLeast(yield* during("huge.task", store.update("huge", 1, { reason: "never cached" })), big * 3)
    })
  )

  it.scoped("metadata longer than the first read is taken from the cache for a record this store wrote", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { store, during } = yield* openStore(dir)
      const reason = "r".repeat(20_000)
      yield* store.create(record("t", { reason }))
      const cachedRead = yield* during("t.task", store.getInfo("t"))
      assert.isBelow(cachedRead, 4097)
      const other = yield* openStore(dir)
      assert.isAtLeast(yield* other.during("t.task", other.store.getInfo("t")), 20_000)
      assert.strictEqual((yield* store.getInfo("t")).reason, reason)
    })
  )

  it.scoped(
    "a large state is not kept in the cache: a write that replaces it reads the preamble only, others the file",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        // A cache smaller than the state: the record is cached only because the state is left out.
        const { store, during } = yield* openStore(dir, 64 * 1024)
        const large = (c: string) => bytes(c.repeat(Records.uncachedStateBytes))
        yield* store.create(record("t", { input: bytes("small"), state: large("a") }))
        // A checkpoint's write: the state is replaced, so the state the cache went without is not needed.
        assert.isBelow(yield* during("t.task", store.update("t", 1, { state: large("b") })), 4096)
        assert.isBelow(yield* during("t.task", store.update("t", 2, { state: large("c") })), 4096)
        // A write that keeps the state (a heartbeat) reads the record whole, and the state it writes back is intact.
        assert.isAtLeast(yield* during("t.task", store.update("t", 3, { reason: "kept" })), Records.uncachedStateBytes)
        const stored = yield* store.get("t")
        assert.deepStrictEqual(stored.state, large("c"))
        assert.deepStrictEqual(stored.input, bytes("small"))
        assert.strictEqual(stored.reason, "kept")
        // Its metadata and input are still cached: a state written at once again reads the preamble only.
        assert.isBelow(yield* during("t.task", store.update("t", 4, { state: large("d") })), 4096)
        assert.deepStrictEqual((yield* store.get("t")).state, large("d"))
      })
  )

  it.scoped("a large input stays cached: no write replaces it", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { store, during } = yield* openStore(dir)
      yield* store.create(record("t", { input: bytes("i".repeat(Records.uncachedStateBytes)), state: bytes("s") }))
      assert.isBelow(yield* during("t.task", store.update("t", 1, { state: bytes("s2") })), 4096)
      assert.isBelow(yield* during("t.task", store.update("t", 2, { reason: "beat" })), 4096)
    })
  )

  it.scoped("a deleted record is not served from the cache", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const { store } = yield* openStore(dir)
      yield* store.create(withState("t"))
      yield* store.delete("t")
      const missing = yield* Effect.flip(store.get("t"))
      assert.strictEqual(missing._tag, "TaskNotFound")
      const recreated = yield* store.create(record("t", { reason: "new" }))
      assert.strictEqual(recreated.revision, 1)
      assert.strictEqual((yield* store.update("t", 1, { progress: { done: 1 } })).reason, "new")
    })
  )
})

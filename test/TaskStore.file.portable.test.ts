/**
 * The file store over a `FileSystem` other than ours: one whose errors carry only the platform's `reason` (no Node
 * error with an errno underneath), as another platform's `FileSystem` would. Missing files, lock contention, denied
 * access and a full disk must be told apart from the reason alone, and every I/O error names what failed.
 */
import { FileSystem } from "@effect/platform"
import { BadArgument, SystemError, type SystemErrorReason } from "@effect/platform/Error"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { spawnSync } from "node:child_process"
import { symlinkSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import * as File from "../src/TaskStore/File.js"
import * as FileSystemSync from "../src/internal/file/fileSystemSync.js"
import { conformance } from "./TaskStore.conformance.js"
import { bytes, record } from "./helpers/store.js"
import { inTempDir, tempDir } from "./helpers/tempDir.js"

/** A failure to inject: the next call of `method` (on the FileSystem or an open File) fails with `reason`. */
interface Injected {
  method: string
  reason: SystemErrorReason | "BadArgument"
}

/** Our FileSystem with every error re-made from its reason alone, and a failure injected on demand. */
const reasonOnly = (inject: { next: Injected | undefined } = { next: undefined }) =>
  Layer.effect(
    FileSystem.FileSystem,
    Effect.map(FileSystem.FileSystem, (fs) => {
      const strip = (error: unknown) =>
        error instanceof SystemError
          ? new SystemError({
              reason: error.reason,
              module: error.module,
              method: error.method,
              description: error.description ?? error.reason
            })
          : error
      const injected = (method: string) => {
        if (inject.next?.method !== method) return undefined
        const reason = inject.next.reason
        inject.next = undefined
        return Effect.fail(
          reason === "BadArgument"
            ? new BadArgument({ module: "FileSystem", method, description: "injected" })
            : new SystemError({ reason, module: "FileSystem", method, description: "injected" })
        )
      }
      const wrap = (method: string, value: unknown): unknown => {
        if (!Effect.isEffect(value)) return value
        return Effect.suspend(
          () =>
            injected(method) ??
            (value as Effect.Effect<unknown, unknown, unknown>).pipe(
              Effect.mapError(strip),
              Effect.map((v) => (FileSystem.FileTypeId in Object(v) ? proxy(v as object) : v))
            )
        )
      }
      const proxy = <T extends object>(target: T): T =>
        new Proxy(target, {
          get: (t, key, receiver) => {
            const value = Reflect.get(t, key, receiver)
            if (typeof key !== "string") return value
            return typeof value === "function"
              ? (...args: Array<unknown>) => wrap(key, (value as (...a: Array<unknown>) => unknown).apply(t, args))
              : wrap(key, value)
          }
        })
      return proxy(fs)
    })
  ).pipe(Layer.provide(FileSystemSync.layer))

conformance("file over a FileSystem without errno codes", () =>
  inTempDir((directory) => File.layerFileSystem({ directory }).pipe(Layer.provide(reasonOnly())))
)

const openStore = (dir: string, inject?: { next: Injected | undefined }) =>
  File.make({ directory: dir, lockTimeout: "2 seconds" }).pipe(Effect.provide(reasonOnly(inject)))

describe("file store over a FileSystem without errno codes", () => {
  it.scoped("a lock left by a dead process is recognised as taken (by its reason) and broken", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const store = yield* openStore(dir)
      yield* store.create(record("t"))
      const dead = spawnSync(process.execPath, ["-e", "0"]).pid!
      symlinkSync(`L:${dead}:1:elsewhere:1`, join(dir, "tasks", "t.lock"))
      assert.strictEqual((yield* store.update("t", 1, { reason: "through" })).revision, 2)
    })
  )

  it.scoped("a denied rename is a TaskStoreError carrying EACCES, the operation, the task and the path", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const inject = { next: undefined as Injected | undefined }
      const store = yield* openStore(dir, inject)
      yield* store.create(record("t"))
      inject.next = { method: "rename", reason: "PermissionDenied" }
      const failed = yield* Effect.flip(store.update("t", 1, { state: bytes("x") }))
      assert.strictEqual(failed._tag, "TaskStoreError")
      if (failed._tag !== "TaskStoreError") return
      assert.deepStrictEqual(
        [failed.reason, failed.errno, failed.operation, failed.id, failed.path],
        ["Io", "EACCES", "update", "t", join(dir, "tasks", "t.task")]
      )
      assert.strictEqual((yield* store.getInfo("t")).revision, 1)
    })
  )

  it.scoped("an unexpected failure keeps no errno but still names the operation and the task", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const inject = { next: undefined as Injected | undefined }
      const store = yield* openStore(dir, inject)
      yield* store.create(record("t"))
      inject.next = { method: "readDirectory", reason: "Unknown" }
      const failed = yield* Effect.flip(store.list())
      assert.strictEqual(failed._tag, "TaskStoreError")
      if (failed._tag !== "TaskStoreError") return
      assert.isUndefined(failed.errno)
      assert.strictEqual(failed.operation, "list")
      assert.isUndefined(failed.id)
    })
  )

  it.scoped("a bad-argument error of the file system is a TaskStoreError of the read, not a stray platform error", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const inject = { next: undefined as Injected | undefined }
      const store = yield* openStore(dir, inject)
      yield* store.create(record("t"))
      for (const [method, read] of [
        ["readFile", store.get("t")],
        ["open", store.getInfo("t")]
      ] as const) {
        inject.next = { method, reason: "BadArgument" }
        const failed = yield* Effect.flip(read as Effect.Effect<unknown, { readonly _tag: string }>)
        assert.strictEqual(failed._tag, "TaskStoreError", method)
        assert.strictEqual((failed as unknown as { operation: string }).operation, "read", method)
      }
    })
  )
})

describe("file store errors", () => {
  it.scoped("a disk that takes no more bytes fails the write with ENOSPC, keeping the old record", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      let full = false
      const syscalls: FileSystemSync.Syscalls = {
        ...FileSystemSync.nodeSyscalls,
        writeSync: (fd, buffer, offset, length, position) =>
          full ? 0 : FileSystemSync.nodeSyscalls.writeSync(fd, buffer, offset, length, position)
      }
      const store = yield* File.make({ directory: dir }).pipe(Effect.provide(FileSystemSync.layerWith(syscalls)))
      yield* store.create(record("t", { state: bytes("old") }))
      full = true
      const failed = yield* Effect.flip(store.update("t", 1, { state: bytes("new") }))
      full = false
      assert.strictEqual(failed._tag, "TaskStoreError")
      if (failed._tag === "TaskStoreError") {
        assert.strictEqual(failed.errno, "ENOSPC")
        assert.include(failed.message, "disk is probably full")
      }
      assert.strictEqual(Buffer.from((yield* store.get("t")).state!).toString(), "old")
    })
  )

  it.scoped("a store directory that cannot be created fails the open, naming the directory", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      writeFileSync(join(dir, "file"), "not a directory")
      const failed = yield* Effect.flip(
        File.make({ directory: join(dir, "file", "store") }).pipe(Effect.provide(FileSystemSync.layer))
      )
      assert.strictEqual(failed._tag, "TaskStoreError")
      assert.strictEqual(failed.operation, "open")
      assert.include(failed.path ?? "", join(dir, "file"))
    })
  )
})

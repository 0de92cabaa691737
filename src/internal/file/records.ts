/**
 * Record files: read whole (checksum checked) or metadata only (from the file's head), written durably (temp file,
 * fsync, rename, fsync of the directory), with a cache of records this process wrote or read, keyed by write nonce.
 *
 * On `FileSystemSync` (the store's own, on the local disk) the reads and writes of the hot path also exist as
 * straight-line system calls (`direct`): the same calls in the same order, with the same errors, without an effect,
 * a scope and a closure per call, which cost as much as the calls themselves.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as PlatformError from "@effect/platform/Error"
import { SystemError } from "@effect/platform/Error"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { TaskNotFound, TaskStoreError } from "../../TaskError.js"
import * as TaskRecord from "../../TaskRecord.js"
import * as FileSystemSync from "./fileSystemSync.js"
import * as RecordFile from "./recordFile.js"
import { isNotFound, type Layout } from "./layout.js"

/** The record files of a store. */
export interface Records {
  /**
   * Reads a whole record; with `cached`, from memory when the file's nonce shows it unchanged. With `replacing` (the
   * patch the caller applies next), a cached record that went without its large state serves when the patch replaces
   * the state (see `uncachedStateBytes`): the record given then lacks it.
   */
  readonly readRecord: (
    id: string,
    cached: boolean,
    replacing?: TaskRecord.TaskPatch
  ) => Effect.Effect<TaskRecord.TaskRecord, TaskNotFound | TaskStoreError>
  /** Reads a record's metadata from the head of its file. */
  readonly readInfo: (id: string) => Effect.Effect<TaskRecord.TaskInfo, TaskNotFound | TaskStoreError>
  /** Replaces a record durably. */
  readonly writeRecord: (
    id: string,
    record: TaskRecord.TaskRecord,
    operation: string
  ) => Effect.Effect<void, TaskStoreError>
  /** Drops a record from the cache (it was deleted). */
  readonly forget: (id: string) => void
  /** The hot path's reads and writes in direct system calls, when the store runs on `FileSystemSync`. */
  readonly direct: Direct | undefined
}

/**
 * `readRecord` (from the cache when unchanged), `writeRecord` and an existence check as direct system calls. They
 * throw what the effects fail with (`TaskNotFound`, `TaskStoreError`), and must run under the task's lock.
 */
export interface Direct {
  /**
   * The record, from the cache when the file's nonce shows it unchanged; with `unchanged` (the lock has been held
   * since this store last wrote it, so nobody else can have), from the cache without looking at the file.
   * `replacing` as for `Records.readRecord`.
   */
  readonly readRecord: (id: string, unchanged: boolean, replacing?: TaskRecord.TaskPatch) => TaskRecord.TaskRecord
  readonly writeRecord: (id: string, record: TaskRecord.TaskRecord, operation: string) => void
  /** Whether `path` exists; a failure to tell is `operation`'s. */
  readonly exists: (path: string, operation: string, id: string) => boolean
  /** Removes `path` if it exists; a failure is `operation`'s. */
  readonly removeIfAny: (path: string, operation: string, id: string) => void
}

/**
 * A state this large or larger is not kept in the cache: the cached record goes without it and serves only a write
 * that replaces it, as a running task's next checkpoint does; anything else (a heartbeat's write, which keeps the
 * state) reads the file. Kept, the state of a running task's last checkpoint stayed in memory a second time, beside the
 * task's own value, until its next checkpoint: `npx tsx bench/largeState.ts file <string|binary>` measured 2.0 states
 * live after its checkpoints with it, 1.0 without (`retained_ratio`, two runs each of both forms). The input is kept
 * whatever its size: no write replaces it, so every write would read it again.
 */
export const uncachedStateBytes = 1024 * 1024

/** A cached record: its write nonce, the record (without its state if `stateElided`), and the bytes it holds. */
interface Cached {
  readonly nonce: string
  readonly record: TaskRecord.TaskRecord
  readonly bytes: number
  readonly stateElided: boolean
}

/** What the cache keeps of a record written or read whole (`bytes` long, with write nonce `nonce`). */
const cachedOf = (nonce: string, record: TaskRecord.TaskRecord, bytes: number): Cached => {
  const state = record.state
  if (state === undefined || state.byteLength < uncachedStateBytes) return { nonce, record, bytes, stateElided: false }
  const kept: Record<string, unknown> = {}
  for (const key in record) if (key !== "state") kept[key] = (record as unknown as Record<string, unknown>)[key]
  return {
    nonce,
    record: kept as unknown as TaskRecord.TaskRecord,
    bytes: bytes - state.byteLength,
    stateElided: true
  }
}

/** Whether a cached record serves a read for a write of `replacing`: it holds every field the write keeps. */
const serves = (hit: Cached, replacing: TaskRecord.TaskPatch | undefined) =>
  !hit.stateElided || (replacing !== undefined && Object.hasOwn(replacing, "state"))

/**
 * The records of `layout`'s directory, caching up to `cacheLimit` bytes; `syncDir` makes a rename durable. With
 * `syscalls` (and the directory's descriptor) the hot path also runs in direct calls.
 */
export const make = (
  layout: Layout,
  options: {
    readonly cacheLimit: number
    readonly syncDir: (operation: string, id: string) => Effect.Effect<void, TaskStoreError>
    readonly syscalls?: { readonly sys: FileSystemSync.Syscalls; readonly dirFd: number } | undefined
  }
): Records => {
  const { fs, io } = layout
  const { cacheLimit, syncDir } = options
  const cache = new Map<string, Cached>()
  let cached = 0
  const remember = (id: string, nonce: string, record: TaskRecord.TaskRecord, bytes: number) => {
    forget(id)
    const entry = cachedOf(nonce, record, bytes)
    if (entry.bytes > cacheLimit) return
    cache.set(id, entry)
    cached += entry.bytes
    for (const [key, value] of cache) {
      if (cached <= cacheLimit) break
      cache.delete(key)
      cached -= value.bytes
    }
  }
  const forget = (id: string) => {
    const old = cache.get(id)
    if (old !== undefined) {
      cache.delete(id)
      cached -= old.bytes
    }
  }

  const corrupt = (id: string, path: string, detail: string) =>
    new TaskStoreError({
      reason: "Corrupt",
      operation: "read",
      id,
      path,
      detail: `the record file is corrupt: ${detail}`
    })

  /** Reads the first `n` bytes of a file (fewer if it is shorter), and the file's size. */
  const readHead = (path: string, n: number, withSize = true) =>
    Effect.scoped(
      Effect.gen(function* () {
        const file = yield* fs.open(path)
        const buffer = new Uint8Array(n)
        let filled = 0
        // Stryker disable next-line EqualityOperator: a read into no room returns 0 and ends the loop all the same.
        while (filled < n) {
          const got = Number(yield* file.read(buffer.subarray(filled)))
          if (got === 0) break
          filled += got
        }
        // Stryker disable next-line all: a short file's size is what was read; asking the file system gives the same.
        const size = filled < n || !withSize ? filled : Number((yield* file.stat).size)
        return { head: buffer.subarray(0, filled), size }
      })
    )

  const notFoundOr =
    (operation: string, id: string) =>
    (e: PlatformError.PlatformError): Effect.Effect<never, TaskNotFound | TaskStoreError> =>
      isNotFound(e) ? Effect.fail(new TaskNotFound({ id })) : Effect.fail(io(operation, layout.recordPath(id), id)(e))

  /**
   * Reads a whole record and checks its checksum. With `cached`, a record this process wrote or read is taken
   * from memory when the file's write nonce shows it unchanged (the hot path of `update`).
   */
  const readRecord = (
    id: string,
    cached: boolean,
    replacing?: TaskRecord.TaskPatch
  ): Effect.Effect<TaskRecord.TaskRecord, TaskNotFound | TaskStoreError> =>
    Effect.gen(function* () {
      const path = layout.recordPath(id)
      const hit = cached ? cache.get(id) : undefined
      if (hit !== undefined && serves(hit, replacing)) {
        // Stryker disable next-line BooleanLiteral: the size is not needed here; reading it costs a call, not correctness.
        const { head } = yield* readHead(path, RecordFile.preambleSize, false)
        const preamble = RecordFile.readPreamble(head)
        if (Either.isRight(preamble) && preamble.right.nonce === hit.nonce) return hit.record
      }
      const bytes = yield* fs.readFile(path)
      const decoded = RecordFile.decode(bytes)
      if (Either.isLeft(decoded)) return yield* corrupt(id, path, decoded.left)
      remember(id, decoded.right.nonce, decoded.right.record, bytes.length)
      return decoded.right.record
    }).pipe(
      Effect.catchIf(
        (e): e is PlatformError.PlatformError => e._tag === "SystemError" || e._tag === "BadArgument",
        notFoundOr("read", id)
      )
    )

  /** Reads a record's metadata from the head of its file only (its data, possibly large, is not read). */
  const readInfo = (id: string): Effect.Effect<TaskRecord.TaskInfo, TaskNotFound | TaskStoreError> =>
    Effect.gen(function* () {
      const path = layout.recordPath(id)
      const { head, size } = yield* readHead(path, 4096)
      const preamble = RecordFile.readPreamble(head)
      if (Either.isLeft(preamble)) return yield* corrupt(id, path, preamble.left)
      if (size !== preamble.right.size) {
        return yield* corrupt(id, path, `it is ${size} bytes but its preamble says ${preamble.right.size}`)
      }
      const hit = cache.get(id)
      if (hit !== undefined && preamble.right.nonce === hit.nonce) return TaskRecord.info(hit.record)
      const full =
        // Stryker disable next-line ConditionalExpression,EqualityOperator: reading the head again is only slower.
        head.length >= RecordFile.preambleSize + preamble.right.metaLength
          ? head
          : (yield* readHead(path, RecordFile.preambleSize + preamble.right.metaLength)).head
      const info = RecordFile.readInfo(preamble.right, full)
      return Either.isRight(info) ? info.right : yield* corrupt(id, path, info.left)
    }).pipe(
      Effect.catchIf(
        (e): e is PlatformError.PlatformError => e._tag === "SystemError" || e._tag === "BadArgument",
        notFoundOr("read", id)
      )
    )

  const writeFully = (file: FileSystem.File, chunk: Uint8Array): Effect.Effect<void, PlatformError.PlatformError> =>
    Effect.gen(function* () {
      let offset = 0
      while (offset < chunk.length) {
        const written = Number(yield* file.write(chunk.subarray(offset)))
        if (written <= 0) {
          return yield* Effect.fail(
            new SystemError({
              reason: "WriteZero",
              module: "FileSystem",
              method: "write",
              description: "write returned 0 bytes: the disk is probably full"
            })
          )
        }
        offset += written
      }
    })

  /**
   * Replaces a record durably: a new temp file is written in full, fsynced, closed, renamed over the record, and
   * the directory fsynced. On any failure the temp file is removed and nothing is retried: a failed fsync may
   * have dropped the written pages, so its data is never trusted.
   */
  const writeRecord = (id: string, record: TaskRecord.TaskRecord, operation: string) =>
    Effect.gen(function* () {
      const target = layout.recordPath(id)
      const temp = layout.tempPath()
      const encoded = RecordFile.encode(record)
      yield* Effect.scoped(
        Effect.gen(function* () {
          const file = yield* fs.open(temp, { flag: "wx", mode: 0o644 })
          // Small records are one chunk; large ones several, without a copy of their data (`RecordFile.encode`).
          for (const chunk of encoded.chunks) yield* writeFully(file, chunk)
          yield* file.sync
        })
      ).pipe(
        Effect.zipRight(fs.rename(temp, target)),
        Effect.mapError(io(operation, target, id)),
        Effect.zipRight(syncDir(operation, id)),
        // After the rename there is no temp file left to remove: the removal fails, and that is ignored.
        Effect.tapError(() => {
          forget(id)
          return fs.remove(temp).pipe(Effect.catchAll(() => Effect.void))
        })
      )
      remember(id, encoded.nonce, record, encoded.size)
    })

  const direct = options.syscalls === undefined ? undefined : makeDirect(options.syscalls.sys, options.syscalls.dirFd)

  function makeDirect(sys: FileSystemSync.Syscalls, dirFd: number): Direct {
    const failure = (operation: string, path: string, id: string, method: string, e: unknown) =>
      e instanceof TaskStoreError || e instanceof TaskNotFound
        ? e
        : io(operation, path, id)(FileSystemSync.systemError(method, path, e))

    /** The first `n` bytes of a file (fewer if it is shorter). */
    const readHead = (path: string, n: number): Buffer => {
      const fd = FileSystemSync.openFile(sys, path, "r")
      try {
        const buffer = Buffer.allocUnsafe(n)
        let filled = 0
        while (filled < n) {
          const got = sys.readSync(fd, buffer, filled, n - filled, filled)
          if (got === 0) break
          filled += got
        }
        return buffer.subarray(0, filled)
      } finally {
        FileSystemSync.closeQuietly(sys, fd)
      }
    }

    return {
      readRecord: (id, unchanged, replacing) => {
        const path = layout.recordPath(id)
        try {
          const found = cache.get(id)
          const hit = found !== undefined && serves(found, replacing) ? found : undefined
          if (hit !== undefined && unchanged) return hit.record
          if (hit !== undefined) {
            const preamble = RecordFile.readPreamble(readHead(path, RecordFile.preambleSize))
            if (Either.isRight(preamble) && preamble.right.nonce === hit.nonce) return hit.record
          }
          const bytes = FileSystemSync.readAll(sys, path)
          const decoded = RecordFile.decode(bytes)
          if (Either.isLeft(decoded)) throw corrupt(id, path, decoded.left)
          remember(id, decoded.right.nonce, decoded.right.record, bytes.length)
          return decoded.right.record
        } catch (e) {
          if (FileSystemSync.codeOf(e) === "ENOENT") throw new TaskNotFound({ id })
          throw failure("read", path, id, "read", e)
        }
      },
      writeRecord: (id, record, operation) => {
        const target = layout.recordPath(id)
        const temp = layout.tempPath()
        const encoded = RecordFile.encode(record)
        let fd: number | undefined
        let renamed = false
        try {
          fd = FileSystemSync.openFile(sys, temp, "wx", 0o644)
          let position = 0
          for (const chunk of encoded.chunks) position += FileSystemSync.writeAll(sys, fd, chunk, position)
          sys.fsyncSync(fd)
          FileSystemSync.closeQuietly(sys, fd)
          fd = undefined
          sys.renameSync(temp, target)
          renamed = true
          sys.fsyncSync(dirFd)
        } catch (e) {
          if (fd !== undefined) FileSystemSync.closeQuietly(sys, fd)
          forget(id)
          try {
            sys.unlinkSync(temp)
          } catch {
            // After the rename there is no temp file left to remove.
          }
          throw renamed ? failure(operation, layout.dir, id, "sync", e) : failure(operation, target, id, "write", e)
        }
        remember(id, encoded.nonce, record, encoded.size)
      },
      exists: (path, operation, id) => {
        try {
          return sys.statSync(path) !== undefined
        } catch (e) {
          const code = FileSystemSync.codeOf(e)
          if (code === "ENOENT" || code === "ENOTDIR") return false
          throw failure(operation, path, id, "exists", e)
        }
      },
      removeIfAny: (path, operation, id) => {
        try {
          // Usually nothing is there: asking costs less than an unlink that fails (Node builds and throws an error).
          if (sys.lstatSync(path) === undefined) return
          sys.unlinkSync(path)
        } catch (e) {
          if (FileSystemSync.codeOf(e) !== "ENOENT") throw failure(operation, path, id, "remove", e)
        }
      }
    }
  }

  return { readRecord, readInfo, writeRecord, forget, direct }
}

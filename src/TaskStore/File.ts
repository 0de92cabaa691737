/**
 * The atomic file store: one file per task in a directory, replaced atomically and durably on every write. The
 * embedded default: no database, crash-proof on a local file system.
 *
 * Layout of `directory`:
 *
 * - `tasks/<id>.task`: the record (format in `RecordFile.ts`), replaced by write-temp, fsync, rename, fsync(dir).
 * - `tasks/<id>.log`: the task's log lines, one JSON object per line, appended.
 * - `tasks/<id>.lock`: a symbolic link, present while one process reads-checks-writes the record; its target names
 *   the holder's host, pid and start time.
 * - `tasks/<id>.want`: a hint left by a process waiting for the lock, so the holder lets it in (fairness).
 * - `tasks/.tmp-<pid>-<start>-<n>`: a record being written; swept when a store opens if its writer is gone.
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import type * as PlatformError from "@effect/platform/Error"
import { SystemError } from "@effect/platform/Error"
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import { dirname, join } from "node:path"
import * as Holder from "../Holder.js"
import { RevisionConflict, TaskAlreadyExists, TaskNotFound, TaskStoreError } from "../TaskError.js"
import * as TaskId from "../TaskId.js"
import * as TaskRecord from "../TaskRecord.js"
import { defaultKeepLogs, TaskStore } from "../TaskStore.js"
import type { Service } from "../TaskStore.js"
import * as FileSystemSync from "./FileSystemSync.js"
import * as RecordFile from "./RecordFile.js"

/** Options of the file store. */
export interface Options {
  /** The store's directory; created if missing. */
  readonly directory: string
  /** How long to wait for another live process's lock on a task before failing (default 30 s). */
  readonly lockTimeout?: Duration.DurationInput | undefined
  /** Bytes of recently written records kept in memory to skip re-reading them (default 64 MiB). */
  readonly cacheBytes?: number | undefined
}

const recordSuffix = ".task"
const logSuffix = ".log"
const lockSuffix = ".lock"
const wantSuffix = ".want"
const tempPrefix = ".tmp-"
const breakPrefix = ".break-"

/** The errno of a platform error, from the Node error underneath or from its reason. */
const errnoOf = (error: PlatformError.PlatformError): string | undefined => {
  if (error._tag === "SystemError") {
    const code = (error.cause as NodeJS.ErrnoException | undefined)?.code
    if (typeof code === "string") return code
    switch (error.reason) {
      case "NotFound":
        return "ENOENT"
      case "AlreadyExists":
        return "EEXIST"
      case "PermissionDenied":
        return "EACCES"
      case "WriteZero":
        return "ENOSPC"
      default:
        return undefined
    }
  }
  return undefined
}

const isNotFound = (error: PlatformError.PlatformError) => errnoOf(error) === "ENOENT"
const isExists = (error: PlatformError.PlatformError) => errnoOf(error) === "EEXIST"

/** Builds a file store over the `FileSystem` in context. Sweeps temp files and locks left by dead processes. */
export const make = (options: Options): Effect.Effect<Service, TaskStoreError, FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const layerScope = yield* Effect.scope
    const dir = join(options.directory, "tasks")
    const me = Holder.self()
    const lockTimeoutMs = Duration.toMillis(Duration.decode(options.lockTimeout ?? "30 seconds"))
    const cacheLimit = options.cacheBytes ?? 64 * 1024 * 1024
    let tempCounter = 0

    const io =
      (operation: string, path: string, id?: string) =>
      (error: PlatformError.PlatformError): TaskStoreError => {
        const errno = errnoOf(error)
        return new TaskStoreError({
          reason: "Io",
          operation,
          path,
          detail: error.message,
          cause: error,
          ...(errno === undefined ? {} : { errno }),
          ...(id === undefined ? {} : { id })
        })
      }

    // A directory entry is durable only once its parent directory is fsynced: without that, a power cut could take
    // the new store directory, and every record acknowledged in it, away.
    const missing: Array<string> = []
    for (let path = dir; !(yield* fs.exists(path).pipe(Effect.mapError(io("open", path)))); path = dirname(path)) {
      missing.push(path)
    }
    yield* fs.makeDirectory(dir, { recursive: true }).pipe(Effect.mapError(io("open", dir)))
    for (const path of missing) {
      yield* Effect.scoped(Effect.flatMap(fs.open(dirname(path)), (parent) => parent.sync)).pipe(
        Effect.mapError(io("open", dirname(path)))
      )
    }
    const dirHandle = yield* fs.open(dir).pipe(Effect.mapError(io("open", dir)))
    const syncDir = (operation: string, id: string) => dirHandle.sync.pipe(Effect.mapError(io(operation, dir, id)))

    const recordPath = (id: string) => join(dir, id + recordSuffix)
    const logPath = (id: string) => join(dir, id + logSuffix)
    const lockPath = (id: string) => join(dir, id + lockSuffix)
    const wantPath = (id: string) => join(dir, id + wantSuffix)

    // ---- locks ---------------------------------------------------------------------------------------------------

    // One fiber per process and task goes for the file lock; the others queue here instead of spinning on the disk.
    const stripes = Array.from({ length: 64 }, () => Effect.unsafeMakeSemaphore(1))
    // Stryker disable all: which stripe an id gets only spreads the queueing; any function of the id is correct.
    const stripe = (id: string) => {
      let h = 0
      for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) | 0
      return stripes[Math.abs(h) % stripes.length]!
    }
    // Stryker restore all

    interface LockOwner {
      readonly holder: Holder.Holder
      readonly nonce: string
      readonly store: string
    }
    // Tells this store instance's locks from those of another instance in the same process.
    const instance = randomBytes(6).toString("base64url")
    let lockCounter = 0
    // Lock and hint targets stay under 60 bytes: ext4 keeps such a symbolic link inside its inode ("fast symlink"),
    // so taking and dropping a lock allocates and frees no disk block. The host is implied: this store is one host's.
    const lockContent = (nonce: string) => `L:${me.pid}:${me.processStart}:${instance}:${nonce}`
    // A lock or hint with any part missing (or extra) is nobody's.
    const parseLock = (text: string): LockOwner | undefined => {
      const parts = text.split(":")
      if (parts.length !== 5 || parts[0] !== "L") return undefined
      const [, pid, processStart, store, nonce] = parts as [string, string, string, string, string]
      return { holder: { host: me.host, pid: Number(pid), processStart }, store, nonce }
    }
    const wantContent = () => `W:${instance}:${Date.now()}`
    const parseWant = (text: string): { readonly store: string; readonly time: number } | undefined => {
      const parts = text.split(":")
      if (parts.length !== 3 || parts[0] !== "W") return undefined
      const [, store, time] = parts as [string, string, string]
      return { store, time: Number(time) }
    }

    // Lock waits are in real time whatever clock the caller runs under: other processes do not share a TestClock.
    const pause = (ms: number) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))

    /**
     * Removes a lock whose holder is gone. It is renamed aside first (atomic), then checked: if what was moved is not
     * the stale lock that was judged (another process replaced it meanwhile), it is put back where it was.
     */
    const breakLock = (path: string, judged: string) =>
      Effect.gen(function* () {
        const aside = join(dir, `${breakPrefix}${me.pid}-${me.processStart}-${randomBytes(6).toString("hex")}`)
        const putBackUnlessJudged = Effect.gen(function* () {
          const text = yield* fs.readLink(aside).pipe(Effect.catchAll(() => Effect.succeed("")))
          if (text !== judged) yield* fs.link(aside, path).pipe(Effect.catchAll(() => Effect.void))
          yield* fs.remove(aside).pipe(Effect.catchAll(() => Effect.void))
        })
        // A lock gone before it could be moved was released meanwhile: nothing to break.
        yield* fs.rename(path, aside).pipe(
          Effect.flatMap(() => putBackUnlessJudged),
          Effect.catchIf(isNotFound, () => Effect.void)
        )
      })

    /**
     * Takes the task's lock: a symbolic link whose target names the holder, created in one atomic step (so a lock is
     * never seen half-written). A lock whose holder process is gone is broken; a live one is waited for.
     *
     * Fairness: a waiter leaves a `<id>.want` hint; a process about to take the lock again first gives a fresh hint
     * of another store a moment, so a task checkpointing back to back cannot starve a `pause` from elsewhere.
     */
    const acquireLock = (id: string): Effect.Effect<string, TaskStoreError> => {
      const path = lockPath(id)
      const want = wantPath(id)
      const started = Date.now()
      let announced = false
      // The hint is a small regular file, so looking for it is one `access` call and, usually, no error.
      const yieldToWaiter = fs.exists(want).pipe(
        Effect.flatMap((present) =>
          present
            ? Effect.flatMap(fs.readFileString(want), (text) => {
                const hint = parseWant(text)
                // Stryker disable next-line ConditionalExpression,EqualityOperator: which hints earn the 3 ms pause is timing only.
                const fresh = hint === undefined || (hint.store !== instance && Date.now() - hint.time < 2000)
                return fresh ? pause(3) : Effect.void
              })
            : Effect.void
        ),
        Effect.catchAll(() => Effect.void)
      )
      // Stryker disable next-line UpdateOperator: counting down gives unique nonces too.
      const content = lockContent(String(++lockCounter))
      const attempt = (delay: number): Effect.Effect<void, TaskStoreError> =>
        fs.symlink(content, path).pipe(
          Effect.catchIf(isExists, () =>
            Effect.gen(function* () {
              // Stryker disable next-line ConditionalExpression: announcing again fails (`wx`) and is ignored.
              if (!announced) {
                announced = true
                yield* fs.writeFileString(want, wantContent(), { flag: "wx" }).pipe(Effect.catchAll(() => Effect.void))
              }
              const text = yield* fs.readLink(path).pipe(Effect.catchAll(() => Effect.succeed(undefined)))
              if (text === undefined) return yield* attempt(1) // released meanwhile
              const owner = parseLock(text)
              // This store instance holds no lock here except through the stripe semaphore, which this fiber has:
              // a lock of ours is a leftover of a failed release. A lock we cannot read is nobody's.
              const ours = owner !== undefined && owner.store === instance
              if (owner === undefined || ours || !Holder.mayBeAlive(owner.holder, me)) {
                yield* breakLock(path, text)
                // Stryker disable next-line EqualityOperator: the timeout's last millisecond is timing only.
              } else if (Date.now() - started > lockTimeoutMs) {
                return yield* new TaskStoreError({
                  reason: "Io",
                  operation: "lock",
                  id,
                  path,
                  detail: `the task is locked by ${Holder.describe(owner.holder)} for over ${Duration.format(
                    Duration.millis(lockTimeoutMs)
                  )}`
                })
              } else yield* pause(delay)
              // Stryker disable next-line MethodExpression,ArithmeticOperator: the back-off's shape is timing only.
              return yield* attempt(Math.min(delay * 2, 20))
            })
          ),
          Effect.catchIf(
            (e): e is PlatformError.PlatformError => e._tag !== "TaskStoreError",
            (e) => Effect.fail(io("lock", path, id)(e))
          )
        )
      const clearWant = Effect.suspend(() =>
        announced
          ? fs.readFileString(want).pipe(
              Effect.flatMap((text) => (parseWant(text)?.store === instance ? fs.remove(want) : Effect.void)),
              Effect.catchAll(() => Effect.void)
            )
          : Effect.void
      )
      return yieldToWaiter.pipe(Effect.zipRight(attempt(1)), Effect.zipRight(clearWant), Effect.as(content))
    }

    /**
     * Removes our lock. If that fails, the lock would hold up other processes for as long as this one lives: keep
     * trying in the background (only while the lock is still this one) and tell the user.
     */
    const releaseLock = (id: string, content: string) => {
      const path = lockPath(id)
      const stillOurs = fs.readLink(path).pipe(
        Effect.map((text) => text === content),
        Effect.catchAll(() => Effect.succeed(false))
      )
      const retry = Effect.gen(function* () {
        for (let delay = 10; delay < 60_000; delay *= 2) {
          yield* pause(delay)
          if (!(yield* stillOurs)) return
          const removed = yield* Effect.either(fs.remove(path))
          if (removed._tag === "Right") return
        }
      })
      return fs.remove(path).pipe(
        Effect.catchAll((e) =>
          Effect.zipRight(
            Effect.logWarning(`Could not remove the lock of task ${id}; retrying in the background`, e),
            Effect.forkIn(retry, layerScope)
          )
        ),
        Effect.asVoid
      )
    }

    const withLock = <A, E>(id: string, effect: Effect.Effect<A, E>): Effect.Effect<A, E | TaskStoreError> =>
      stripe(id).withPermits(1)(
        Effect.acquireUseRelease(
          acquireLock(id),
          () => effect,
          (content) => releaseLock(id, content)
        )
      )

    // ---- records -------------------------------------------------------------------------------------------------

    const cache = new Map<string, { nonce: string; record: TaskRecord.TaskRecord; bytes: number }>()
    let cached = 0
    const remember = (id: string, nonce: string, record: TaskRecord.TaskRecord, bytes: number) => {
      forget(id)
      if (bytes > cacheLimit) return
      cache.set(id, { nonce, record, bytes })
      cached += bytes
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
        isNotFound(e) ? Effect.fail(new TaskNotFound({ id })) : Effect.fail(io(operation, recordPath(id), id)(e))

    /**
     * Reads a whole record and checks its checksum. With `cached`, a record this process wrote or read is taken
     * from memory when the file's write nonce shows it unchanged (the hot path of `update`).
     */
    const readRecord = (
      id: string,
      cached: boolean
    ): Effect.Effect<TaskRecord.TaskRecord, TaskNotFound | TaskStoreError> =>
      Effect.gen(function* () {
        const path = recordPath(id)
        const hit = cached ? cache.get(id) : undefined
        if (hit !== undefined) {
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
        const path = recordPath(id)
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
        const target = recordPath(id)
        // Stryker disable next-line UpdateOperator: counting down gives unique names too.
        const temp = join(dir, `${tempPrefix}${me.pid}-${me.processStart}-${++tempCounter}`)
        const encoded = RecordFile.encode(record)
        yield* Effect.scoped(
          Effect.gen(function* () {
            const file = yield* fs.open(temp, { flag: "wx", mode: 0o644 })
            // Small records go down in one write; large ones chunk by chunk, without a copy of their data.
            // Stryker disable next-line all: either way the same bytes are written; the threshold is a memory trade-off.
            const chunks = encoded.size <= 4 * 1024 * 1024 ? [Buffer.concat(encoded.chunks)] : encoded.chunks
            for (const chunk of chunks) yield* writeFully(file, chunk)
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

    // ---- logs ----------------------------------------------------------------------------------------------------

    const parseLog = (text: string): Array<TaskRecord.LogLine> => {
      const lines: Array<TaskRecord.LogLine> = []
      for (const line of text.split("\n")) {
        // An empty line (after the last newline) or a line torn by a crash mid-append does not parse: skipped.
        try {
          const parsed = JSON.parse(line) as TaskRecord.LogLine
          if (typeof parsed.seq === "number" && typeof parsed.message === "string") lines.push(parsed)
        } catch {
          // skipped
        }
      }
      return lines
    }

    const readLogText = (id: string) =>
      fs.readFileString(logPath(id)).pipe(
        // Stryker disable next-line StringLiteral: no log is no lines; any text that parses to none is the same.
        Effect.catchIf(isNotFound, () => Effect.succeed("")),
        Effect.mapError(io("readLogs", logPath(id), id))
      )

    // ---- sweeping ------------------------------------------------------------------------------------------------

    const sweep = Effect.gen(function* () {
      const names = yield* fs.readDirectory(dir)
      for (const name of names) {
        const path = join(dir, name)
        if (name.startsWith(tempPrefix) || name.startsWith(breakPrefix)) {
          const [pid, start] = name.slice(name.indexOf("-") + 1).split("-")
          const holder = { host: me.host, pid: Number(pid), processStart: start ?? "" }
          if (Holder.mayBeAlive(holder, me)) continue
          yield* fs.remove(path).pipe(Effect.catchAll(() => Effect.void))
        } else if (name.endsWith(wantSuffix)) {
          const text = yield* fs.readFileString(path).pipe(Effect.catchAll(() => Effect.succeed("")))
          const hint = parseWant(text)
          // Stryker disable next-line EqualityOperator: the hint's last millisecond is timing only.
          if (hint === undefined || Date.now() - hint.time > 2000) {
            yield* fs.remove(path).pipe(Effect.catchAll(() => Effect.void))
          }
        } else if (name.endsWith(lockSuffix)) {
          const text = yield* fs.readLink(path).pipe(Effect.catchAll(() => Effect.succeed(undefined)))
          const owner = text === undefined ? undefined : parseLock(text)
          if (text !== undefined && (owner === undefined || !Holder.mayBeAlive(owner.holder, me))) {
            yield* breakLock(path, text)
          }
        }
      }
    }).pipe(Effect.mapError(io("open", dir)))
    yield* sweep

    // ---- the service ---------------------------------------------------------------------------------------------

    const exists = (id: string) => fs.exists(recordPath(id)).pipe(Effect.mapError(io("create", recordPath(id), id)))

    const service: Service = {
      create: (record) =>
        Effect.flatMap(TaskId.validate(record.id), (id) =>
          withLock(
            id,
            Effect.gen(function* () {
              if (yield* exists(id)) return yield* new TaskAlreadyExists({ id })
              // An orphan log of a deleted task with the same id must not show up in the new one.
              yield* fs.remove(logPath(id)).pipe(
                Effect.catchIf(isNotFound, () => Effect.void),
                Effect.mapError(io("create", logPath(id), id))
              )
              const stored = { ...record, revision: 1 } as TaskRecord.TaskRecord
              yield* writeRecord(id, stored, "create")
              return TaskRecord.info(stored)
            })
          )
        ),
      get: (id) => Effect.flatMap(TaskId.validate(id), (id) => readRecord(id, false)),
      getInfo: (id) => Effect.flatMap(TaskId.validate(id), readInfo),
      update: (id, expected, patch) =>
        Effect.flatMap(TaskId.validate(id), (id) =>
          withLock(
            id,
            Effect.gen(function* () {
              const current = yield* readRecord(id, true)
              if (current.revision !== expected) {
                return yield* new RevisionConflict({ id, expected, found: current.revision })
              }
              const next = TaskRecord.applyPatch(current, patch)
              yield* writeRecord(id, next, "update")
              return TaskRecord.info(next)
            })
          )
        ),
      list: (filter = {}) =>
        Effect.gen(function* () {
          const names = yield* fs.readDirectory(dir).pipe(Effect.mapError(io("list", dir)))
          const ids = names
            .filter((n) => n.endsWith(recordSuffix) && !n.startsWith("."))
            .map((n) => n.slice(0, -recordSuffix.length))
            .filter((id) => filter.after === undefined || id > filter.after)
            .sort()
          const limit = Math.max(1, filter.limit ?? 50)
          const statuses = TaskRecord.statusSet(filter)
          const items: Array<TaskRecord.TaskInfo> = []
          for (const id of ids) {
            const info = yield* readInfo(id).pipe(
              Effect.catchAll((e) =>
                e._tag === "TaskNotFound"
                  ? Effect.succeed(undefined) // deleted since the directory was read
                  : Effect.as(Effect.logWarning(`Skipping task ${id} in list: ${e.message}`), undefined)
              )
            )
            if (info === undefined || !TaskRecord.matches(info, filter, statuses)) continue
            items.push(info)
            // One more than a page tells whether there is a next page.
            // Stryker disable next-line ConditionalExpression: reading on is only slower; the page is cut the same.
            if (items.length > limit) break
          }
          return TaskRecord.cutPage(items, limit)
        }),
      delete: (id, expected) =>
        Effect.flatMap(TaskId.validate(id), (id) =>
          withLock(
            id,
            Effect.gen(function* () {
              // Stryker disable next-line BooleanLiteral: not using the cache is only slower.
              const current = yield* readRecord(id, true).pipe(
                // A corrupt record can still be deleted (when no revision is asked for): that is how it is cleared.
                Effect.catchIf(
                  (e) => e._tag === "TaskStoreError" && e.reason === "Corrupt" && expected === undefined,
                  () => Effect.succeed(undefined)
                )
              )
              if (expected !== undefined && current !== undefined && current.revision !== expected) {
                return yield* new RevisionConflict({ id, expected, found: current.revision })
              }
              yield* fs.remove(recordPath(id)).pipe(Effect.mapError(io("delete", recordPath(id), id)))
              forget(id)
              yield* fs.remove(logPath(id)).pipe(
                Effect.catchIf(isNotFound, () => Effect.void),
                Effect.mapError(io("delete", logPath(id), id))
              )
              yield* syncDir("delete", id)
            })
          )
        ),
      appendLogs: (id, lines, logOptions) =>
        Effect.flatMap(TaskId.validate(id), (id) =>
          withLock(
            id,
            Effect.gen(function* () {
              // Stryker disable next-line ConditionalExpression: appending no lines writes nothing; this only saves reading.
              if (lines.length === 0) return
              const keep = logOptions?.keep ?? defaultKeepLogs
              const text = yield* readLogText(id)
              const existing = parseLog(text)
              let seq = existing[existing.length - 1]?.seq ?? 0
              const added = lines.map((l) => ({ ...l, seq: ++seq }))
              const path = logPath(id)
              // Stryker disable next-line ConditionalExpression,EqualityOperator: rewriting instead of appending gives the same lines.
              if (existing.length + added.length > keep) {
                // Over the bound: keep the newest `keep` lines, replacing the file atomically.
                const kept = [...existing, ...added].slice(-keep)
                // Stryker disable next-line UpdateOperator: counting down gives unique names too.
                const temp = join(dir, `${tempPrefix}${me.pid}-${me.processStart}-${++tempCounter}`)
                yield* fs
                  .writeFileString(temp, kept.map((l) => JSON.stringify(l)).join("\n") + "\n", { flag: "wx" })
                  .pipe(
                    Effect.zipRight(fs.rename(temp, path)),
                    Effect.tapError(() => fs.remove(temp).pipe(Effect.catchAll(() => Effect.void))),
                    Effect.mapError(io("appendLogs", path, id))
                  )
              } else {
                // A line torn by a crash has no newline: start on a fresh line.
                // Stryker disable next-line all: an extra newline makes an empty line, which reads as none.
                const prefix = text.length > 0 && !text.endsWith("\n") ? "\n" : ""
                const body = prefix + added.map((l) => JSON.stringify(l)).join("\n") + "\n"
                yield* fs.writeFileString(path, body, { flag: "a" }).pipe(Effect.mapError(io("appendLogs", path, id)))
              }
            })
          )
        ),
      readLogs: (id, logOptions) =>
        Effect.flatMap(TaskId.validate(id), (id) =>
          Effect.gen(function* () {
            const all = parseLog(yield* readLogText(id))
            const after = logOptions?.after
            const lines = after === undefined ? all : all.filter((l) => l.seq > after)
            return logOptions?.limit === undefined ? lines : lines.slice(0, logOptions.limit)
          })
        )
    }

    return service
  })

/** The file store over a `FileSystem` of your choosing (tests wrap it to inject faults). */
export const layerFileSystem = (options: Options): Layer.Layer<TaskStore, TaskStoreError, FileSystem.FileSystem> =>
  Layer.scoped(TaskStore, make(options))

/** The file store on the local disk (its hot path in direct system calls: see `FileSystemSync.ts`). */
export const layer = (options: Options): Layer.Layer<TaskStore, TaskStoreError> =>
  layerFileSystem(options).pipe(Layer.provide(FileSystemSync.layer))

/** The file store with its directory from `Config` (e.g. `Config.string("VLTASK_DIR")`). */
export const layerConfig = (
  directory: Config.Config<string>
): Layer.Layer<TaskStore, TaskStoreError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(directory, (directory) => layer({ directory })))

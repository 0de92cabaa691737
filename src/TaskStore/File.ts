/**
 * The atomic file store: one file per task in a directory, replaced atomically and durably on every write. The
 * embedded default: no database, crash-proof on a local file system.
 *
 * Records live in `<directory>/tasks/`, one `<id>.task` file each, with `<id>.log` beside it; the files and their
 * parts are described in `internal/file/layout.ts`. This module opens the directory and puts the parts together:
 * locks (`internal/file/locks.ts`), record files and their cache (`internal/file/records.ts`), log files
 * (`internal/file/logFile.ts`), and the sweep of what dead processes left (`internal/file/sweep.ts`).
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import { dirname, join } from "node:path"
import * as Holder from "../Holder.js"
import * as AtOnce from "../internal/atOnce.js"
import * as Layout from "../internal/file/layout.js"
import * as LogFile from "../internal/file/logFile.js"
import * as Locks from "../internal/file/locks.js"
import * as Records from "../internal/file/records.js"
import * as ChangeFeed from "../internal/changeFeed.js"
import { announce, changes } from "../internal/file/changes.js"
import { sweep } from "../internal/file/sweep.js"
import { RevisionConflict, TaskAlreadyExists, TaskNotFound, TaskStoreError } from "../TaskError.js"
import * as TaskRecord from "../TaskRecord.js"
import * as TaskStore from "../TaskStore.js"
import * as FileSystemSync from "../internal/file/fileSystemSync.js"

/**
 * Options of the file store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The store's directory; created if missing. */
  readonly directory: string
  /** How long to wait for another live process's lock on a task before failing (default 30 s). */
  readonly lockTimeout?: Duration.DurationInput | undefined
  /**
   * Bytes of recently written records kept in memory to skip re-reading them (default 64 MiB). A state of 1 MiB or
   * more is not kept: a write that replaces it (a checkpoint) does not need it, one that keeps it reads the file.
   */
  readonly cacheBytes?: number | undefined
}

/**
 * Builds a file store over the `FileSystem` in context. Creates the directory (durably) if missing, and sweeps temp
 * files and locks left by dead processes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<TaskStore.Service, TaskStoreError, FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const layout = Layout.make(fs, join(options.directory, "tasks"), Holder.self())
    const { dir, io } = layout

    // A directory entry is durable only once its parent directory is fsynced: without that, a power cut could take
    // the new store directory, and every record acknowledged in it, away.
    const missing: Array<string> = []
    for (let path = dir; !(yield* fs.exists(path).pipe(Effect.mapError(io("open", path)))); path = dirname(path)) {
      missing.push(path)
    }
    yield* fs.makeDirectory(dir, { recursive: true }).pipe(Effect.mapError(io("open", dir)))
    // Not made durable: a record written through it is durable by its own name in `dir`, and a lost one is made again.
    yield* fs.makeDirectory(layout.tempDir, { recursive: true }).pipe(Effect.mapError(io("open", layout.tempDir)))
    // Likewise: an announcement is never more than a hint.
    yield* fs.makeDirectory(layout.signalDir, { recursive: true }).pipe(Effect.mapError(io("open", layout.signalDir)))
    for (const path of missing) {
      yield* Effect.scoped(Effect.flatMap(fs.open(dirname(path)), (parent) => parent.sync)).pipe(
        Effect.mapError(io("open", dirname(path)))
      )
    }
    const dirHandle = yield* fs.open(dir).pipe(Effect.mapError(io("open", dir)))
    const syncDir = (operation: string, id: string) => dirHandle.sync.pipe(Effect.mapError(io(operation, dir, id)))

    // On the store's own `FileSystemSync`, the hot path (`update`, `create`) runs as direct system calls.
    const sys = FileSystemSync.syscallsOf(fs)
    const runtime = yield* Effect.runtime<never>()
    const locks = Locks.make(layout, {
      lockTimeoutMs: Duration.toMillis(Duration.decode(options.lockTimeout ?? "30 seconds")),
      scope: yield* Effect.scope,
      background: (effect) => {
        Runtime.runFork(runtime)(effect)
      },
      syscalls: sys
    })
    // The file every lock of this store links to, made now and removed when the store closes.
    yield* Effect.acquireRelease(locks.open, () => locks.close)
    const records = Records.make(layout, {
      cacheLimit: options.cacheBytes ?? 64 * 1024 * 1024,
      syncDir,
      syscalls: sys === undefined ? undefined : { sys, dirFd: dirHandle.fd }
    })
    const logFiles = LogFile.make(layout)
    yield* sweep(layout, locks)

    /**
     * `effect` through the direct path when it can be had (`direct` computes the outcome under the lock, in system
     * calls), through `slow` (the same steps as effects, waiting for the lock as it must) when not.
     */
    const hot = <A, E>(
      id: string,
      direct: (d: Records.Direct, kept: boolean) => Effect.Effect<A, E>,
      slow: Effect.Effect<A, E | TaskStoreError>
    ): Effect.Effect<A, E | TaskStoreError> => {
      const d = records.direct
      if (d === undefined || locks.tryWithLockSync === undefined) return slow
      return Effect.flatMap(
        locks.tryWithLockSync(id, (kept) => {
          try {
            return direct(d, kept)
          } catch (e) {
            // The direct calls throw what the effects fail with.
            if (e instanceof TaskStoreError || e instanceof TaskNotFound) return Effect.fail(e as E | TaskStoreError)
            throw e
          }
        }),
        (outcome) => outcome ?? slow
      )
    }

    /** The conflict of a compare-and-swap from `expected`, if the record is not at that revision. */
    const conflict = (current: TaskRecord.TaskRecord, id: string, expected: number) =>
      current.revision === expected ? undefined : new RevisionConflict({ id, expected, found: current.revision })

    /**
     * After a write in direct system calls: a record this process runs keeps its lock until the event loop turns
     * (`Locks.keep`), for the task's next write (a checkpoint, its end) to make without taking the lock or reading
     * the record's head again. Nothing else is written that often.
     */
    const keepIfRunningHere = (info: TaskRecord.TaskInfo) => {
      const holder = info.lease?.holder
      if (
        info.status === "running" &&
        holder !== undefined &&
        holder.pid === layout.me.pid &&
        holder.processStart === layout.me.processStart &&
        holder.host === layout.me.host
      ) {
        locks.keep()
      }
    }

    /**
     * An update in direct system calls, under the task's lock (`kept` from this store's last write of it): the new
     * metadata, or the conflict.
     */
    const updateDirect = (
      d: Records.Direct,
      id: string,
      expected: number,
      patch: TaskRecord.TaskPatch,
      kept: boolean
    ) => {
      const current = d.readRecord(id, kept, patch)
      const missed = conflict(current, id, expected)
      if (missed !== undefined) return missed
      const next = TaskRecord.applyPatch(current, patch)
      d.writeRecord(id, next, "update")
      const info = TaskRecord.info(next)
      keepIfRunningHere(info)
      return info
    }

    /**
     * An update made at once (`AtOnce.Write`), in direct system calls under a lock had at once, from revision
     * `expected`, or its failure as `update` reports it; anything else (the lock taken, a conflict) is left to
     * `update`.
     */
    const updateAtOnce: AtOnce.Write = (id, expected, patch) => {
      const d = records.direct
      if (d === undefined || locks.withLockAtOnce === undefined || ChangeFeed.announced(patch)) return undefined
      return locks.withLockAtOnce(id, (kept) => {
        const updated = updateDirect(d, id, expected, patch, kept)
        return updated instanceof RevisionConflict ? undefined : updated
      })
    }

    /** `write`, announced once stored if its change is news to other processes (`ChangeFeed.announced`). */
    const announcing = <A, E>(id: string, news: boolean, write: Effect.Effect<A, E>): Effect.Effect<A, E> =>
      news ? Effect.tap(write, () => Effect.sync(() => announce(layout, id))) : write

    const service = TaskStore.make({
      create: (record) =>
        announcing(
          record.id,
          record.status === "pending",
          hot(
            record.id,
            (d) => {
              if (d.exists(layout.recordPath(record.id), "create", record.id)) {
                return Effect.fail(new TaskAlreadyExists({ id: record.id }))
              }
              d.removeIfAny(layout.logPath(record.id), "create", record.id)
              d.writeRecord(record.id, record, "create")
              keepIfRunningHere(record)
              return Effect.void
            },
            locks.withLock(
              record.id,
              Effect.gen(function* () {
                const path = layout.recordPath(record.id)
                if (yield* fs.exists(path).pipe(Effect.mapError(io("create", path, record.id)))) {
                  return yield* new TaskAlreadyExists({ id: record.id })
                }
                // An orphan log of a deleted task with the same id must not show up in the new one.
                yield* logFiles.remove(record.id, "create")
                yield* records.writeRecord(record.id, record, "create")
              })
            )
          )
        ),
      get: (id) => records.readRecord(id, false),
      getInfo: records.readInfo,
      update: (id, expected, patch) =>
        announcing(
          id,
          ChangeFeed.announced(patch),
          hot(
            id,
            (d, kept) => {
              const updated = updateDirect(d, id, expected, patch, kept)
              return updated instanceof RevisionConflict ? Effect.fail(updated) : Effect.succeed(updated)
            },
            locks.withLock(
              id,
              Effect.gen(function* () {
                const current = yield* records.readRecord(id, true, patch)
                const missed = conflict(current, id, expected)
                if (missed !== undefined) return yield* missed
                const next = TaskRecord.applyPatch(current, patch)
                yield* records.writeRecord(id, next, "update")
                return TaskRecord.info(next)
              })
            )
          )
        ),
      list: (query) =>
        Effect.gen(function* () {
          const names = yield* fs.readDirectory(dir).pipe(Effect.mapError(io("list", dir)))
          const ids = names
            .filter((n) => n.endsWith(Layout.recordSuffix) && !n.startsWith("."))
            .map((n) => n.slice(0, -Layout.recordSuffix.length))
            .filter((id) => query.after === undefined || id > query.after)
            .sort()
          const items: Array<TaskRecord.TaskInfo> = []
          for (const id of ids) {
            const info = yield* records.readInfo(id).pipe(
              Effect.catchAll((e) =>
                e._tag === "TaskNotFound"
                  ? Effect.succeed(undefined) // deleted since the directory was read
                  : Effect.as(Effect.logWarning(`Skipping task ${id} in list: ${e.message}`), undefined)
              )
            )
            if (info === undefined || !TaskStore.matches(info, query)) continue
            items.push(info)
            // Stryker disable next-line ConditionalExpression: reading on is only slower; the page is cut the same.
            if (items.length >= query.take) break
          }
          return items
        }),
      delete: (id, expected) =>
        locks.withLock(
          id,
          Effect.gen(function* () {
            // Stryker disable next-line BooleanLiteral: not using the cache is only slower.
            const current = yield* records.readRecord(id, true).pipe(
              // A corrupt record can still be deleted (when no revision is asked for): that is how it is cleared.
              Effect.catchIf(
                (e) => e._tag === "TaskStoreError" && e.reason === "Corrupt" && expected === undefined,
                () => Effect.succeed(undefined)
              )
            )
            if (expected !== undefined && current !== undefined && current.revision !== expected) {
              return yield* new RevisionConflict({ id, expected, found: current.revision })
            }
            yield* fs.remove(layout.recordPath(id)).pipe(Effect.mapError(io("delete", layout.recordPath(id), id)))
            records.forget(id)
            yield* logFiles.remove(id, "delete")
            yield* syncDir("delete", id)
          })
        ),
      appendLogs: (id, lines, keep) => locks.withLock(id, logFiles.append(id, lines, keep)),
      readLogs: (id, after, limit) =>
        Effect.map(logFiles.read(id), (all) => {
          const lines = all.filter((l) => l.seq > after)
          return limit === undefined ? lines : lines.slice(0, limit)
        }),
      changes: changes(layout)
    })
    return AtOnce.registerWrite(service, updateAtOnce)
  })

/**
 * The file store over a `FileSystem` of your choosing (tests wrap it to inject faults).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFileSystem = (
  options: Options
): Layer.Layer<TaskStore.TaskStore, TaskStoreError, FileSystem.FileSystem> =>
  Layer.scoped(TaskStore.TaskStore, make(options))

/**
 * The file store on the local disk (its hot path in direct system calls: see `internal/file/fileSystemSync.ts`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<TaskStore.TaskStore, TaskStoreError> =>
  layerFileSystem(options).pipe(Layer.provide(FileSystemSync.layer))

/**
 * The file store with its directory from `Config` (e.g. `Config.string("VLTASK_DIR")`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  directory: Config.Config<string>
): Layer.Layer<TaskStore.TaskStore, TaskStoreError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(directory, (directory) => layer({ directory })))

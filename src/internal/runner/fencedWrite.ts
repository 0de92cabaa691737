/**
 * Fenced writes: every write of a running task is a compare-and-swap from the last metadata this runner saw. On a
 * conflict (another process asked for a pause, or recorded a poll) it re-reads and retries, a bounded number of times,
 * only while the lease token is still this runner's: another runner's takeover rejects every later write of this one.
 */
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Holder from "../../Holder.js"
import { LeaseLost, TaskStoreError } from "../../TaskError.js"
import type * as TaskRecord from "../../TaskRecord.js"
import type { Engine } from "./engine.js"
import type { Running } from "./running.js"

/** How many conflicts in a row one write retries before it gives up (each retry re-reads the record first). */
export const maxConflictRetries = 32

/** A patch built from the current metadata and the time of the write. */
export type Patch = (info: TaskRecord.TaskInfo, now: number) => TaskRecord.TaskPatch

/** The lease is gone: to whom, if the record says. */
export const lost = (r: Running, fresh: TaskRecord.TaskInfo | undefined) => {
  const holder = fresh?.lease === undefined ? undefined : Holder.describe(fresh.lease.holder)
  return new LeaseLost({ id: r.id, ...(holder === undefined ? {} : { holder }) })
}

/** The record changed under the write, and the lease is still ours: try again from the fresh metadata. */
class Conflict extends Data.TaggedError("Conflict") {}

/** Every write renews the lease and flushes progress (and a poll made here): the part of a patch all writes share. */
export const renewal = (engine: Engine, r: Running, now: number): TaskRecord.TaskPatch => {
  r.tracker.sample(now)
  return {
    lease: { token: r.token, holder: engine.me, expiresAt: now + r.leaseMs },
    progress: r.tracker.snapshot(),
    updatedAt: now,
    // Stryker disable next-line ConditionalExpression,EqualityOperator: writing an unchanged poll time again changes nothing.
    ...(r.polledAt > (r.info.polledAt ?? 0) ? { polledAt: r.polledAt } : {})
  }
}

/** A stored write's metadata: a request (pause, cancel) found in it stops the task first. */
export const noticed = (r: Running, info: TaskRecord.TaskInfo): Effect.Effect<TaskRecord.TaskInfo> =>
  info.interrupt === undefined ? Effect.succeed(info) : Effect.as(r.notice(), info)

/**
 * Writes that carry more bytes than this go the effect way. Made at once, a large state raised the peak memory of
 * `npx tsx bench/largeState.ts` on SQLite from 13.6–14.8 to 18.5–21.8 times the state's size (three runs each), and
 * what a write at once saves, a few microseconds, does not count beside a megabyte's encoding and I/O.
 */
const atOnceMaxBytes = 1024 * 1024

/** The bytes a patch writes besides metadata. */
const dataBytes = (patch: TaskRecord.TaskPatch) =>
  (patch.state?.byteLength ?? 0) + (patch.result?.byteLength ?? 0) + (patch.error?.byteLength ?? 0)

/** The write's outcome as the runner keeps it: the metadata the store now holds, and when the lease was renewed. */
const settled = (
  r: Running,
  info: TaskRecord.TaskInfo | TaskStoreError | undefined,
  now: number
): TaskRecord.TaskInfo | TaskStoreError | undefined => {
  if (info !== undefined && !(info instanceof TaskStoreError)) {
    r.info = info
    r.renewedAt = now
  }
  return info
}

/**
 * The changes of `patch` if a fenced write of them can skip the effect path now: the store has a quick write, no other
 * write of the task holds its lock, the lease is still this runner's, and they carry up to `atOnceMaxBytes`.
 */
const quickChanges = (r: Running, patch: Patch, now: number): TaskRecord.TaskPatch | undefined => {
  if (r.lock.isHeld || !r.holdsLease) return undefined
  const changes = patch(r.info, now)
  return dataBytes(changes) > atOnceMaxBytes ? undefined : changes
}

/**
 * The fenced write made at once, where the store can (`AtOnce`), of changes `quickChanges` lets through: the new
 * metadata; the store's failure, for the caller to go on from as from a failed write (`writeThroughOutages`); or
 * `undefined` when it was not made (the effect path then meets and reports whatever stopped it). The caller acts on a
 * request the metadata holds (`noticed`).
 */
export const writeAtOnce = (
  engine: Engine,
  r: Running,
  patch: Patch,
  now: number
): TaskRecord.TaskInfo | TaskStoreError | undefined => {
  if (engine.writeAtOnce === undefined) return undefined
  const changes = quickChanges(r, patch, now)
  return changes === undefined ? undefined : settled(r, engine.writeAtOnce(r.id, r.info.revision, changes), now)
}

/**
 * The fenced write issued at once where the store answers later (`AtOnce.WriteAsync`, Postgres), awaited in one step
 * with the task's lock held until the answer: what `writeAtOnce` gives, once answered; `undefined`, and nothing
 * issued, where it cannot be. Interrupted meanwhile, the caller goes; the lock stays held, and the metadata is kept,
 * until the answer comes.
 */
export const writeAsync = (
  engine: Engine,
  r: Running,
  patch: Patch,
  now: number
): Effect.Effect<TaskRecord.TaskInfo | TaskStoreError | undefined> | undefined => {
  if (engine.writeAsync === undefined) return undefined
  const changes = quickChanges(r, patch, now)
  const answer = changes === undefined ? undefined : engine.writeAsync(r.id, r.info.revision, changes)
  if (answer === undefined) return undefined
  r.lock.tryHold()
  return Effect.async((resume) => {
    void answer.then((info) => {
      // The metadata first: a write waiting for the lock writes from it.
      const outcome = settled(r, info, now)
      r.lock.letGo()
      resume(Effect.succeed(outcome))
    })
  })
}

/** One compare-and-swap; a conflict re-reads, and is retried only if the lease is still ours. */
const attempt = (
  engine: Engine,
  r: Running,
  patch: Patch
): Effect.Effect<TaskRecord.TaskInfo, LeaseLost | TaskStoreError | Conflict> =>
  Effect.suspend(() => {
    if (!r.holdsLease) return Effect.fail(lost(r, undefined))
    return Effect.flatMap(Clock.currentTimeMillis, (now) =>
      engine.store.update(r.id, r.info.revision, patch(r.info, now)).pipe(
        Effect.flatMap((info) => {
          r.info = info
          r.renewedAt = now
          return noticed(r, info)
        }),
        Effect.catchTags({
          RevisionConflict: () =>
            engine.store.getInfo(r.id).pipe(
              Effect.catchTag("TaskNotFound", () => Effect.fail(lost(r, undefined))),
              Effect.flatMap((fresh): Effect.Effect<never, LeaseLost | Conflict> => {
                if (fresh.status !== "running" || fresh.lease?.token !== r.token) return Effect.fail(lost(r, fresh))
                r.info = fresh
                return Effect.fail(new Conflict())
              })
            ),
          TaskNotFound: () => Effect.fail(lost(r, undefined))
        }),
        // The runner only writes ids the store accepted when the task was created.
        Effect.catchTag("InvalidTaskId", (e) => Effect.die(e))
      )
    )
  })

/** A fenced write without taking the task's write lock (the caller holds it). */
export const writeUnlocked = (
  engine: Engine,
  r: Running,
  patch: Patch
): Effect.Effect<TaskRecord.TaskInfo, LeaseLost | TaskStoreError> => {
  // A plain loop rather than `Effect.retry`: this is every checkpoint's path, and a schedule's driver costs more than
  // the rest of it when nothing conflicts.
  const from = (retries: number): Effect.Effect<TaskRecord.TaskInfo, LeaseLost | TaskStoreError> =>
    Effect.catchTag(attempt(engine, r, patch), "Conflict", () =>
      retries < maxConflictRetries
        ? from(retries + 1)
        : Effect.fail(
            new TaskStoreError({
              reason: "Unavailable",
              operation: "update",
              id: r.id,
              detail: `the record changed under ${maxConflictRetries + 1} writes in a row; will retry at the next write`
            })
          )
    )
  return from(0)
}

/** A fenced write under the task's write lock. */
export const write = (
  engine: Engine,
  r: Running,
  patch: Patch
): Effect.Effect<TaskRecord.TaskInfo, LeaseLost | TaskStoreError> => r.lock.with(writeUnlocked(engine, r, patch))

/** The longest wait between two tries of a write the store could not take (a server restarting). */
const maxOutageBackoffMs = 1000

/**
 * A fenced write that rides out an unreachable store (a server restarting, a connection being replaced): tried again
 * with backoff (50 ms, doubling, at most a second apart) while the lease this runner last renewed holds. Once that
 * has run out, another runner may rightly have taken the task over: the write fails with `LeaseLost`, and the task
 * stops here with its last stored checkpoint intact. Checkpoints and the record of a task's end go through here,
 * made at once first where the store can (`writeAtOnce`).
 */
export const writeThroughOutages = (
  engine: Engine,
  r: Running,
  patch: Patch,
  /** How a write at once of `patch` already failed: go on from there rather than try at once again. */
  failedAtOnce?: TaskStoreError
): Effect.Effect<TaskRecord.TaskInfo, LeaseLost | TaskStoreError> => {
  const attemptFrom = (delayMs: number): Effect.Effect<TaskRecord.TaskInfo, LeaseLost | TaskStoreError> =>
    ridingOut(write(engine, r, patch), delayMs)
  const ridingOut = (
    tried: Effect.Effect<TaskRecord.TaskInfo, LeaseLost | TaskStoreError>,
    delayMs: number
  ): Effect.Effect<TaskRecord.TaskInfo, LeaseLost | TaskStoreError> =>
    tried.pipe(
      Effect.catchIf(
        (e): e is TaskStoreError => e._tag === "TaskStoreError" && e.reason === "Unavailable",
        (e) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) =>
            now + delayMs >= (r.info.lease?.expiresAt ?? 0)
              ? Effect.zipRight(
                  Effect.logWarning(`The store stayed unreachable until the lease of task ${r.id} ran out`, e),
                  Effect.fail(lost(r, undefined))
                )
              : Effect.zipRight(
                  Effect.sleep(Duration.millis(delayMs)),
                  attemptFrom(Math.min(delayMs * 2, maxOutageBackoffMs))
                )
          )
      )
    )
  if (failedAtOnce !== undefined) return ridingOut(Effect.fail(failedAtOnce), 50)
  const from = (info: TaskRecord.TaskInfo | TaskStoreError | undefined) =>
    info === undefined
      ? attemptFrom(50)
      : info instanceof TaskStoreError
        ? ridingOut(Effect.fail(info), 50)
        : noticed(r, info)
  // At once where the store can, issued at once where it answers later; the effect path, with its lock, retries and
  // outages, where neither can.
  return Effect.clockWith((clock) => {
    const now = clock.unsafeCurrentTimeMillis()
    const info = writeAtOnce(engine, r, patch, now)
    if (info !== undefined) return from(info)
    const answer = writeAsync(engine, r, patch, now)
    return answer === undefined ? attemptFrom(50) : Effect.flatMap(answer, from)
  })
}

/**
 * What a failed write means for the task: a lost lease stops it at once; so does a store that answered with a failure
 * of its own (a full disk, an I/O error, a damaged record: retrying would not help, and the task would compute on
 * with nothing durable), pausing it with the reason; an unreachable store (a server restarting, a busy database) stops
 * it only once the lease this runner last renewed has run out (another runner may rightly take it over then); before
 * that, retry.
 */
export const onWriteError = (r: Running) => (error: LeaseLost | TaskStoreError) =>
  error._tag === "TaskStoreError" && (error.reason === "Io" || error.reason === "Corrupt")
    ? Effect.suspend(() => {
        r.storeError ??= error
        return Effect.zipRight(
          Effect.logInfo(`Stopping task ${r.id}: the store failed`, error),
          r.requestStop({ kind: "pause", reason: `the store failed: ${error.detail}` })
        )
      })
    : onReadError(r)(error)

/**
 * What a failed read of the record means for the task: a lost lease stops it at once; a read that failed is retried
 * at the next beat, until the lease this runner last renewed has run out.
 */
export const onReadError = (r: Running) => (error: LeaseLost | TaskStoreError) =>
  error._tag === "LeaseLost"
    ? Effect.zipRight(Effect.logWarning(error.message), r.requestStop({ kind: "lost" }))
    : Effect.flatMap(Clock.currentTimeMillis, (now) =>
        r.info.lease !== undefined && now >= r.info.lease.expiresAt
          ? Effect.zipRight(
              Effect.logWarning(`Could not renew the lease of task ${r.id} before it expired; stopping it here`, error),
              r.requestStop({ kind: "lost" })
            )
          : Effect.logWarning(`Heartbeat of task ${r.id} failed; will retry`, error)
      )

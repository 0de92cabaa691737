/**
 * The heartbeat beside every running task: every flush interval it flushes progress and logs and renews the lease (or,
 * with nothing to write, re-reads the record), notices pause and cancel requests from other processes, a takeover,
 * and interest that ran out.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type { LeaseLost, TaskStoreError } from "../../TaskError.js"
import type { Engine } from "./engine.js"
import { lost, onReadError, onWriteError, renewal, writeUnlocked } from "./fencedWrite.js"
import { flushLogs } from "./logCapture.js"
import type { Running } from "./running.js"

/** Pauses the task when nobody polled it for its interest timeout; true when it did. */
const interestRanOut = (r: Running, now: number) =>
  Effect.suspend(() => {
    // Stryker disable next-line ConditionalExpression: without a timeout the comparison below is never true.
    if (r.interestMs === undefined) return Effect.succeed(false)
    const interest = Math.max(r.startedAt, r.polledAt, r.info.polledAt ?? 0)
    if (now - interest <= r.interestMs) return Effect.succeed(false)
    const idle = Duration.format(Duration.millis(now - interest))
    return Effect.as(r.requestStop({ kind: "pause", reason: `nobody polled it for ${idle}` }), true)
  })

/** Whether anything changed since the last write, or the lease is a third through. */
const due = (r: Running, now: number) =>
  r.tracker.version !== r.flushedVersion ||
  r.tracker.done !== r.flushedDone ||
  r.logs.length > 0 ||
  r.polledAt > (r.info.polledAt ?? 0) ||
  now - r.renewedAt >= r.leaseMs / 3

/**
 * Looks at the record without writing: a takeover or a deleted record is a lost lease; a pause or cancel request
 * another process left there is acted on. The caller decides what a failed read means.
 */
export const look = (engine: Engine, r: Running): Effect.Effect<void, LeaseLost | TaskStoreError> =>
  Effect.gen(function* () {
    const fresh = yield* engine.store.getInfo(r.id).pipe(Effect.catchTag("InvalidTaskId", Effect.die))
    // The run ended meanwhile: what was read may be its own end.
    if (r.ending) return
    if (fresh.status !== "running" || fresh.lease?.token !== r.token) return yield* Effect.fail(lost(r, fresh))
    if (fresh.revision > r.info.revision) r.info = fresh
    yield* r.notice()
  }).pipe(Effect.catchTag("TaskNotFound", () => Effect.fail(lost(r, undefined))))

/** One beat. */
const beat = (engine: Engine, r: Running) =>
  Effect.gen(function* () {
    if (r.family !== undefined) yield* r.family.refresh(r.id)
    const now = yield* Clock.currentTimeMillis
    r.tracker.sample(now)
    if (yield* interestRanOut(r, now)) return
    if (due(r, now)) {
      const version = r.tracker.version
      const done = r.tracker.done
      // A write in progress (a checkpoint) renews the lease and flushes progress itself: skip this beat rather than
      // queue behind the task, which may take the lock again before this fiber gets to run.
      const wrote = yield* r.lock.withPermitsIfAvailable(1)(writeUnlocked(engine, r, (_, t) => renewal(engine, r, t)))
      if (Option.isSome(wrote)) {
        r.flushedVersion = version
        r.flushedDone = done
      }
      // Logs follow a successful fenced write, so a runner that lost its lease stops adding to them.
      yield* flushLogs(engine, r)
      yield* r.notice()
    } else {
      // Nothing to write: still look for requests from other processes and for a takeover.
      yield* look(engine, r).pipe(Effect.catchAll(onReadError(r)))
    }
  }).pipe(Effect.catchAll(onWriteError(r)))

/** Beats every flush interval, the first one interval after the start, until interrupted. */
export const heartbeat = (engine: Engine, r: Running): Effect.Effect<void> =>
  Effect.asVoid(Effect.schedule(beat(engine, r), Schedule.spaced(Duration.millis(engine.flushMs))))

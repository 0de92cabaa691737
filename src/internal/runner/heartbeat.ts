/**
 * The heartbeat of every running task: every flush interval it flushes progress and logs and renews the lease (less
 * often where a write of the record takes long, see `beatCostFactor`; with nothing to write, it re-reads the record),
 * notices pause and cancel requests from other processes, a takeover, and interest that ran out. One loop per runner
 * keeps the time for all its tasks and gives each due task a beat in a fiber of its own; a run forks nothing for its
 * heartbeat (a short task never beats at all).
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
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

/**
 * A beat with news (progress, logs, a poll) but a lease far from its end writes only once this many times as long as
 * its last write took has passed since the task's last write: such writes then take at most ~2% of the task's time.
 * Most writes take a millisecond or less, and then it is every beat, as before. The file store and SQLite rewrite the
 * whole record at each write, state included: `npx tsx bench/metadataWrite.ts` measured a write of metadata alone at
 * 42–57 ms on the file store and 30 ms on SQLite with a 16 MiB state (Postgres, which leaves a large value where it
 * is, 3 ms), so with such a state progress is written every 2 s or so instead of every second.
 */
export const beatCostFactor = 50

/**
 * Whether a beat writes: the lease is a third through; or something changed since the last write (progress, logs, a
 * poll made here), and the last write is long enough ago for what a write costs (`beatCostFactor`).
 */
const due = (r: Running, now: number) =>
  now - r.renewedAt >= r.leaseMs / 3 ||
  ((r.tracker.version !== r.flushedVersion ||
    r.tracker.done !== r.flushedDone ||
    r.logs.length > 0 ||
    r.polledAt > (r.info.polledAt ?? 0)) &&
    now - r.renewedAt >= r.beatWriteMs * beatCostFactor)

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
      const wrote = yield* r.lock.ifFree(writeUnlocked(engine, r, (_, t) => renewal(engine, r, t)))
      if (Option.isSome(wrote)) {
        r.flushedVersion = version
        r.flushedDone = done
        r.beatWriteMs = (yield* Clock.currentTimeMillis) - now
      }
      // Logs follow a successful fenced write, so a runner that lost its lease stops adding to them.
      yield* flushLogs(engine, r)
      yield* r.notice()
    } else {
      // Nothing to write: still look for requests from other processes and for a takeover.
      yield* look(engine, r).pipe(Effect.catchAll(onReadError(r)))
    }
  }).pipe(Effect.catchAll(onWriteError(r)))

/**
 * Beats `r` in a fiber of its own, unless a beat of it is under way (a slow store: the next waits for it) or its run
 * is ending.
 */
const beatSoon = (engine: Engine, r: Running, now: number): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (r.beat !== undefined || r.ending) return Effect.void
    r.lastBeatAt = now
    const once = Effect.ensuring(
      beat(engine, r),
      Effect.sync(() => {
        r.beat = undefined
      })
    )
    return Effect.map(Effect.forkIn(Effect.interruptible(once), engine.scope), (fiber) => {
      // A fork starts on a later turn of the scheduler: the beat has not ended yet.
      r.beat = fiber
    })
  })

/**
 * Keeps the time for every task running here: each beats one flush interval after its start, then one interval after
 * each beat began. Sleeps until the next task is due (a new task is never due before those already running).
 */
export const heartbeats = (engine: Engine): Effect.Effect<never> =>
  Effect.forever(
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      let next = now + engine.flushMs
      const due: Array<Running> = []
      for (const r of engine.running.values()) {
        const at = r.lastBeatAt + engine.flushMs
        if (at <= now) due.push(r)
        else if (at < next) next = at
      }
      return Effect.zipRight(
        Effect.forEach(due, (r) => beatSoon(engine, r, now), { discard: true }),
        Effect.sleep(Duration.millis(next - now))
      )
    })
  )

/**
 * Ends `r`'s heartbeat once its fiber has exited, before its end is recorded: no beat starts any more, and one under
 * way is interrupted (it may hold the write lock the end needs).
 */
export const stopBeating = (r: Running): Effect.Effect<void> =>
  Effect.suspend(() => {
    r.ending = true
    return r.beat === undefined ? Effect.void : Fiber.interrupt(r.beat)
  })

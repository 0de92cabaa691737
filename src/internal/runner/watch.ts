/**
 * What a runner keeps up while tasks run here: their heartbeats (`heartbeat.ts`), and hearing of requests at once: it
 * follows the store's `changes` and looks at a changed record of a task it runs (a pause or cancel from another
 * process, a takeover) without waiting for the next heartbeat. Looks are coalesced per task: one at a time, and at
 * most one every `lookSpacing` (a task checkpointing a thousand times a second changes its own record as often).
 * Stores that cannot notice changes leave the heartbeat to find them, as before. Both start when a task starts
 * running here and stop once none has run for a few seconds, so an idle runner costs its store nothing (SQLite's
 * `data_version` checks stop too) and tasks run one after another share one subscription and one heartbeat loop.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as ChangeFeed from "../changeFeed.js"
import type { Engine } from "./engine.js"
import { onReadError } from "./fencedWrite.js"
import { heartbeats, look } from "./heartbeat.js"
import { CurrentRun } from "./logCapture.js"
import type { Running } from "./running.js"

/** The least time between two looks at one task's record, in milliseconds. */
const lookSpacingMs = 10

/** The fiber beating the tasks and following the store's changes, per engine, while any task runs there. */
const watchers = new WeakMap<Engine, Fiber.RuntimeFiber<void>>()

/**
 * Looks at `r`'s record soon: now if no look is under way and the last began at least `lookSpacingMs` ago, else once
 * that time has passed (one look for any number of changes meanwhile). A task that changes its record now and then (a
 * short task, a task between checkpoints) gets one look per change and no timer; one writing a thousand times a
 * second, at most one look every `lookSpacingMs`.
 */
const lookSoon = (engine: Engine, r: Running): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (r.stop !== undefined || r.ending) return Effect.void
    if (r.looking) {
      r.lookAgain = true
      return Effect.void
    }
    r.looking = true
    // A takeover stops the task here at once; a read that failed is the heartbeat's to judge.
    const glance = Effect.suspend(() =>
      r.stop !== undefined || r.ending
        ? Effect.void
        : look(engine, r).pipe(
            Effect.catchTag("LeaseLost", onReadError(r)),
            Effect.catchTag("TaskStoreError", () => Effect.void)
          )
    )
    const loop: Effect.Effect<void> = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const wait = r.lastLookAt + lookSpacingMs - now
      if (wait > 0) return Effect.zipRight(Effect.sleep(Duration.millis(wait)), loop)
      r.lastLookAt = now
      r.lookAgain = false
      return Effect.zipRight(
        glance,
        Effect.suspend(() => {
          if (r.lookAgain && r.stop === undefined && !r.ending) return loop
          // In the same step as the last check: a change from now on starts a new look (`lookSoon`, `lookingAlready`).
          r.looking = false
          return Effect.void
        })
      )
    })
    return Effect.asVoid(
      Effect.forkIn(
        Effect.interruptible(
          Effect.ensuring(
            loop,
            Effect.sync(() => {
              r.looking = false
            })
          )
        ),
        engine.scope
      )
    )
  })

/** What a change of `id` (or of an unknown record) means here: a look at each task it may concern. */
const onChange = (engine: Engine) => (id: string | undefined) =>
  Effect.suspend(() => {
    if (id !== undefined) {
      const r = engine.running.get(id)
      return r === undefined ? Effect.void : lookSoon(engine, r)
    }
    return Effect.forEach(engine.running.values(), (r) => lookSoon(engine, r), { discard: true })
  })

/**
 * `onChange` without a fiber's turn where it has nothing to start (`ChangeFeed.follow`'s `atOnce`): a record of a task
 * not running here, or not any more, or one whose look is on its way (it looks again). A task checkpointing back to
 * back changes its own record a thousand times a second, and all but one change in `lookSpacingMs` end here.
 */
const lookingAlready = (engine: Engine) => (id: string | undefined) => {
  if (id === undefined) return false
  const r = engine.running.get(id)
  if (r === undefined || r.stop !== undefined || r.ending) return true
  if (!r.looking) return false
  r.lookAgain = true
  return true
}

/** Starts the heartbeats and following the store's changes if nothing does yet (a task starts running here). */
export const watch = (engine: Engine): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (watchers.has(engine)) return Effect.void
    // A store without changes ends its stream at once; the heartbeats go on.
    const follow = Effect.zipRight(
      ChangeFeed.follow(engine.store.changes, onChange(engine), lookingAlready(engine)),
      heartbeats(engine),
      {
        concurrent: true
      }
    )
    // Started from a task's fiber (a child task's start), it must not log into that task's log, nor its beats.
    const own = Effect.zipRight(FiberRef.set(CurrentRun, undefined), follow)
    return Effect.map(Effect.forkIn(Effect.interruptible(own), engine.scope), (fiber) => {
      watchers.set(engine, fiber)
    })
  })

/**
 * How long the runner keeps following changes after its last task ended: tasks run one after another keep one
 * subscription (one LISTEN connection, one directory watch) and one heartbeat loop instead of starting one each.
 */
const idleLingerMs = 5000

/** Per engine: when its last task ended, and whether a check for idleness is already waiting. */
const lingering = new WeakMap<Engine, { lastEnd: number; pending: boolean }>()

/**
 * Stops the heartbeats and following the store's changes once no task has run here for `idleLingerMs`. One waiting check per engine,
 * however many tasks end meanwhile (a thousand short tasks a second must not leave a thousand sleeping fibers): when
 * it wakes too early it waits out the rest.
 */
export const unwatchIfIdle = (engine: Engine): Effect.Effect<void> =>
  Effect.clockWith((clock) => {
    const now = clock.unsafeCurrentTimeMillis()
    const fiber = watchers.get(engine)
    if (fiber === undefined || engine.running.size > 0) return Effect.void
    const linger = lingering.get(engine)
    if (linger !== undefined && linger.pending) {
      linger.lastEnd = now
      return Effect.void
    }
    const state = { lastEnd: now, pending: true }
    lingering.set(engine, state)
    const check = (waitMs: number): Effect.Effect<void> =>
      Effect.delay(
        Effect.flatMap(Clock.currentTimeMillis, (at) => {
          const left = state.lastEnd + idleLingerMs - at
          if (engine.running.size === 0 && watchers.get(engine) === fiber && left > 0) return check(left)
          state.pending = false
          if (engine.running.size > 0 || watchers.get(engine) !== fiber) return Effect.void
          watchers.delete(engine)
          return Fiber.interrupt(fiber)
        }),
        waitMs
      )
    // Called from a task's (uninterruptible) finalizer: the wait itself must stay interruptible, or closing the
    // runner's scope would wait it out.
    return Effect.asVoid(Effect.forkIn(Effect.interruptible(check(idleLingerMs)), engine.scope))
  })

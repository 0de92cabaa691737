/**
 * Workers: a runner that claims `pending` tasks of the kinds it knows and runs up to `concurrency` of them at once,
 * optionally taking over stale ones too. Pending tasks are claimed through the store's `claimNext` (Postgres: one
 * statement with `FOR UPDATE SKIP LOCKED`; elsewhere compare-and-swaps on pages of pending tasks); stale ones by a
 * compare-and-swap from their record, as `resume` does. Work is looked for when the store
 * announces a change (a task submitted or handed back: `ChangeFeed.announced`; some stores report every change), when
 * a slot frees, and otherwise on a timer that backs off while the queue stays empty. Closing the worker's scope releases its tasks: each is stopped at its last checkpoint and stored
 * `pending` again, for another worker to claim at once.
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { type TaskStoreError, UnknownTaskKind } from "../../TaskError.js"
import type * as TaskRecord from "../../TaskRecord.js"
import type { WorkOptions } from "../../TaskRunner.js"
import * as ChangeFeed from "../changeFeed.js"
import { claim, claimNext } from "./claim.js"
import { type Engine, isStale, toMillis } from "./engine.js"

/** How many claims one look sends at once. */
const parallelClaims = 8
/** The least time between two scans for stale tasks to take over. */
const takeoverScanMs = 500
/** The first wait between looks when the queue is empty; it doubles up to `maxPollInterval`. */
const minPollMs = 50

/** Shuffles in place (Fisher–Yates): workers listing the same page try its tasks in different orders. */
const shuffle = <A>(xs: Array<A>): Array<A> => {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[xs[i], xs[j]] = [xs[j]!, xs[i]!]
  }
  return xs
}

/**
 * Starts a worker in `scope`'s lifetime. Fails at once with `UnknownTaskKind` for a kind the runner does not know.
 */
export const work = (engine: Engine, options: WorkOptions = {}): Effect.Effect<void, UnknownTaskKind, Scope.Scope> =>
  Effect.gen(function* () {
    const known = Array.from(engine.registry.keys())
    const kinds = options.kinds ?? known
    for (const kind of kinds) {
      if (!engine.registry.has(kind)) return yield* new UnknownTaskKind({ kind, known })
    }
    const wanted = new Set(kinds)
    const concurrency = Math.max(1, Math.floor(options.concurrency ?? 4))
    const maxPollMs = Math.max(
      minPollMs,
      Math.min(toMillis(options.maxPollInterval ?? "5 seconds"), options.takeover === true ? takeoverScanMs : Infinity)
    )
    /** The tasks this worker claimed and runs now. */
    const mine = new Set<string>()
    let wake = yield* Deferred.make<void>()
    const signal = Effect.suspend(() => Deferred.succeed(wake, undefined))

    /** Counts `id` as this worker's until it ends; its end frees a slot, and the loop looks for more at once. */
    const adopt = (id: string) =>
      Effect.suspend(() => {
        const r = engine.running.get(id)
        if (r === undefined) return Effect.void
        mine.add(id)
        return Effect.asVoid(
          Effect.forkIn(
            Effect.zipRight(
              Deferred.await(r.done),
              Effect.suspend(() => {
                mine.delete(id)
                return signal
              })
            ),
            engine.scope
          )
        )
      })

    /** Takes over a stale task, by a compare-and-swap from its record; true when this worker now runs it. */
    const takeOver = (info: TaskRecord.TaskInfo): Effect.Effect<boolean> =>
      Effect.gen(function* () {
        const record = yield* engine.store.get(info.id)
        const now = yield* Clock.currentTimeMillis
        if (record.status !== "running" || !isStale(engine, record, now) || engine.running.has(record.id)) return false
        yield* claim(engine, record, engine.registry.get(record.kind)!, engine.captured, true)
        yield* adopt(record.id)
        return true
      }).pipe(
        // Another worker was faster, the task went away, or its record does not decode (it stays for a person to see).
        Effect.catchAll((e) =>
          e._tag === "RevisionConflict" || e._tag === "TaskNotFound"
            ? Effect.succeed(false)
            : Effect.as(Effect.logWarning(`Worker could not take over task ${info.id}`, e), false)
        )
      )

    /** Every running task of this worker's kinds whose lease can be taken over (all pages). */
    let lastTakeoverScan = 0
    const staleTasks = (now: number): Effect.Effect<Array<TaskRecord.TaskInfo>, TaskStoreError> =>
      Effect.gen(function* () {
        lastTakeoverScan = now
        const found: Array<TaskRecord.TaskInfo> = []
        let after: string | undefined = undefined
        do {
          const page: TaskRecord.Page = yield* engine.store.list({ status: "running", limit: 500, after })
          for (const t of page.items) if (wanted.has(t.kind) && isStale(engine, t, now)) found.push(t)
          after = page.next
        } while (after !== undefined)
        return found
      })

    /** Whether the last look found work (the queue is probably not empty). */
    let busy = false

    /** Looks for work once and claims what fits into the free slots: stale tasks first (if it takes over), then pending. */
    const claimSome = (free: number): Effect.Effect<number> =>
      Effect.gen(function* () {
        let claimed = 0
        const now = yield* Clock.currentTimeMillis
        if (options.takeover === true && now - lastTakeoverScan >= takeoverScanMs) {
          for (const info of shuffle(yield* staleTasks(now))) {
            if (claimed >= free) break
            if (yield* takeOver(info)) claimed++
          }
        }
        // An idle worker sends one claim (an empty queue costs one query); a busy one, and an idle one once that claim
        // found work, claims for its free slots side by side (on Postgres each on a connection of the pool, none waiting
        // for another's row). A round that finds the queue empty ends the look.
        let round = busy ? parallelClaims : 1
        while (claimed < free) {
          const ids = yield* Effect.forEach(
            Array.from({ length: Math.min(free - claimed, round) }),
            () => claimNext(engine, kinds, engine.captured),
            { concurrency: "unbounded" }
          )
          round = parallelClaims
          for (const id of ids) if (id !== undefined) yield* adopt(id)
          const got = ids.filter((id) => id !== undefined).length
          claimed += got
          if (got < ids.length) break
        }
        busy = claimed > 0
        return claimed
      }).pipe(Effect.catchAll((e) => Effect.as(Effect.logWarning("Worker could not look for work; will retry", e), 0)))

    const loop = Effect.gen(function* () {
      let idleMs = minPollMs
      while (true) {
        const free = concurrency - mine.size
        // A wake-up that arrives while this look runs is kept for the next wait.
        wake = yield* Deferred.make<void>()
        const claimed = free > 0 ? yield* claimSome(free) : 0
        if (claimed > 0) idleMs = minPollMs
        // Full, or found some (there may be more): go again when a slot frees or at once.
        if (claimed > 0 && concurrency - mine.size > 0) continue
        yield* Deferred.await(wake).pipe(Effect.timeout(Duration.millis(idleMs)), Effect.ignore)
        if (claimed === 0) idleMs = Math.min(idleMs * 2, maxPollMs)
      }
    })

    // The store's changes (a submit elsewhere, a task handed back) wake the loop; so does a submit through this runner.
    const follow = ChangeFeed.follow(engine.store.changes, () => signal)
    engine.wakers.add(signal)
    yield* Effect.addFinalizer(() => Effect.sync(() => engine.wakers.delete(signal)))

    /** On close: stop looking, then hand every task of this worker back as `pending` from its last checkpoint. */
    const releaseAll = Effect.suspend(() =>
      Effect.forEach(
        Array.from(mine, (id) => engine.running.get(id)).filter((r) => r !== undefined),
        (r) =>
          Effect.zipRight(
            r.requestStop({ kind: "release", reason: "released by a worker shutting down" }),
            Deferred.await(r.done)
          ),
        { concurrency: "unbounded", discard: true }
      )
    )
    yield* Effect.addFinalizer(() => releaseAll)
    yield* Effect.forkScoped(Effect.interruptible(follow))
    yield* Effect.forkScoped(Effect.interruptible(loop))
  })

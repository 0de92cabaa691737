/**
 * In-memory progress of a running task: a counter the task bumps for free, and rate and ETA derived from samples the
 * runner takes when it flushes.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { YieldWrap } from "effect/Utils"

/**
 * Progress as last flushed by the runner. `rate` is items per second over recent samples; `eta` in ms.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Progress = Schema.Struct({
  done: Schema.Number,
  total: Schema.optional(Schema.Number),
  message: Schema.optional(Schema.String),
  rate: Schema.optional(Schema.Number),
  eta: Schema.optional(Schema.Number),
  /**
   * The task's own counters, when its children's progress is rolled into `done` and `total` (see `Task.Handle.child`):
   * what a resume starts counting from.
   */
  own: Schema.optional(Schema.Struct({ done: Schema.Number, total: Schema.optional(Schema.Number) }))
})
/**
 * @since 0.1.0
 * @category models
 */
export type Progress = typeof Progress.Type

/** How far back samples count for the rate. */
const windowMs = 30_000
const maxSamples = 64

/**
 * How many calls of an inline step run on the spot between two trips through the fiber runtime.
 *
 * @since 0.1.0
 * @category utils
 */
export const inlineYieldEvery = 1024

/**
 * An effect that runs `f`, and that, used with `yield*` inside `Effect.gen`, runs it on the spot without a trip
 * through the fiber runtime: delegating to an iterator that is already done costs a few nanoseconds, a runtime step a
 * hundred. Every `yieldEvery`-th call goes through the runtime once (`Effect.yieldNow`), so a loop whose only step is
 * this effect can still be interrupted (paused, cancelled) and lets other fibers, and through the scheduler the event
 * loop, have their turn. Used anywhere else (piped, flatMapped) it is an ordinary `Effect.sync(f)`.
 *
 * @since 0.1.0
 * @category utils
 */
export const inlineSync = (f: () => void, yieldEvery: number = inlineYieldEvery): Effect.Effect<void> => {
  const effect = Effect.sync(f)
  const done: IteratorReturnResult<void> = { done: true, value: undefined }
  const finished: Iterator<never, void> = { next: () => done }
  const cede: IteratorYieldResult<YieldWrap<Effect.Effect<void>>> = {
    done: false,
    value: new YieldWrap(Effect.yieldNow())
  }
  let calls = 0
  Object.defineProperty(effect, Symbol.iterator, {
    value: () => {
      f()
      if (++calls < yieldEvery) return finished
      calls = 0
      // Yields to the runtime once, then is done: a fresh iterator, so concurrent fibers never share its state.
      let yielded = false
      return {
        next: () => {
          if (yielded) return done
          yielded = true
          return cede
        }
      }
    }
  })
  return effect
}

/**
 * Progress a task's children add to its own, in its units.
 *
 * @since 0.1.0
 * @category models
 */
export interface Rollup {
  readonly done: number
  readonly total: number
}

/**
 * A mutable progress counter. Updating it is a field write; the runner reads it on its own schedule.
 *
 * @since 0.1.0
 * @category models
 */
export class Tracker {
  /** Items done. */
  done: number
  /** Items expected in all, if known. */
  total: number | undefined
  /** A short human message ("embedding batch 12"). */
  message: string | undefined
  /** Bumped when the total or the message change (changes of `done` are seen by comparing it). */
  version = 0
  /**
   * Progress rolled up from the task's children, in the task's units: added to `done`, and the `total` when the task
   * sets none itself. Read when the runner samples and snapshots, never on the task's hot path.
   */
  rollup: (() => Rollup) | undefined = undefined
  private readonly samples: Array<{ readonly t: number; readonly done: number }> = []
  private lastRollup: Rollup = { done: 0, total: 0 }

  constructor(initial?: Progress) {
    this.done = initial?.own?.done ?? initial?.done ?? 0
    this.total = initial?.own === undefined ? initial?.total : initial.own.total
    this.message = initial?.message
  }

  /** Reads the rollup (if any); a change of it counts as a change of the total or message (`version`). */
  private rolledUp(): Rollup | undefined {
    if (this.rollup === undefined) return undefined
    const now = this.rollup()
    if (now.done !== this.lastRollup.done || now.total !== this.lastRollup.total) {
      this.lastRollup = now
      this.version++
    }
    return now
  }

  /** Adds `n` items done. */
  advance(n: number): void {
    this.done += n
  }

  /** Sets the number of items done. */
  set(done: number): void {
    this.done = done
  }

  /** Sets the expected total. */
  setTotal(total: number | undefined): void {
    this.total = total
    this.version++
  }

  /** Sets the message. */
  setMessage(message: string | undefined): void {
    this.message = message
    this.version++
  }

  /** Records a sample at `now` (ms) for the rate. */
  sample(now: number): void {
    const last = this.samples[this.samples.length - 1]
    if (last !== undefined && last.t === now) this.samples.pop()
    this.samples.push({ t: now, done: this.done + (this.rolledUp()?.done ?? 0) })
    while (this.samples.length > maxSamples || (this.samples.length > 2 && now - this.samples[0]!.t > windowMs)) {
      this.samples.shift()
    }
  }

  /** Items per second over the recent samples, if there are two of them. */
  rate(): number | undefined {
    const first = this.samples[0]
    const last = this.samples[this.samples.length - 1]
    if (first === undefined || last === undefined || last.t <= first.t) return undefined
    return Math.max(0, ((last.done - first.done) * 1000) / (last.t - first.t))
  }

  /** The progress to store: counters plus rate and ETA (ms) where they can be told. */
  snapshot(): Progress {
    const rollup = this.rolledUp()
    const done = this.done + (rollup?.done ?? 0)
    const total = this.total ?? (rollup === undefined || rollup.total === 0 ? undefined : rollup.total)
    const rate = this.rate()
    const eta =
      rate !== undefined && rate > 0 && total !== undefined
        ? Math.max(0, Math.round(((total - done) * 1000) / rate))
        : undefined
    return {
      done,
      ...(total === undefined ? {} : { total }),
      ...(this.message === undefined ? {} : { message: this.message }),
      ...(rate === undefined ? {} : { rate }),
      ...(eta === undefined ? {} : { eta }),
      ...(rollup === undefined
        ? {}
        : { own: this.total === undefined ? { done: this.done } : { done: this.done, total: this.total } })
    }
  }
}

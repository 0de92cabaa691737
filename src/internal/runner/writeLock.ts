/**
 * A running task's write lock: one write of its record at a time (a checkpoint, a heartbeat, a control write), so two
 * never race for one revision. What an Effect semaphore of one permit does, with the free lock taken in one
 * synchronous step: every checkpoint takes it, and nearly always finds it free.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

export class WriteLock {
  private held = false
  /** Writes waiting for the lock, in arrival order. */
  private readonly waiting = new Set<() => void>()

  /** Whether a write holds the lock now. One that runs in a single synchronous step needs no lock while it is free. */
  get isHeld(): boolean {
    return this.held
  }

  /**
   * Takes the lock: at once when free, else once it is let go. A waiting write is woken to try again in its own fiber
   * rather than handed the lock: a write interrupted between its wake-up and its turn then takes nothing, and the
   * lock does not stay held by a fiber that is gone.
   */
  private readonly take: Effect.Effect<void> = Effect.suspend(() => {
    if (this.tryHold()) return Effect.void
    return Effect.async<void>((resume) => {
      const waiter = () => {
        this.waiting.delete(waiter)
        resume(this.take)
      }
      this.waiting.add(waiter)
      // Interrupted while waiting: no longer in line.
      return Effect.sync(() => {
        this.waiting.delete(waiter)
      })
    })
  })

  /** Takes the lock if it is free now: true when taken (the caller lets it go with `letGo`). */
  tryHold(): boolean {
    if (this.held) return false
    this.held = true
    return true
  }

  /** Lets the lock go, and wakes the writes waiting for it (the first to run takes it; the others wait again). */
  letGo(): void {
    this.held = false
    for (const waiter of Array.from(this.waiting)) waiter()
  }

  private readonly release: Effect.Effect<void> = Effect.sync(() => this.letGo())

  /** `effect` with the lock held; the lock is let go however `effect` ends, interruption included. */
  with<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.uninterruptibleMask((restore) =>
      Effect.zipRight(restore(this.take), Effect.ensuring(restore(effect), this.release))
    )
  }

  /** `effect` with the lock held if it is free now (`some` of its value); `none`, and nothing run, if it is not. */
  ifFree<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<Option.Option<A>, E, R> {
    return Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        if (!this.tryHold()) return Effect.succeed(Option.none())
        return Effect.ensuring(Effect.asSome(restore(effect)), this.release)
      })
    )
  }
}

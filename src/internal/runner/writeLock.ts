/**
 * A running task's write lock: one write of its record at a time (a checkpoint, a heartbeat, a control write), so two
 * never race for one revision. What an Effect semaphore of one permit does, with the free lock taken in one
 * synchronous step: every checkpoint takes it, and nearly always finds it free.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

export class WriteLock {
  private held = false
  /** Writes waiting for the lock, in arrival order: each takes it if it is free when called. */
  private readonly waiting = new Set<() => void>()

  /** Takes the lock: at once when free, else once the writes before this one are done. */
  private readonly take: Effect.Effect<void> = Effect.suspend(() => {
    if (!this.held) {
      this.held = true
      return Effect.void
    }
    return Effect.async<void>((resume) => {
      const waiter = () => {
        if (this.held) return
        this.held = true
        this.waiting.delete(waiter)
        resume(Effect.void)
      }
      this.waiting.add(waiter)
      // Interrupted while waiting: no longer in line.
      return Effect.sync(() => {
        this.waiting.delete(waiter)
      })
    })
  })

  /** Lets the lock go, to the first write waiting for it if any. */
  private readonly release: Effect.Effect<void> = Effect.sync(() => {
    this.held = false
    for (const waiter of this.waiting) {
      waiter()
      return
    }
  })

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
        if (this.held) return Effect.succeed(Option.none())
        this.held = true
        return Effect.ensuring(Effect.asSome(restore(effect)), this.release)
      })
    )
  }
}

/**
 * A running task's write lock: one write at a time, in the order they came; a heartbeat's write skips a held lock
 * rather than wait; a write interrupted while waiting leaves the line; the lock is let go however a write ends.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Option } from "effect"
import { WriteLock } from "../../src/internal/runner/writeLock.js"

/** Holds `lock` in a fiber of its own until the returned effect lets it go (and waits for that fiber to end). */
const hold = (lock: WriteLock) =>
  Effect.gen(function* () {
    const inside = yield* Deferred.make<void>()
    const leave = yield* Deferred.make<void>()
    const holder = yield* Effect.fork(
      lock.with(Effect.zipRight(Deferred.succeed(inside, undefined), Deferred.await(leave)))
    )
    yield* Deferred.await(inside)
    return Effect.zipRight(Deferred.succeed(leave, undefined), Fiber.join(holder))
  })

describe("WriteLock", () => {
  it.live("writes run one at a time, in the order they asked", () =>
    Effect.gen(function* () {
      const lock = new WriteLock()
      const events: Array<string> = []
      const write = (name: string) =>
        lock.with(
          Effect.gen(function* () {
            events.push(`${name} in`)
            yield* Effect.sleep("5 millis")
            events.push(`${name} out`)
          })
        )
      yield* Effect.all([write("a"), write("b"), write("c")], { concurrency: "unbounded" })
      assert.deepStrictEqual(events, ["a in", "a out", "b in", "b out", "c in", "c out"])
    })
  )

  it.live("ifFree runs nothing while the lock is held, and runs once it is free", () =>
    Effect.gen(function* () {
      const lock = new WriteLock()
      const release = yield* hold(lock)
      let ran = 0
      const skipped = yield* lock.ifFree(Effect.sync(() => ++ran))
      assert.isTrue(Option.isNone(skipped))
      assert.strictEqual(ran, 0)
      yield* release
      assert.deepStrictEqual(yield* lock.ifFree(Effect.sync(() => ++ran)), Option.some(1))
    })
  )

  it.live("a write interrupted while waiting leaves the line; a failed or interrupted write lets the lock go", () =>
    Effect.gen(function* () {
      const lock = new WriteLock()
      const release = yield* hold(lock)
      let ran = false
      const waiter = yield* Effect.fork(lock.with(Effect.sync(() => (ran = true))))
      yield* Effect.sleep("5 millis")
      yield* Fiber.interrupt(waiter)
      yield* release
      assert.isFalse(ran, "the interrupted waiter never ran")
      // Failed inside the lock: let go.
      const failed = yield* Effect.exit(lock.with(Effect.fail("boom")))
      assert.isTrue(Exit.isFailure(failed))
      // Interrupted inside the lock: let go.
      const stuck = yield* Effect.fork(lock.with(Effect.never))
      yield* Effect.sleep("5 millis")
      yield* Fiber.interrupt(stuck)
      const after = yield* lock.with(Effect.succeed("free")).pipe(Effect.timeout("1 second"))
      assert.strictEqual(after, "free")
    })
  )

  it.live("a waiting write interrupted just before the lock is let go does not keep it", () =>
    Effect.gen(function* () {
      const lock = new WriteLock()
      yield* lock.with(
        Effect.gen(function* () {
          const waiter = yield* Effect.fork(lock.with(Effect.void))
          yield* Effect.sleep("5 millis")
          // Its interruption is on its way when the lock is let go (at the end of this write).
          yield* Fiber.interruptFork(waiter)
        })
      )
      const after = yield* lock.with(Effect.succeed("free")).pipe(Effect.timeout("1 second"))
      assert.strictEqual(after, "free")
    })
  )
})

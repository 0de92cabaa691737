/**
 * Retry policies: a failed run goes back to the queue and is retried from its last checkpoint after the policy's
 * delay (by the runner it failed in, or by any worker of its kind, whichever comes first), each failed attempt kept in
 * the log; after the last attempt the task fails for good with its typed error.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Schedule, Schema } from "effect"
import { Task, TaskStore } from "../src/index.js"
import { retryDelay } from "../src/internal/runner/retry.js"
import { buildRunner } from "./helpers/runner.js"

class Flaky extends Schema.TaggedError<Flaky>()("Flaky", { attempt: Schema.Int }) {}

/** Runs of each id, and the state each run started from. */
const startedFrom = new Map<string, Array<number>>()

/** Checkpoints `step: attempt * 10`, then fails until attempt `failUntil` has passed; returns the attempt. */
const Unstable = Task.make({
  name: "unstable",
  input: Schema.Struct({ failUntil: Schema.Int }),
  state: Schema.Struct({ step: Schema.Int }),
  success: Schema.Int,
  error: Flaky,
  initial: () => ({ step: 0 }),
  retry: { times: 3, schedule: Schedule.spaced("20 millis") },
  run: (input, task) =>
    Effect.gen(function* () {
      startedFrom.set(task.id, [...(startedFrom.get(task.id) ?? []), task.state.step])
      yield* task.checkpoint({ step: task.attempt * 10 })
      if (task.attempt <= input.failUntil) return yield* new Flaky({ attempt: task.attempt })
      return task.attempt
    })
})

/** Dies on every run; retried once. */
const Broken = Task.make({
  name: "broken",
  input: Schema.Struct({}),
  state: Schema.Struct({}),
  success: Schema.Int,
  initial: () => ({}),
  retry: { times: 1, schedule: Schedule.spaced("10 millis") },
  run: () => Effect.dieMessage("always broken")
})

const runner = Effect.flatMap(TaskStore.makeMemory, (store) => buildRunner(store, { tasks: [Unstable, Broken] }))

describe("retry", () => {
  it.live("a run that fails is retried from its last checkpoint until it succeeds; each failure is logged", () =>
    Effect.gen(function* () {
      const { runner: r } = yield* runner
      const id = yield* r.start(Unstable, { failUntil: 2 })
      const value = yield* r.await(Unstable, id).pipe(Effect.timeout("10 seconds"))
      assert.strictEqual(value, 3)
      assert.deepStrictEqual(startedFrom.get(id), [0, 10, 20], "each attempt resumed from the previous checkpoint")
      const info = yield* r.status(id)
      assert.strictEqual(info.status, "completed")
      assert.strictEqual(info.attempts, 3)
      assert.isUndefined(info.runAt)
      assert.isUndefined(info.failure)
      const logs = (yield* r.logs(id)).map((l) => `${l.level} ${l.message}`)
      assert.strictEqual(
        logs.filter((l) => /^ERROR attempt 1 failed: Flaky.*retrying in/.test(l)).length,
        1,
        logs.join("\n")
      )
      assert.strictEqual(logs.filter((l) => /^ERROR attempt 2 failed: Flaky/.test(l)).length, 1, logs.join("\n"))
    })
  )

  it.live("after the last retry the task fails for good with its typed error; defects are retried too", () =>
    Effect.gen(function* () {
      const { runner: r } = yield* runner
      const id = yield* r.start(Unstable, { failUntil: 99 })
      const failure = yield* Effect.either(r.await(Unstable, id).pipe(Effect.timeout("10 seconds")))
      assert.isTrue(Either.isLeft(failure))
      if (Either.isLeft(failure)) assert.deepStrictEqual(failure.left, new Flaky({ attempt: 4 }))
      const info = yield* r.status(id)
      assert.strictEqual(info.status, "failed")
      assert.strictEqual(info.attempts, 4, "one run and three retries")
      const logs = (yield* r.logs(id)).map((l) => l.message)
      assert.isTrue(
        logs.some((m) => /^attempt 4 failed: .*no retries left/.test(m)),
        logs.join("\n")
      )

      const broken = yield* r.start(Broken, {})
      yield* Effect.either(r.await(Broken, broken).pipe(Effect.timeout("10 seconds")))
      const brokenInfo = yield* r.status(broken)
      assert.strictEqual(brokenInfo.status, "failed")
      assert.strictEqual(brokenInfo.attempts, 2)
      assert.strictEqual(brokenInfo.failure?.kind, "defect")
    })
  )

  it.live("between attempts the task waits in the queue, pending, with its failure and a run-after time", () =>
    Effect.gen(function* () {
      const store = yield* TaskStore.makeMemory
      const Slow = Task.make({
        name: "slow-retry",
        input: Schema.Struct({}),
        state: Schema.Struct({}),
        success: Schema.Int,
        error: Flaky,
        initial: () => ({}),
        retry: { times: 1, schedule: Schedule.spaced("5 seconds") },
        run: (_, task) => (task.attempt === 1 ? new Flaky({ attempt: 1 }) : Effect.succeed(1))
      })
      const { runner: r } = yield* buildRunner(store, { tasks: [Slow] })
      const id = yield* r.start(Slow, {})
      let info = yield* r.status(id)
      for (let i = 0; i < 100 && info.status !== "pending"; i++) {
        yield* Effect.sleep("10 millis")
        info = yield* r.status(id)
      }
      assert.strictEqual(info.status, "pending")
      assert.strictEqual(info.failure?.kind, "error")
      assert.match(info.reason ?? "", /attempt 1 failed; retry 1 of 1/)
      assert.isAbove(info.runAt ?? 0, Date.now() + 3000)
      // Not claimed before its time, by a worker either.
      const claimed = yield* store.claimNext({
        kinds: ["slow-retry"],
        lease: { token: "t", holder: { host: "h", pid: 1, processStart: "1" }, expiresAt: Date.now() + 1000 },
        now: Date.now()
      })
      assert.isUndefined(claimed)
      // A person may resume it earlier.
      yield* r.resume(id)
      assert.strictEqual(yield* r.await(Slow, id), 1)
    })
  )

  it.effect("the default schedule: about 1 s, then 2 s, then 4 s (jittered); none beyond `times`", () =>
    Effect.gen(function* () {
      const policy = { times: 3 }
      const first = (yield* retryDelay(policy, 1, 0))!
      const second = (yield* retryDelay(policy, 2, 0))!
      const third = (yield* retryDelay(policy, 3, 0))!
      assert.isTrue(first >= 800 && first <= 1200, String(first))
      assert.isTrue(second >= 1600 && second <= 2400, String(second))
      assert.isTrue(third >= 3200 && third <= 4800, String(third))
      assert.isUndefined(yield* retryDelay(policy, 4, 0))
      assert.isUndefined(yield* retryDelay(undefined, 1, 0))
    })
  )
})

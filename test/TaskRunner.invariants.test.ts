/**
 * The runner's invariants that a single mistake could break without any other test noticing: leases that move with
 * a live task, requests that reach stale tasks, cancel over pause, coalesced polls, awaiting a task whose runner died,
 * and reused process ids.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Either, Exit, Fiber, Option, Schema, Scope, TestClock } from "effect"
import { hostname } from "node:os"
import { Holder, Lease, Task, TaskStore } from "../src/index.js"
import type * as TaskRecord from "../src/TaskRecord.js"
import { Counter, entry } from "./fixtures/tasks.js"
import { deadPid, spawnSleeper } from "./helpers/child.js"
import { buildRunner, type Store, storeCounter, twoRunners, waitUntil, withRunner } from "./helpers/runner.js"

let counter = 0
const freshId = (prefix: string) => `${prefix}-${++counter}-${Date.now()}`

/** Stores a `counter` task as running under `lease`, as a runner that is gone (or elsewhere) would have left it. */
const storeRunning = (store: Store, id: string, lease: Lease.Lease) =>
  Effect.flatMap(TestClock.currentTimeMillis, (now) =>
    storeCounter(store, id, { status: "running", lease, createdAt: now, updatedAt: now })
  )

/** The pid of a process that has exited. */

/** Asserts that a forked `await` has ended with `TaskPaused` (without blocking on it if it has not). */
const endsPaused = (fiber: Fiber.RuntimeFiber<unknown, { readonly _tag: string }>, when: string) =>
  Effect.gen(function* () {
    const exit = yield* Fiber.poll(fiber)
    assert.isTrue(Option.isSome(exit), `await ended ${when}`)
    if (Option.isSome(exit)) {
      const failure = Exit.isFailure(exit.value) ? Cause.failureOption(exit.value.cause) : Option.none()
      assert.strictEqual(Option.getOrUndefined(failure)?._tag, "TaskPaused")
    }
  })

describe("TaskRunner invariants", () => {
  it.scoped("a task running for many lease durations is never stale nor taken over: its lease moves with it", () =>
    Effect.gen(function* () {
      const { store, a, b } = yield* twoRunners({ leaseDuration: "3 seconds" }, { leaseDuration: "3 seconds" })
      // One checkpoints every second; the other neither checkpoints nor moves for 10 s at a time (heartbeats only).
      const busy = yield* a.runner.start(Counter, { n: 200, every: 10, stepMs: 100 })
      const quiet = yield* a.runner.start(Counter, { n: 2, every: 1000, stepMs: 10_000 })
      for (let s = 0; s < 19; s++) {
        yield* TestClock.adjust("1 second")
        const now = yield* TestClock.currentTimeMillis
        for (const id of [busy, quiet]) {
          const info = yield* store.getInfo(id)
          assert.strictEqual(info.status, "running", `${id} at ${s + 1} s`)
          assert.isFalse(a.runner.isStale(info, now), `${id} seen as stale at ${s + 1} s`)
          assert.isTrue(info.lease!.expiresAt > now + 1000, `${id}: its lease was renewed at ${s + 1} s`)
          const takeover = yield* Effect.either(b.runner.resume(id))
          assert.isTrue(Either.isLeft(takeover) && takeover.left._tag === "TaskNotResumable", `taken over at ${s}`)
        }
      }
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual(yield* a.runner.await(Counter, busy), (200 * 199) / 2)
      assert.strictEqual(yield* a.runner.await(Counter, quiet), 1)
      assert.deepStrictEqual([entry(busy).starts, entry(quiet).starts], [[0], [0]], "each ran once")
    })
  )

  it.scoped("pause and cancel of a stale task (its runner is gone) are carried out at once", () =>
    withRunner((runner, store) =>
      Effect.gen(function* () {
        const now = yield* TestClock.currentTimeMillis
        const expired = { token: "t", holder: { host: "elsewhere", pid: 1, processStart: "1" }, expiresAt: now - 1 }
        const deadHere = {
          token: "t",
          holder: { host: hostname(), pid: deadPid(), processStart: "1" },
          expiresAt: now + 3_600_000
        }
        const ids = [freshId("expired-pause"), freshId("expired-cancel"), freshId("dead-pause"), freshId("dead-cancel")]
        yield* storeRunning(store, ids[0]!, expired)
        yield* storeRunning(store, ids[1]!, expired)
        yield* storeRunning(store, ids[2]!, deadHere)
        yield* storeRunning(store, ids[3]!, deadHere)
        for (const [id, verb] of [
          [ids[0]!, "pause"],
          [ids[1]!, "cancel"],
          [ids[2]!, "pause"],
          [ids[3]!, "cancel"]
        ] as const) {
          const info = yield* verb === "pause" ? runner.pause(id) : runner.cancel(id)
          const status = verb === "pause" ? "paused" : "cancelled"
          assert.deepStrictEqual([info.status, info.lease, info.interrupt], [status, undefined, undefined], id)
          assert.include(info.reason, "its runner had stopped")
          assert.deepStrictEqual((yield* store.getInfo(id)).status, status)
        }
        // The paused one continues from there.
        yield* runner.resume(ids[0]!)
        assert.strictEqual(yield* runner.await(Counter, ids[0]!), 45)
      })
    )
  )

  it.scoped("cancel outranks pause: a cancel during a pause's clean-up ends the task cancelled", () =>
    withRunner((runner, store) =>
      Effect.gen(function* () {
        const id = yield* runner.start(Counter, { n: 1000, stepMs: 100, stopMs: 1000 })
        yield* TestClock.adjust("300 millis")
        const pausing = yield* Effect.fork(runner.pause(id))
        yield* waitUntil(
          Effect.sync(() => entry(id).interrupted === 1),
          "the pause reached the task"
        )
        const cancelling = yield* Effect.fork(runner.cancel(id))
        for (let k = 0; k < 10; k++) yield* Effect.yieldNow()
        assert.strictEqual(entry(id).finalized, 0, "the clean-up is still going")
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(pausing)
        const cancelled = yield* Fiber.join(cancelling)
        assert.strictEqual(cancelled.status, "cancelled")
        assert.strictEqual((yield* store.getInfo(id)).status, "cancelled")
        assert.strictEqual(entry(id).interrupted, 1)

        // And the other way round: a pause during a cancel's clean-up does not turn it into a pause.
        const other = yield* runner.start(Counter, { n: 1000, stepMs: 100, stopMs: 1000 })
        yield* TestClock.adjust("300 millis")
        const cancellingFirst = yield* Effect.fork(runner.cancel(other))
        yield* waitUntil(
          Effect.sync(() => entry(other).interrupted === 1),
          "the cancel reached the task"
        )
        const pausingLater = yield* Effect.fork(runner.pause(other))
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(cancellingFirst)
        yield* Fiber.join(pausingLater)
        const after = yield* store.getInfo(other)
        assert.deepStrictEqual([after.status, after.reason], ["cancelled", "cancelled on request"])
      })
    )
  )

  it.scoped("cancel outranks pause between runners, whichever was asked first", () =>
    Effect.gen(function* () {
      const { store, a, b } = yield* twoRunners()
      const first = yield* a.runner.start(Counter, { n: 1000, stepMs: 100 })
      const second = yield* a.runner.start(Counter, { n: 1000, stepMs: 100 })
      yield* TestClock.adjust("300 millis")
      yield* b.runner.pause(first)
      assert.strictEqual((yield* b.runner.cancel(first)).interrupt, "cancel")
      yield* b.runner.cancel(second)
      assert.strictEqual((yield* b.runner.pause(second)).interrupt, "cancel")
      yield* TestClock.adjust("1 second")
      for (const id of [first, second]) {
        yield* waitUntil(
          Effect.map(store.getInfo(id), (i) => i.status !== "running"),
          "stopped"
        )
        assert.strictEqual((yield* store.getInfo(id)).status, "cancelled", id)
      }
    })
  )

  it.scoped("polls are coalesced: a frontend polling often writes at most once per flush interval", () =>
    withRunner(
      (runner, store) =>
        Effect.gen(function* () {
          const id = yield* runner.start(Counter, { n: 100, stepMs: 100 })
          yield* TestClock.adjust("250 millis")
          const paused = yield* runner.pause(id)
          for (let k = 0; k < 10; k++) yield* runner.poll(id)
          const once = yield* store.getInfo(id)
          assert.strictEqual(once.revision, paused.revision + 1, "ten polls, one write")
          assert.strictEqual(once.polledAt, yield* TestClock.currentTimeMillis)
          yield* TestClock.adjust("300 millis")
          for (let k = 0; k < 10; k++) yield* runner.poll(id)
          assert.strictEqual((yield* store.getInfo(id)).revision, once.revision, "still within the interval")
          yield* TestClock.adjust("200 millis")
          for (let k = 0; k < 10; k++) yield* runner.poll(id)
          assert.strictEqual((yield* store.getInfo(id)).revision, once.revision + 1, "one flush interval later")
        }),
      { flushInterval: "500 millis" }
    )
  )

  it.scoped("await of a task whose runner died ends with TaskPaused instead of waiting forever", () =>
    withRunner((runner, store) =>
      Effect.gen(function* () {
        const now = yield* TestClock.currentTimeMillis
        const elsewhere = freshId("elsewhere")
        yield* storeRunning(store, elsewhere, {
          token: "t",
          holder: { host: "elsewhere", pid: 1, processStart: "1" },
          expiresAt: now + 5000
        })
        const waiting = yield* Effect.fork(runner.await(Counter, elsewhere))
        yield* TestClock.adjust("4 seconds")
        assert.isTrue(Option.isNone(yield* Fiber.poll(waiting)), "still waiting while the lease holds")
        yield* TestClock.adjust("2 seconds")
        yield* endsPaused(waiting, "once the lease has expired")

        const deadHere = freshId("dead-here")
        yield* storeRunning(store, deadHere, {
          token: "t",
          holder: { host: hostname(), pid: deadPid(), processStart: "1" },
          expiresAt: now + 3_600_000
        })
        const died = yield* Effect.fork(runner.await(Counter, deadHere))
        yield* TestClock.adjust("1 second")
        yield* endsPaused(died, "at once when its holder on this host is gone")
      })
    )
  )

  it.scoped("a live process whose start time differs from the holder's is a reused pid: the holder is dead", () =>
    withRunner((runner, store) =>
      Effect.gen(function* () {
        const child = spawnSleeper()
        yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
        yield* Effect.promise(() => new Promise((r) => child.once("spawn", r)))
        const pid = child.pid!
        const realStart = Holder.processStart(pid)
        assert.notStrictEqual(realStart, "", "the start time of a live process can be read")
        const now = yield* TestClock.currentTimeMillis
        const reused = freshId("reused-pid")
        const live = freshId("live-pid")
        const hour = now + 3_600_000
        yield* storeRunning(store, reused, {
          token: "t",
          holder: { host: hostname(), pid, processStart: "1" },
          expiresAt: hour
        })
        yield* storeRunning(store, live, {
          token: "t",
          holder: { host: hostname(), pid, processStart: realStart },
          expiresAt: hour
        })
        yield* runner.resume(reused)
        assert.strictEqual(yield* runner.await(Counter, reused), 45)
        const refused = yield* Effect.either(runner.resume(live))
        assert.isTrue(Either.isLeft(refused) && refused.left._tag === "TaskNotResumable")
      })
    )
  )

  it.scoped("a task checkpointing back to back on a synchronous store still lets the event loop's timers run", () =>
    Effect.gen(function* () {
      // The memory store answers without ever giving the event loop a turn, as SQLite and the file store's direct
      // system calls do: only the checkpoint's own yield lets a timer (the heartbeat, a signal handler) in.
      const store = yield* TaskStore.makeMemory
      let timerFired = false
      const Spinner = Task.make({
        name: "spinner",
        input: Schema.Struct({}),
        state: Schema.Struct({ n: Schema.Int }),
        success: Schema.Boolean,
        initial: () => ({ n: 0 }),
        run: (_, task) =>
          Effect.gen(function* () {
            setTimeout(() => (timerFired = true), 1)
            const deadline = Date.now() + 1000
            for (let n = 1; !timerFired && Date.now() < deadline; n++) yield* task.checkpoint({ n })
            return timerFired
          })
      })
      const { runner, scope } = yield* buildRunner(store, { tasks: [Spinner] })
      yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
      assert.isTrue(yield* runner.run(Spinner, {}), "the timer fired while the task was checkpointing")
    })
  )

  it.scoped("checkpoint returns only once the store holds the new state", () =>
    Effect.gen(function* () {
      const store = yield* TaskStore.makeMemory
      const seen: Array<string | undefined> = []
      const Probe = Task.make({
        name: "probe",
        input: Schema.Struct({}),
        state: Schema.Struct({ n: Schema.Int }),
        success: Schema.Int,
        initial: () => ({ n: 0 }),
        run: (_, task) =>
          Effect.gen(function* () {
            for (let n = 1; n <= 5; n++) {
              yield* task.checkpoint({ n })
              const stored = yield* Effect.orDie(store.get(task.id))
              seen.push(stored.state === undefined ? undefined : Buffer.from(stored.state).toString())
            }
            return 5
          })
      })
      const { runner, scope } = yield* buildRunner(store, { tasks: [Probe] })
      yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
      assert.strictEqual(yield* runner.run(Probe, {}), 5)
      assert.deepStrictEqual(
        seen,
        [1, 2, 3, 4, 5].map((n) => JSON.stringify({ n }))
      )
    })
  )

  const isStale = (info: TaskRecord.TaskInfo, now: number) => Lease.isStale(info, now, Holder.self())

  it("stale means running with an expired lease (at its expiry exactly) or no lease; other statuses are never stale", () => {
    const base = { id: "s", kind: "k", revision: 1, progress: { done: 0 }, attempts: 1, createdAt: 0, updatedAt: 0 }
    const lease = { token: "t", holder: { host: "elsewhere", pid: 1, processStart: "1" }, expiresAt: 1000 }
    assert.isFalse(isStale({ ...base, status: "running", lease }, 999))
    assert.isTrue(isStale({ ...base, status: "running", lease }, 1000))
    assert.isTrue(isStale({ ...base, status: "running" }, 0))
    for (const status of ["pending", "paused", "completed", "failed", "cancelled"] as const) {
      assert.isFalse(isStale({ ...base, status }, 5000), status)
      assert.isFalse(isStale({ ...base, status, lease }, 5000), status)
    }
    // A holder on this host whose process is gone is stale before its lease expires.
    const dead = { ...lease, holder: { host: hostname(), pid: deadPid(), processStart: "1" } }
    assert.isTrue(isStale({ ...base, status: "running", lease: dead }, 0))
    assert.strictEqual(Holder.processStart(deadPid()), "", "a process that is gone has no start time")
    const parent = process.ppid
    assert.match(Holder.processStart(process.pid), /^\d+$/)
    assert.notStrictEqual(Holder.processStart(process.pid), Holder.processStart(parent), "processes started apart")
    // A live holder is alive when its recorded start matches or was never known, dead when another process has its pid.
    const alive = (processStart: string) =>
      !isStale(
        { ...base, status: "running", lease: { ...lease, holder: { host: hostname(), pid: parent, processStart } } },
        0
      )
    assert.deepStrictEqual([alive(Holder.processStart(parent)), alive(""), alive("1")], [true, true, false])
  })
})

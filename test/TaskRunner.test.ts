import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Exit, Fiber, HashMap, Logger, Option, Schema, Scope, Stream, TestClock } from "effect"
import { spawnSync } from "node:child_process"
import { hostname } from "node:os"
import { Holder, Task, TaskStore } from "../src/index.js"
import { TaskStoreError } from "../src/TaskError.js"
import { Boom, Counter, entry, fixed } from "./fixtures/tasks.js"
import { buildRunner, type Store, twoRunners, waitUntil, withRunner } from "./helpers/runner.js"

const bytes = (text: string) => new TextEncoder().encode(text)
let counter = 0
const freshId = (prefix: string) => `${prefix}-${++counter}-${Date.now()}`

/** Outcomes of the updates a gated store passed on: true for accepted, false for rejected. */
const updates: Array<boolean> = []

/** A store whose every operation waits while the gate is closed: a runner cut off from its store (a "zombie"). */
const gated = (store: Store, gate: Effect.Latch): Store => {
  const g =
    <Args extends Array<unknown>, A, E>(f: (...args: Args) => Effect.Effect<A, E>) =>
    (...args: Args) =>
      Effect.zipRight(gate.await, f(...args))
  return {
    create: g(store.create),
    get: g(store.get),
    getInfo: g(store.getInfo),
    update: g((id: string, expected: number, patch: Parameters<Store["update"]>[2]) =>
      store.update(id, expected, patch).pipe(
        Effect.tapBoth({
          onFailure: () => Effect.sync(() => updates.push(false)),
          onSuccess: () => Effect.sync(() => updates.push(true))
        })
      )
    ),
    list: g(store.list),
    delete: g(store.delete),
    appendLogs: g(store.appendLogs),
    readLogs: g(store.readLogs),
    claimNext: g(store.claimNext),
    // Cut off: it hears of no change either.
    changes: Stream.empty
  }
}

/** A task that does nothing but succeed with 7. */
const Noop = Task.make({
  name: "noop",
  input: Schema.Struct({}),
  state: Schema.Struct({}),
  success: Schema.Int,
  initial: () => ({}),
  run: () => Effect.succeed(7)
})

describe("TaskRunner", () => {
  it.scoped("start runs a task in the background; await gives its typed success; the result is kept", () =>
    withRunner((runner) =>
      Effect.gen(function* () {
        const id = yield* runner.start(Counter, { n: 10 })
        const sum = yield* runner.await(Counter, id)
        assert.strictEqual(sum, 45)
        const info = yield* runner.status(id)
        assert.strictEqual(info.status, "completed")
        assert.deepStrictEqual([info.progress.done, info.progress.total], [10, 10])
        assert.strictEqual(info.attempts, 1)
        assert.isUndefined(info.lease)
        assert.isDefined(info.finishedAt)
        assert.strictEqual(yield* runner.result(Counter, id), 45)
        assert.strictEqual(yield* runner.result(Counter, id), 45)
        assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
      })
    )
  )

  it.scoped("a timeout on run pauses the task at its last checkpoint; running the id again re-enters from it", () =>
    withRunner((runner, store) =>
      Effect.gen(function* () {
        const id = freshId("timeout")
        const input = { n: 40, every: 5, stepMs: 10 }
        const first = yield* Effect.fork(runner.run(Counter, input, { id }).pipe(Effect.timeout("125 millis")))
        yield* TestClock.adjust("125 millis")
        const exit = yield* Fiber.await(first)
        assert.isTrue(Exit.isFailure(exit), "the timeout fired")
        const paused = yield* store.get(id)
        assert.strictEqual(paused.status, "paused")
        assert.isUndefined(paused.lease)
        const checkpoint = JSON.parse(Buffer.from(paused.state!).toString()) as { i: number }
        assert.isTrue(checkpoint.i > 0 && checkpoint.i % 5 === 0)
        assert.isTrue(paused.progress.done >= checkpoint.i)
        assert.strictEqual(entry(id).interrupted, 1)
        assert.strictEqual(entry(id).finalized, 1)

        const second = yield* Effect.fork(runner.run(Counter, input, { id }))
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* Fiber.join(second), 780)
        assert.deepStrictEqual(entry(id).starts, [0, checkpoint.i])
        const secondRun = entry(id).items.slice(entry(id).items.lastIndexOf(checkpoint.i))
        assert.deepStrictEqual(
          secondRun,
          Array.from({ length: 40 - checkpoint.i }, (_, k) => checkpoint.i + k)
        )
        const done = yield* runner.status(id)
        assert.deepStrictEqual([done.status, done.attempts], ["completed", 2])
        // Running a completed id again returns the kept result without running anything.
        assert.strictEqual(yield* runner.run(Counter, input, { id }), 780)
        assert.strictEqual(entry(id).starts.length, 2)
      })
    )
  )

  it.scoped("losing a race pauses the task", () =>
    withRunner((runner) =>
      Effect.gen(function* () {
        const id = freshId("race")
        const raced = yield* Effect.fork(
          Effect.race(runner.run(Counter, { n: 100, stepMs: 10 }, { id }), Effect.as(Effect.sleep("55 millis"), -1))
        )
        yield* TestClock.adjust("55 millis")
        assert.strictEqual(yield* Fiber.join(raced), -1)
        const info = yield* runner.status(id)
        assert.strictEqual(info.status, "paused")
        assert.strictEqual(entry(id).interrupted, 1)
      })
    )
  )

  it.scoped("closing the runner's scope pauses its tasks; another runner resumes them", () =>
    Effect.gen(function* () {
      const store = yield* TaskStore.makeMemory
      const a = yield* buildRunner(store)
      const id = yield* a.runner.start(Counter, { n: 30, stepMs: 10 })
      yield* TestClock.adjust("100 millis")
      yield* Scope.close(a.scope, Exit.void)
      const info = yield* store.getInfo(id)
      assert.strictEqual(info.status, "paused")
      assert.strictEqual(info.reason, "interrupted")
      assert.isUndefined(info.lease)
      assert.isTrue(info.progress.done > 0)
      assert.strictEqual(entry(id).finalized, 1)

      const b = yield* buildRunner(store)
      yield* Effect.addFinalizer(() => Scope.close(b.scope, Exit.void))
      yield* b.runner.resume(id)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* b.runner.await(Counter, id), 435)
    })
  )

  it.scoped("cancel leaves the task cancelled and final, after its finalizers ran", () =>
    withRunner((runner) =>
      Effect.gen(function* () {
        const id = yield* runner.start(Counter, { n: 100, stepMs: 10 })
        yield* TestClock.adjust("50 millis")
        const info = yield* runner.cancel(id)
        assert.strictEqual(info.status, "cancelled")
        assert.isDefined(info.finishedAt)
        assert.strictEqual(entry(id).interrupted, 1)
        assert.strictEqual(entry(id).finalized, 1)
        const resumed = yield* Effect.either(runner.resume(id))
        assert.isTrue(Either.isLeft(resumed) && resumed.left._tag === "TaskNotResumable")
        if (Either.isLeft(resumed)) assert.include(resumed.left.message, "cancelled tasks are final")
        const awaited = yield* Effect.either(runner.await(Counter, id))
        assert.isTrue(Either.isLeft(awaited) && awaited.left._tag === "TaskCancelled")
        // Cancelling again changes nothing.
        assert.strictEqual((yield* runner.cancel(id)).revision, info.revision)
      })
    )
  )

  it.scoped("pause then resume continues from the checkpoint", () =>
    withRunner((runner) =>
      Effect.gen(function* () {
        const id = yield* runner.start(Counter, { n: 20, every: 2, stepMs: 10 })
        yield* TestClock.adjust("75 millis")
        const paused = yield* runner.pause(id)
        assert.strictEqual(paused.status, "paused")
        assert.strictEqual(paused.reason, "paused on request")
        const startedAt = entry(id).items.length
        assert.isTrue(startedAt > 0)
        const awaited = yield* Effect.either(runner.await(Counter, id))
        assert.isTrue(Either.isLeft(awaited) && awaited.left._tag === "TaskPaused")
        yield* runner.resume(id)
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* runner.await(Counter, id), 190)
        const resumedAt = entry(id).starts[1]!
        assert.isTrue(resumedAt > 0 && resumedAt % 2 === 0)
      })
    )
  )

  it.scoped("a typed failure is stored; await fails with the decoded error; an explicit resume retries it", () =>
    withRunner((runner) =>
      Effect.gen(function* () {
        const id = yield* runner.start(Counter, { n: 20, failAt: 12 })
        const failed = yield* Effect.either(runner.await(Counter, id))
        assert.isTrue(Either.isLeft(failed))
        if (Either.isLeft(failed)) {
          assert.instanceOf(failed.left, Boom)
          assert.strictEqual((failed.left as Boom).at, 12)
        }
        const info = yield* runner.status(id)
        assert.strictEqual(info.status, "failed")
        assert.strictEqual(info.failure?.kind, "error")
        // Polling with resume does not restart failed tasks; only an explicit resume does.
        assert.strictEqual((yield* runner.poll(id, { resume: true })).status, "failed")
        fixed.add(id)
        yield* runner.resume(id)
        assert.strictEqual(yield* runner.await(Counter, id), 190)
        assert.deepStrictEqual(entry(id).starts, [0, 10])
        const done = yield* runner.status(id)
        assert.isUndefined(done.failure)
      })
    )
  )

  it.scoped("a defect fails the task as a defect; await reports TaskDefect with the cause", () =>
    withRunner((runner) =>
      Effect.gen(function* () {
        const id = yield* runner.start(Counter, { n: 20, dieAt: 3 })
        const died = yield* Effect.either(runner.await(Counter, id))
        assert.isTrue(Either.isLeft(died) && died.left._tag === "TaskDefect")
        if (Either.isLeft(died)) assert.include(died.left.message, "bug at 3")
        const info = yield* runner.status(id)
        assert.strictEqual(info.failure?.kind, "defect")
      })
    )
  )

  it.scoped("pause and cancel requested by another runner are carried out at the owner's next heartbeat", () =>
    Effect.gen(function* () {
      const { store, a, b } = yield* twoRunners()
      const id = yield* a.runner.start(Counter, { n: 1000, stepMs: 100 })
      yield* TestClock.adjust("300 millis")
      const requested = yield* b.runner.pause(id)
      assert.deepStrictEqual([requested.status, requested.interrupt], ["running", "pause"])
      yield* TestClock.adjust("1 second")
      yield* waitUntil(
        Effect.map(store.getInfo(id), (i) => i.status === "paused"),
        "paused"
      )
      assert.strictEqual(entry(id).interrupted, 1)
      assert.isUndefined((yield* store.getInfo(id)).interrupt)

      yield* a.runner.resume(id)
      yield* TestClock.adjust("300 millis")
      const cancel = yield* b.runner.cancel(id)
      assert.strictEqual(cancel.interrupt, "cancel")
      yield* TestClock.adjust("1 second")
      yield* waitUntil(
        Effect.map(store.getInfo(id), (i) => i.status === "cancelled"),
        "cancelled"
      )
      assert.strictEqual(entry(id).finalized, 2)
    })
  )

  it.scoped("a cancel from another runner is heard through the store's changes, long before the next heartbeat", () =>
    Effect.gen(function* () {
      const { store, a, b } = yield* twoRunners()
      const id = yield* a.runner.start(Counter, { n: 1000, stepMs: 100 })
      yield* TestClock.adjust("300 millis")
      yield* b.runner.cancel(id)
      // The heartbeat is 700 ms away; looks at a changed record are at most 10 ms apart.
      yield* TestClock.adjust("20 millis")
      yield* waitUntil(
        Effect.map(store.getInfo(id), (i) => i.status === "cancelled"),
        "cancelled without a heartbeat"
      )
      assert.strictEqual(entry(id).finalized, 1)
    })
  )

  it.scoped("a task rewriting its record back to back is looked at once per 10 ms at most, not once per write", () =>
    Effect.gen(function* () {
      // Two hundred checkpoints with no time passing, each a change of the record the runner follows; then it waits.
      const Writer = Task.make({
        name: "writer",
        input: Schema.Struct({}),
        state: Schema.Struct({ i: Schema.Int }),
        success: Schema.Int,
        initial: () => ({ i: 0 }),
        run: (_, task) =>
          Effect.gen(function* () {
            for (let i = 1; i <= 200; i++) yield* task.checkpoint({ i })
            return yield* Effect.never
          })
      })
      const store = yield* TaskStore.makeMemory
      let looks = 0
      const counted: Store = {
        ...store,
        getInfo: (id) =>
          Effect.zipRight(
            Effect.sync(() => looks++),
            store.getInfo(id)
          )
      }
      const { runner, scope } = yield* buildRunner(counted, { tasks: [Writer] })
      yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
      const id = yield* runner.start(Writer, {})
      yield* waitUntil(
        Effect.map(store.get(id), (r) => r.revision >= 201),
        "two hundred checkpoints",
        // A checkpoint gives the event loop a turn now and then: wait on real timers.
        { live: true }
      )
      // Real time for the runner to look (its looks are spaced on the test clock, which stands still).
      const settle = Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
      yield* settle
      const before = looks
      assert.isAtLeast(before, 1, "a change is looked at")
      assert.isAtMost(before, 2, `${before} looks at two hundred writes in no time`)
      yield* TestClock.adjust("10 millis")
      yield* settle
      assert.strictEqual(looks, before + 1, "the changes that came during the wait: one more look")
    })
  )

  it.scoped("a checkpoint after 20 ms of work gives the event loop two turns before the task goes on", () =>
    Effect.gen(function* () {
      // V8 runs its collector's incremental marking as tasks from the event loop, each posting the next: with one turn
      // per slow checkpoint a large state's garbage piled up (see `yieldToEventLoop`). What a second turn shows here: an
      // immediate queued from an immediate queued before the checkpoint has run when the checkpoint returns.
      const Slow = Task.make({
        name: "slow-checkpoints",
        input: Schema.Struct({}),
        state: Schema.Struct({ i: Schema.Number }),
        success: Schema.Number,
        initial: () => ({ i: 0 }),
        run: (_, task) =>
          Effect.gen(function* () {
            let secondTurns = 0
            for (let i = 1; i <= 3; i++) {
              const until = Date.now() + 25
              while (Date.now() < until) {
                // Work that gives the loop no turn, as a large state's encoding and write do.
              }
              let reached = false
              setImmediate(() =>
                setImmediate(() => {
                  reached = true
                })
              )
              yield* task.checkpoint({ i })
              if (reached) secondTurns++
            }
            return secondTurns
          })
      })
      const secondTurns = yield* withRunner((runner) => runner.run(Slow, {}), { tasks: [Slow] })
      assert.strictEqual(secondTurns, 3)
    })
  )

  it.scoped("a zombie whose lease expired and was taken over cannot write, and stops itself", () =>
    Effect.gen(function* () {
      const store = yield* TaskStore.makeMemory
      const gate = yield* Effect.makeLatch(true)
      const zombie = yield* buildRunner(gated(store, gate), { host: "host-a", leaseDuration: "10 seconds" })
      const b = yield* buildRunner(store, { host: "host-b", leaseDuration: "10 seconds" })
      yield* Effect.addFinalizer(() =>
        Effect.zipRight(
          Scope.close(b.scope, Exit.void),
          Effect.zipRight(gate.open, Scope.close(zombie.scope, Exit.void))
        )
      )
      const id = yield* zombie.runner.start(Counter, { n: 400, every: 1, stepMs: 100 })
      yield* TestClock.adjust("1 second")
      // Cut the zombie off from the store, as a partition or a long GC pause would.
      yield* gate.close
      yield* TestClock.adjust("2 seconds")
      const early = yield* Effect.either(b.runner.resume(id))
      assert.isTrue(Either.isLeft(early) && early.left._tag === "TaskNotResumable")
      if (Either.isLeft(early)) assert.include(early.left.message, "host-a")

      yield* TestClock.adjust("10 seconds")
      const takeover = yield* b.runner.resume(id)
      assert.strictEqual(takeover.lease?.holder.host, "host-b")
      const token = takeover.lease!.token
      yield* TestClock.adjust("500 millis")
      const before = yield* store.get(id)

      // The zombie comes back: each of its pending writes is rejected and it interrupts its own fiber.
      const zombieItems = entry(id).items.length
      updates.length = 0
      yield* gate.open
      yield* TestClock.adjust("2 seconds")
      yield* waitUntil(
        Effect.sync(() => entry(id).finalized >= 1),
        "the zombie stopped its task"
      )
      assert.isTrue(updates.length >= 1, "the zombie tried to write")
      assert.deepStrictEqual(
        updates.filter((accepted) => accepted),
        [],
        "every write of the zombie was rejected"
      )
      const after = yield* store.get(id)
      assert.strictEqual(after.lease?.token, token)
      assert.strictEqual(after.lease?.holder.host, "host-b")
      assert.strictEqual(after.status, "running")
      assert.isTrue(after.revision > before.revision)
      // Every checkpoint since the takeover came from b: its state never went backwards.
      const stateOf = (r: typeof before) => (JSON.parse(Buffer.from(r.state!).toString()) as { i: number }).i
      assert.isTrue(stateOf(after) >= stateOf(before))
      assert.isTrue(entry(id).items.length > zombieItems)
      yield* TestClock.adjust("60 seconds")
      assert.strictEqual(yield* b.runner.await(Counter, id), (400 * 399) / 2)
    })
  )

  it.scoped("a runner that cannot reach its store stops the task once its lease runs out, and writes nothing", () =>
    Effect.gen(function* () {
      const store = yield* TaskStore.makeMemory
      let broken = false
      const flaky: Store = {
        ...store,
        update: (...args) =>
          broken
            ? Effect.fail(new TaskStoreError({ reason: "Unavailable", operation: "update", detail: "unreachable" }))
            : store.update(...args),
        getInfo: (id) =>
          broken
            ? Effect.fail(new TaskStoreError({ reason: "Unavailable", operation: "read", detail: "unreachable" }))
            : store.getInfo(id)
      }
      const runner = yield* buildRunner(flaky, { leaseDuration: "5 seconds" })
      yield* Effect.addFinalizer(() => Scope.close(runner.scope, Exit.void))
      const id = yield* runner.runner.start(Counter, { n: 10_000, every: 1_000_000, stepMs: 100 })
      yield* TestClock.adjust("1 second")
      const before = yield* store.getInfo(id)
      broken = true
      yield* TestClock.adjust("3 seconds")
      assert.strictEqual(entry(id).finalized, 0, "still running while its lease holds")
      yield* TestClock.adjust("3 seconds")
      yield* waitUntil(
        Effect.sync(() => entry(id).finalized === 1),
        "stopped"
      )
      const after = yield* store.getInfo(id)
      assert.strictEqual(after.revision, before.revision, "nothing written")
      assert.strictEqual(after.status, "running")
      assert.isTrue(runner.runner.isStale(after, (yield* TestClock.currentTimeMillis) + 1))
    })
  )

  it.scoped(
    "a heartbeat writes progress less often the longer its writes take; the lease is still renewed in time",
    () =>
      Effect.gen(function* () {
        /**
         * The beat writes (no state) in 20 s of a task that reports progress and never checkpoints, each taking
         * `writeMs`, under a lease of `leaseS` seconds: when each began, and until when the lease it wrote runs.
         */
        const beatWrites = (writeMs: number, leaseS: number) =>
          Effect.gen(function* () {
            const store = yield* TaskStore.makeMemory
            const writes: Array<{ at: number; leaseUntil: number }> = []
            const slow: Store = {
              ...store,
              update: (id, expected, patch) =>
                patch.state !== undefined || patch.status !== undefined
                  ? store.update(id, expected, patch)
                  : Effect.flatMap(TestClock.currentTimeMillis, (at) =>
                      Effect.zipRight(
                        Effect.sleep(`${writeMs} millis`),
                        Effect.tap(store.update(id, expected, patch), (info) =>
                          Effect.sync(() => writes.push({ at, leaseUntil: info.lease!.expiresAt }))
                        )
                      )
                    )
            }
            const { runner, scope } = yield* buildRunner(slow, {
              leaseDuration: `${leaseS} seconds`,
              flushInterval: "1 second"
            })
            const id = yield* runner.start(Counter, { n: 100_000, every: 1_000_000, stepMs: 100 })
            for (let t = 0; t < 200; t++) yield* TestClock.adjust("100 millis")
            const progress = (yield* store.getInfo(id)).progress.done
            yield* Scope.close(scope, Exit.void)
            const gaps = writes.slice(1).map((w, i) => w.at - writes[i]!.at)
            return { writes, gaps, progress }
          })
        // Writes that cost nothing: progress is written at every beat, as before.
        const quick = yield* beatWrites(0, 30)
        assert.isAtLeast(quick.writes.length, 15)
        // Writes of 100 ms: one at most every 5 s (50 times as long); the lease (30 s) needs none more often.
        const slow = yield* beatWrites(100, 30)
        assert.isAtLeast(slow.writes.length, 3)
        assert.isAtMost(slow.writes.length, 4)
        for (const gap of slow.gaps) assert.isAtLeast(gap, 5000)
        assert.isAbove(slow.progress, 100)
        // Writes of 400 ms under a lease of 9 s: the lease is renewed a third through all the same, each time long
        // before the lease the last write gave runs out.
        const leased = yield* beatWrites(400, 9)
        assert.isAtLeast(leased.writes.length, 5)
        for (const gap of leased.gaps) assert.isAtMost(gap, 4000)
        for (let i = 1; i < leased.writes.length; i++) {
          assert.isBelow(leased.writes[i]!.at, leased.writes[i - 1]!.leaseUntil - 4000)
        }
      })
  )

  it.scoped(
    "a heartbeat the store refuses with its own failure (Io) stops the task at once; await gets that failure",
    () =>
      Effect.gen(function* () {
        const store = yield* TaskStore.makeMemory
        let broken = false
        const full: Store = {
          ...store,
          update: (...args) =>
            broken
              ? Effect.fail(
                  new TaskStoreError({ reason: "Io", operation: "update", errno: "ENOSPC", path: "/x", detail: "full" })
                )
              : store.update(...args)
        }
        const runner = yield* buildRunner(full, { leaseDuration: "30 seconds" })
        yield* Effect.addFinalizer(() => Scope.close(runner.scope, Exit.void))
        // It never checkpoints: only its heartbeat writes (its progress), and meets the failure.
        const id = yield* runner.runner.start(Counter, { n: 10_000, every: 1_000_000, stepMs: 100 })
        const awaited = yield* Effect.fork(Effect.either(runner.runner.await(Counter, id)))
        yield* TestClock.adjust("1 second")
        broken = true
        yield* TestClock.adjust("2 seconds")
        yield* waitUntil(
          Effect.sync(() => entry(id).finalized === 1),
          "stopped long before the lease runs out"
        )
        const result = yield* Fiber.join(awaited)
        assert.isTrue(Either.isLeft(result))
        const error = (result as Either.Left<{ _tag: string; errno?: string }, unknown>).left
        assert.strictEqual(error._tag, "TaskStoreError")
        assert.strictEqual(error.errno, "ENOSPC")
        // Once the store takes writes again, the end is what a resume continues from.
        broken = false
        assert.isTrue(runner.runner.isStale(yield* store.getInfo(id), yield* TestClock.currentTimeMillis))
      })
  )

  it.scoped("a lease held by a dead process on this host is taken over at once", () =>
    withRunner((runner, store) =>
      Effect.gen(function* () {
        const child = spawnSync(process.execPath, ["-e", "process.exit(0)"])
        const deadPid = child.pid!
        const id = freshId("dead-holder")
        const now = yield* TestClock.currentTimeMillis
        yield* store.create({
          id,
          kind: "counter",
          status: "running",
          progress: { done: 5, total: 10 },
          attempts: 1,
          createdAt: now,
          updatedAt: now,
          lease: {
            token: "old",
            holder: { host: hostname(), pid: deadPid, processStart: "12345" },
            expiresAt: now + 3_600_000
          },
          input: bytes(JSON.stringify({ n: 10, every: 5 })),
          state: bytes(JSON.stringify({ i: 5, sum: 10 }))
        })
        const resumed = yield* runner.resume(id)
        assert.notStrictEqual(resumed.lease?.token, "old")
        assert.strictEqual(yield* runner.await(Counter, id), 45)
        assert.deepStrictEqual(entry(id).starts, [5])
      })
    )
  )

  it.scoped("a lease held by a live process on this host is not taken over before it expires", () =>
    withRunner((runner, store) =>
      Effect.gen(function* () {
        const id = freshId("live-holder")
        const now = yield* TestClock.currentTimeMillis
        const me = Holder.self()
        yield* store.create({
          id,
          kind: "counter",
          status: "running",
          progress: { done: 0 },
          attempts: 1,
          createdAt: now,
          updatedAt: now,
          lease: { token: "other", holder: { ...me, pid: process.ppid, processStart: "" }, expiresAt: now + 5000 },
          input: bytes(JSON.stringify({ n: 10 }))
        })
        const refused = yield* Effect.either(runner.resume(id))
        assert.isTrue(Either.isLeft(refused) && refused.left._tag === "TaskNotResumable")
        yield* TestClock.adjust("6 seconds")
        yield* runner.resume(id)
        assert.strictEqual(yield* runner.await(Counter, id), 45)
      })
    )
  )

  it.scoped("interest timeout: a task nobody polls is paused; polling keeps it going; poll can resume it", () =>
    withRunner(
      (runner) =>
        Effect.gen(function* () {
          const id = yield* runner.start(Counter, { n: 10_000, stepMs: 100 })
          for (let k = 0; k < 6; k++) {
            yield* TestClock.adjust("1 second")
            yield* runner.poll(id)
          }
          assert.strictEqual((yield* runner.status(id)).status, "running")
          yield* TestClock.adjust("5 seconds")
          yield* waitUntil(
            Effect.map(runner.status(id), (i) => i.status === "paused"),
            "paused for lack of interest"
          )
          const info = yield* runner.status(id)
          assert.match(info.reason ?? "", /nobody polled it for/)
          const polled = yield* runner.poll(id, { resume: true })
          assert.strictEqual(polled.status, "running")
          assert.strictEqual(polled.attempts, 2)
          yield* runner.cancel(id)
        }),
      { interestTimeout: "3 seconds" }
    )
  )

  it.scoped("a poll from another runner counts as interest", () =>
    Effect.gen(function* () {
      const { store, a, b } = yield* twoRunners({ interestTimeout: "3 seconds" })
      const id = yield* a.runner.start(Counter, { n: 10_000, stepMs: 100 })
      for (let k = 0; k < 8; k++) {
        yield* TestClock.adjust("1 second")
        yield* b.runner.poll(id)
      }
      assert.strictEqual((yield* store.getInfo(id)).status, "running")
      yield* TestClock.adjust("5 seconds")
      yield* waitUntil(
        Effect.map(store.getInfo(id), (i) => i.status === "paused"),
        "paused"
      )
    })
  )

  it.scoped("Effect.log inside a task is kept in the task's log, bounded, and still reaches the normal logger", () =>
    Effect.gen(function* () {
      const seen: Array<string> = []
      const collect = Logger.make<unknown, void>(({ message }) => {
        seen.push(String(Array.isArray(message) ? message[0] : message))
      })
      yield* withRunner(
        (runner) =>
          Effect.gen(function* () {
            const id = yield* runner.start(Counter, { n: 25, logEach: true })
            yield* runner.await(Counter, id)
            const lines = yield* runner.logs(id)
            assert.deepStrictEqual(
              lines.map((l) => l.message),
              Array.from({ length: 10 }, (_, k) => `item ${15 + k}`)
            )
            assert.isTrue(lines.every((l) => l.level === "INFO"))
            assert.isTrue(seen.includes("item 0") && seen.includes("item 24"))
          }),
        { keepLogs: 10 }
      ).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, collect)))
    })
  )

  it.scoped(
    "each task's lines go to its own log, annotated with its id and kind: a fiber it forks is its, a child is not",
    () =>
      Effect.gen(function* () {
        const annotated: Array<string> = []
        const collect = Logger.make<unknown, void>(({ annotations, message }) => {
          const text = String(Array.isArray(message) ? message[0] : message)
          annotated.push(`${text} @ ${String(Option.getOrUndefined(HashMap.get(annotations, "taskKind")))}`)
        })
        const Child = Task.make({
          name: "chatty-child",
          input: Schema.Struct({}),
          state: Schema.Struct({}),
          success: Schema.Int,
          initial: () => ({}),
          run: () => Effect.as(Effect.log("child line"), 1)
        })
        const Chatty = Task.make({
          name: "chatty",
          input: Schema.Struct({ n: Schema.Int }),
          state: Schema.Struct({}),
          success: Schema.Int,
          initial: () => ({}),
          run: ({ n }, task) =>
            Effect.gen(function* () {
              yield* Effect.log(`own line ${n}`)
              yield* Fiber.join(yield* Effect.fork(Effect.log(`forked line ${n}`)))
              return yield* task.child(Child, {}, { key: "c" })
            })
        })
        yield* withRunner((runner) =>
          Effect.gen(function* () {
            const ids: Array<string> = []
            for (const n of [1, 2]) {
              const id = yield* runner.start(Chatty, { n })
              yield* runner.await(Chatty, id)
              ids.push(id)
            }
            for (const [i, id] of ids.entries()) {
              const lines = (yield* runner.logs(id)).map((l) => l.message)
              assert.deepStrictEqual(lines, [`own line ${i + 1}`, `forked line ${i + 1}`])
            }
            const children = (yield* runner.list({ kind: "chatty-child" })).items
            assert.strictEqual(children.length, 2)
            for (const child of children) {
              assert.deepStrictEqual(
                (yield* runner.logs(child.id)).map((l) => l.message),
                ["child line"]
              )
            }
          })
        ).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, collect)))
        assert.includeMembers(annotated, ["own line 1 @ chatty", "forked line 2 @ chatty", "child line @ chatty-child"])
      })
  )

  it.scoped("a task that does nothing costs two writes: created already claimed, then its end", () =>
    withRunner((runner, store) =>
      Effect.gen(function* () {
        assert.strictEqual(yield* runner.run(Noop, {}, { id: "noop-1" }), 7)
        const stored = yield* store.getInfo("noop-1")
        assert.deepStrictEqual([stored.status, stored.revision, stored.attempts], ["completed", 2, 1])
        assert.isDefined(stored.startedAt)
        assert.isUndefined(stored.lease)
      })
    )
  )

  it.scoped(
    "run with an id: a new task is created first, with no read before; a finished one is read, not rewritten",
    () =>
      Effect.gen(function* () {
        const store = yield* TaskStore.makeMemory
        const calls: Array<string> = []
        const traced: Store = {
          ...store,
          create: (record) =>
            Effect.zipRight(
              Effect.sync(() => calls.push("create")),
              store.create(record)
            ),
          update: (id, expected, patch) =>
            Effect.zipRight(
              Effect.sync(() => calls.push("update")),
              store.update(id, expected, patch)
            ),
          getInfo: (id) =>
            Effect.zipRight(
              Effect.sync(() => calls.push("getInfo")),
              store.getInfo(id)
            ),
          get: (id) =>
            Effect.zipRight(
              Effect.sync(() => calls.push("get")),
              store.get(id)
            )
        }
        const { runner, scope } = yield* buildRunner(traced)
        yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
        assert.strictEqual(yield* runner.run(Noop, {}, { id: "noop-2" }), 7)
        assert.strictEqual(calls[0], "create", calls.join(", "))
        assert.strictEqual(calls.filter((c) => c === "create" || c === "update").length, 2, calls.join(", "))
        const revision = (yield* store.getInfo("noop-2")).revision
        calls.length = 0
        assert.strictEqual(yield* runner.run(Noop, {}, { id: "noop-2" }), 7)
        assert.notInclude(calls, "update", calls.join(", "))
        assert.strictEqual((yield* store.getInfo("noop-2")).revision, revision)
      })
  )

  it.scopedLive(
    "closing a runner right after its tasks ended does not wait for anything it keeps running in between",
    () =>
      Effect.gen(function* () {
        const store = yield* TaskStore.makeMemory
        const { runner, scope } = yield* buildRunner(store)
        yield* runner.run(Noop, {})
        const started = Date.now()
        yield* Scope.close(scope, Exit.void)
        // The watch on the store's changes lingers a few seconds after the last task: closing must interrupt it.
        assert.isBelow(Date.now() - started, 1000)
      })
  )

  it.scoped("progress costs no store write; it is flushed coalesced, with rate and ETA", () =>
    withRunner((runner, store) =>
      Effect.gen(function* () {
        const Steady = Task.make({
          name: "steady",
          input: Schema.Struct({ n: Schema.Int }),
          state: Schema.Struct({}),
          success: Schema.Int,
          initial: () => ({}),
          run: (input, task) =>
            Effect.gen(function* () {
              yield* task.total(input.n)
              for (let s = 0; s < input.n / 10; s++) {
                for (let k = 0; k < 10; k++) yield* task.progress(1)
                yield* Effect.sleep("100 millis")
              }
              return input.n
            })
        })
        const id = yield* runner.start(Steady, { n: 1000 })
        yield* waitUntil(
          Effect.map(runner.status(id), (i) => i.progress.done === 10),
          "the first 10 items"
        )
        yield* TestClock.adjust("900 millis")
        const stored = yield* store.getInfo(id)
        // 100 progress calls, yet the store has seen only the create (which is the claim too: one write).
        assert.strictEqual((yield* runner.status(id)).progress.done, 100)
        assert.deepStrictEqual([stored.revision, stored.progress.done], [1, 0])
        yield* TestClock.adjust("100 millis")
        yield* waitUntil(
          Effect.map(store.getInfo(id), (i) => i.progress.done >= 100),
          "a flush"
        )
        yield* TestClock.adjust("5 seconds")
        const later = yield* store.getInfo(id)
        assert.isTrue(later.revision <= 1 + 6, `revision ${later.revision}: at most one write a second`)
        assert.isTrue(later.progress.done >= 500)
        assert.approximately(later.progress.rate ?? 0, 100, 10)
        assert.isDefined(later.progress.eta)
        const expectedEta = ((1000 - later.progress.done) / 100) * 1000
        assert.approximately(later.progress.eta!, expectedEta, expectedEta * 0.15)
        yield* TestClock.adjust("10 seconds")
        assert.strictEqual(yield* runner.await(Steady, id), 1000)
      })
    )
  )

  it.scoped("the ambient free functions report progress for helpers that do not hold the handle", () =>
    withRunner((runner) =>
      Effect.gen(function* () {
        const { Ambient } = yield* Effect.promise(() => import("./fixtures/tasks.js"))
        const id = yield* runner.start(Ambient, { n: 7 })
        assert.strictEqual(yield* runner.await(Ambient, id), 7)
        const info = yield* runner.status(id)
        assert.deepStrictEqual(info.progress, { done: 14, total: 7, message: "helper done" })
      })
    )
  )

  it.scoped("state that no longer decodes is a typed error naming task and field, and nothing is changed", () =>
    withRunner((runner, store) =>
      Effect.gen(function* () {
        const id = yield* runner.start(Counter, { n: 100, stepMs: 10 })
        yield* TestClock.adjust("100 millis")
        const paused = yield* runner.pause(id)
        const damaged = yield* store.update(id, paused.revision, { state: bytes('{"i":"seven","sum":0}') })
        const result = yield* Effect.either(runner.resume(id))
        assert.isTrue(Either.isLeft(result) && result.left._tag === "TaskDecodeError")
        if (Either.isLeft(result) && result.left._tag === "TaskDecodeError") {
          assert.strictEqual(result.left.field, "state")
          assert.include(result.left.message, id)
          assert.include(result.left.message, "counter")
          assert.include(result.left.found, "seven")
        }
        const after = yield* store.get(id)
        assert.strictEqual(after.revision, damaged.revision)
        assert.strictEqual(Buffer.from(after.state!).toString(), '{"i":"seven","sum":0}')
      })
    )
  )

  it.scoped("typed errors for unknown kinds, wrong definitions, bad ids, taken ids and missing tasks", () =>
    withRunner((runner, store) =>
      Effect.gen(function* () {
        yield* store.create({
          id: "alien",
          kind: "alien-kind",
          status: "paused",
          progress: { done: 0 },
          attempts: 1,
          createdAt: 0,
          updatedAt: 0,
          input: bytes("{}")
        })
        const unknown = yield* Effect.either(runner.resume("alien"))
        assert.isTrue(Either.isLeft(unknown) && unknown.left._tag === "UnknownTaskKind")
        if (Either.isLeft(unknown)) assert.include(unknown.left.message, '"counter", "ambient"')

        const id = yield* runner.start(Counter, { n: 3 })
        yield* runner.await(Counter, id)
        const { Ambient } = yield* Effect.promise(() => import("./fixtures/tasks.js"))
        const mismatch = yield* Effect.either(runner.await(Ambient, id))
        assert.isTrue(Either.isLeft(mismatch) && mismatch.left._tag === "TaskKindMismatch")

        const bad = yield* Effect.either(runner.start(Counter, { n: 1 }, { id: "../etc/passwd" }))
        assert.isTrue(Either.isLeft(bad) && bad.left._tag === "InvalidTaskId")
        const taken = yield* Effect.either(runner.start(Counter, { n: 1 }, { id }))
        assert.isTrue(Either.isLeft(taken) && taken.left._tag === "TaskAlreadyExists")
        const missing = yield* Effect.either(runner.status("no-such-task"))
        assert.isTrue(Either.isLeft(missing) && missing.left._tag === "TaskNotFound")
        const completed = yield* Effect.either(runner.resume(id))
        assert.isTrue(Either.isLeft(completed) && completed.left._tag === "TaskNotResumable")
        const notDone = yield* Effect.either(
          Effect.flatMap(runner.start(Counter, { n: 10, stepMs: 1000 }), (running) => runner.result(Counter, running))
        )
        assert.isTrue(Either.isLeft(notDone) && notDone.left._tag === "TaskNotCompleted")
      })
    )
  )

  it.scoped("forget deletes a task; a task running elsewhere must be stopped first", () =>
    Effect.gen(function* () {
      const { store, a, b } = yield* twoRunners()
      const id = yield* a.runner.start(Counter, { n: 1000, stepMs: 100 })
      const refused = yield* Effect.either(b.runner.forget(id))
      assert.isTrue(Either.isLeft(refused) && refused.left._tag === "TaskStillRunning")
      yield* a.runner.forget(id)
      const gone = yield* Effect.either(store.getInfo(id))
      assert.isTrue(Either.isLeft(gone) && gone.left._tag === "TaskNotFound")
      assert.strictEqual(entry(id).finalized, 1)
    })
  )

  it.scoped("list pages through tasks by status and kind", () =>
    withRunner((runner) =>
      Effect.gen(function* () {
        const ids = yield* Effect.forEach(
          Array.from({ length: 5 }, (_, k) => k),
          (k) => runner.start(Counter, { n: 2 }, { id: `list-${k}` })
        )
        yield* Effect.forEach(ids, (id) => runner.await(Counter, id))
        const page = yield* runner.list({ status: "completed", kind: "counter", limit: 3 })
        assert.deepStrictEqual(
          page.items.map((i) => i.id),
          ["list-0", "list-1", "list-2"]
        )
        const rest = yield* runner.list({ status: "completed", after: page.next })
        assert.deepStrictEqual(
          rest.items.map((i) => i.id),
          ["list-3", "list-4"]
        )
      })
    )
  )
})

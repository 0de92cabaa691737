/**
 * What the runner records and reports for every way a run ends, and for requests on tasks in every status: the stored
 * record's fields, the errors `await`/`result` give, the log lines it captures, and what it writes (or not).
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Either, Exit, Fiber, Logger, Option, Schema, Scope, TestClock } from "effect"
import { hostname } from "node:os"
import { Task, TaskStore } from "../src/index.js"
import { TaskStoreError } from "../src/TaskError.js"
import { Counter, entry } from "./fixtures/tasks.js"
import { buildRunner, type Store, storeCounter, twoRunners, waitUntil, withRunner } from "./helpers/runner.js"
import { bytes } from "./helpers/store.js"
import { warningCollector } from "./helpers/logs.js"

let counter = 0
const freshId = (prefix: string) => `${prefix}-${++counter}`

const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : Buffer.from(b).toString())

/** A one-shot task whose `run` is given. */
const oneShot = (
  name: string,
  run: (task: Task.Handle<{ readonly n: number }>) => Effect.Effect<any, any>,
  success: Task.AnySchema = Schema.Int
) =>
  Task.make({
    name,
    input: Schema.Struct({}),
    state: Schema.Struct({ n: Schema.Int }),
    success,
    initial: () => ({ n: 0 }),
    run: (_, task) => run(task)
  })

const failureOf = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.map(Effect.either(effect), (e) =>
    Either.isLeft(e) ? (e.left as { _tag: string; message: string }) : undefined
  )

describe("TaskRunner outcomes", () => {
  it.scoped("each way a run can fail is recorded with its kind and a one-line message; await reports it", () =>
    Effect.gen(function* () {
      const store = yield* TaskStore.makeMemory
      const BadResult = oneShot("bad-result", () => Effect.succeed(1.5))
      const StoreFails = oneShot("store-fails", () =>
        Effect.fail(new TaskStoreError({ reason: "Io", operation: "update", detail: "disk on fire" }))
      )
      const BadState = oneShot("bad-state", (task) => Effect.as(task.checkpoint({ n: 0.5 }), 1))
      const Undeclared = oneShot("undeclared", () => Effect.fail("plain string" as never))
      const Dies = oneShot("dies", () => Effect.die(new Error("first line\nsecond line")))
      // A definition whose `run` throws instead of returning an effect: its run ends, and is recorded, like any other.
      const Throws = oneShot("throws", () => {
        throw new Error("no effect made")
      })
      const tasks = [BadResult, StoreFails, BadState, Undeclared, Dies, Throws]
      const { runner, scope } = yield* buildRunner(store, { tasks })
      yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
      const expected: Array<readonly [Task.Any, string, RegExp]> = [
        [BadResult, "defect", /does not encode with its Schema/],
        [StoreFails, "store", /Task store update failed \(Io\): disk on fire/],
        [BadState, "defect", /The state of task .* does not encode/],
        [Undeclared, "defect", /plain string/],
        [Dies, "defect", /first line/],
        [Throws, "defect", /no effect made/]
      ]
      for (const [task, kind, message] of expected) {
        const id = yield* runner.start(task, {})
        const awaited = yield* failureOf(runner.await(task, id))
        // A run that a store failure ended gives its awaiter here that failure itself (with its path or server).
        assert.strictEqual(awaited?._tag, task === StoreFails ? "TaskStoreError" : "TaskDefect", task.name)
        assert.match(awaited!.message, message, task.name)
        const stored = yield* store.get(id)
        assert.strictEqual(stored.status, "failed", task.name)
        assert.strictEqual(stored.failure?.kind, kind, task.name)
        assert.match(stored.failure!.message, message, task.name)
        if (task === Dies) assert.notInclude(stored.failure!.message, "\n", "a defect is told in one line")
        assert.isDefined(stored.finishedAt, task.name)
        assert.isUndefined(stored.lease, task.name)
        assert.isUndefined(stored.error, task.name)
        assert.isUndefined(stored.result, task.name)
      }
    })
  )

  it.scoped("await and result on stored records of every status", () =>
    withRunner((runner, store) =>
      Effect.gen(function* () {
        yield* storeCounter(store, "done-no-result", { status: "completed" })
        yield* storeCounter(store, "failed-no-failure", { status: "failed" })
        yield* storeCounter(store, "failed-error-missing", {
          status: "failed",
          failure: { kind: "error", message: "m" }
        })
        yield* storeCounter(store, "paused-no-reason", { status: "paused" })
        yield* storeCounter(store, "cancelled", { status: "cancelled" })
        const noResult = yield* failureOf(runner.await(Counter, "done-no-result"))
        assert.strictEqual(noResult?._tag, "TaskDecodeError")
        assert.include(noResult?.message, "stored result")
        assert.include(noResult?.message, "holds no result")
        assert.include((yield* failureOf(runner.await(Counter, "failed-no-failure")))?.message, "unknown failure")
        assert.include((yield* failureOf(runner.await(Counter, "failed-error-missing")))?.message, "died: m")
        const paused = yield* failureOf(runner.await(Counter, "paused-no-reason"))
        assert.strictEqual(paused?._tag, "TaskPaused")
        assert.include(paused?.message, "(paused)")
        for (const [id, status] of [
          ["paused-no-reason", "paused"],
          ["cancelled", "cancelled"]
        ] as const) {
          const notDone = yield* failureOf(runner.result(Counter, id))
          assert.strictEqual(notDone?._tag, "TaskNotCompleted")
          assert.include(notDone?.message, `it is ${status}`)
        }
        const live = yield* runner.start(Counter, { n: 10, stepMs: 1000 })
        assert.include((yield* failureOf(runner.result(Counter, live)))?.message, "it is running")
        const final = yield* failureOf(runner.resume("cancelled"))
        assert.include(final?.message, "cancelled tasks are final")
        const completed = yield* failureOf(runner.resume("done-no-result"))
        assert.include(completed?.message, "it has completed; read its result instead")
      })
    )
  )

  it.scoped("stored bytes that do not decode are typed errors naming the task, its kind and the field", () =>
    withRunner((runner, store) =>
      Effect.gen(function* () {
        const garbage = bytes("not json")
        yield* storeCounter(store, "bad-result", { status: "completed", result: garbage })
        yield* storeCounter(store, "bad-error", {
          status: "failed",
          failure: { kind: "error", message: "m" },
          error: garbage
        })
        yield* storeCounter(store, "bad-input", { input: garbage })
        yield* storeCounter(store, "bad-state", { state: garbage })
        const cases = [
          ["bad-result", "result", runner.await(Counter, "bad-result")],
          ["bad-error", "error", runner.await(Counter, "bad-error")],
          ["bad-input", "input", runner.resume("bad-input")],
          ["bad-state", "state", runner.resume("bad-state")]
        ] as const
        for (const [id, field, effect] of cases) {
          const failed = yield* failureOf(effect as Effect.Effect<unknown, unknown>)
          assert.strictEqual(failed?._tag, "TaskDecodeError", id)
          const e = failed as unknown as { id: string; kind: string; field: string; found: string }
          assert.deepStrictEqual([e.id, e.kind, e.field], [id, "counter", field])
          assert.isString(e.found)
        }
      })
    )
  )

  it.scoped("a task read through another task's definition is a kind mismatch", () =>
    withRunner((runner, store) =>
      Effect.gen(function* () {
        yield* storeCounter(store, "a-counter", { status: "completed", result: bytes("45") })
        const Other = oneShot("other", () => Effect.succeed(1))
        for (const effect of [runner.await(Other, "a-counter"), runner.result(Other, "a-counter")]) {
          const failed = yield* failureOf(effect)
          assert.strictEqual(failed?._tag, "TaskKindMismatch")
          const e = failed as unknown as { id: string; expected: string; found: string }
          assert.deepStrictEqual([e.id, e.expected, e.found], ["a-counter", "other", "counter"])
        }
        assert.strictEqual(yield* runner.result(Counter, "a-counter"), 45)
        // The runner's list and logs are the store's.
        yield* store.appendLogs("a-counter", [{ time: 1, level: "INFO", message: "hello" }])
        assert.deepStrictEqual(
          (yield* runner.list({ status: "completed" })).items.map((i) => i.id),
          ["a-counter"]
        )
        assert.deepStrictEqual(
          (yield* runner.logs("a-counter")).map((l) => l.message),
          ["hello"]
        )
      })
    )
  )

  it.scoped("await of a pending task waits until some runner starts it", () =>
    withRunner((runner) =>
      Effect.gen(function* () {
        const id = yield* runner.submit(Counter, { n: 4 })
        const waiting = yield* Effect.fork(runner.await(Counter, id))
        yield* TestClock.adjust("1 minute")
        assert.isTrue(Option.isNone(yield* Fiber.poll(waiting)), "still waiting")
        yield* runner.resume(id)
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* Fiber.join(waiting), 6)
      })
    )
  )

  it.scoped("pause and cancel of tasks nobody runs, in every status", () =>
    withRunner((runner, store) =>
      Effect.gen(function* () {
        const now = yield* TestClock.currentTimeMillis
        for (const status of ["pending", "paused", "failed", "completed", "cancelled"] as const) {
          for (const verb of ["pause", "cancel"] as const) {
            const id = freshId(`${verb}-${status}`)
            const before = yield* storeCounter(store, id, { status })
            const after = yield* verb === "pause" ? runner.pause(id) : runner.cancel(id)
            const changes = verb === "pause" ? status === "pending" : status !== "completed" && status !== "cancelled"
            if (!changes) {
              assert.strictEqual(after.revision, before.revision, `${verb} of ${status} changes nothing`)
              continue
            }
            const expected = verb === "pause" ? "paused" : "cancelled"
            assert.strictEqual(after.status, expected, `${verb} of ${status}`)
            assert.strictEqual(after.reason, `${expected} on request`)
            assert.strictEqual(after.finishedAt, verb === "cancel" ? now : undefined)
            assert.strictEqual(after.updatedAt, now)
          }
        }
      })
    )
  )

  it.scoped("poll with resume starts pending, paused and stale tasks this runner knows, and nothing else", () =>
    withRunner((runner, store) =>
      Effect.gen(function* () {
        const now = yield* TestClock.currentTimeMillis
        const expired = { token: "t", holder: { host: "elsewhere", pid: 1, processStart: "1" }, expiresAt: now - 1 }
        const live = { token: "t", holder: { host: "elsewhere", pid: 1, processStart: "1" }, expiresAt: now + 60_000 }
        yield* storeCounter(store, "p-pending", { status: "pending" })
        yield* storeCounter(store, "p-paused", { status: "paused" })
        yield* storeCounter(store, "p-stale", { status: "running", lease: expired })
        yield* storeCounter(store, "p-live", { status: "running", lease: live })
        yield* storeCounter(store, "p-alien", { status: "paused", kind: "alien" })
        for (const id of ["p-pending", "p-paused", "p-stale"]) {
          const polled = yield* runner.poll(id, { resume: true })
          assert.strictEqual(polled.status, "running", id)
          assert.strictEqual(polled.lease?.holder.host, hostname(), id)
        }
        assert.strictEqual((yield* runner.poll("p-live", { resume: true })).lease?.holder.host, "elsewhere")
        assert.strictEqual((yield* runner.poll("p-alien", { resume: true })).status, "paused")
        assert.strictEqual((yield* runner.poll("p-paused")).status, "running")
        yield* TestClock.adjust("1 second")
        for (const id of ["p-pending", "p-paused", "p-stale"]) assert.strictEqual(yield* runner.await(Counter, id), 45)
      })
    )
  )

  it.scoped("a poll of a task running here is kept in memory and flushed with the next heartbeat", () =>
    withRunner((runner, store) =>
      Effect.gen(function* () {
        const id = yield* runner.start(Counter, { n: 1000, stepMs: 100, every: 100_000 })
        yield* TestClock.adjust("2500 millis")
        const before = yield* store.getInfo(id)
        const polledAt = yield* TestClock.currentTimeMillis
        const polled = yield* runner.poll(id)
        assert.isAbove(polled.progress.done, before.progress.done, "live progress, not the last flushed")
        assert.strictEqual((yield* store.getInfo(id)).revision, before.revision, "the poll itself wrote nothing")
        yield* TestClock.adjust("1 second")
        const after = yield* store.getInfo(id)
        assert.strictEqual(after.polledAt, polledAt)
      })
    )
  )

  it.scoped("the heartbeat writes what changed (message, total, logs) and otherwise only renews the lease", () =>
    withRunner(
      (runner, store) =>
        Effect.gen(function* () {
          const Quiet = oneShot("quiet", (task) =>
            Effect.gen(function* () {
              yield* Effect.sleep("4500 millis")
              yield* task.message("now moving")
              yield* Effect.sleep("2 seconds")
              yield* task.total(5)
              yield* Effect.sleep("2 seconds")
              yield* Effect.log("a line")
              yield* Effect.sleep("20 seconds")
              return 1
            })
          )
          const id = yield* runner.start(Quiet, {})
          const claimed = yield* store.getInfo(id)
          const writes = Effect.map(store.getInfo(id), (i) => i.revision - claimed.revision)
          yield* TestClock.adjust("4 seconds")
          assert.strictEqual(yield* writes, 0, "nothing changed, the lease is young: no write")
          yield* TestClock.adjust("1500 millis")
          assert.strictEqual(yield* writes, 1)
          assert.strictEqual((yield* store.getInfo(id)).progress.message, "now moving")
          yield* TestClock.adjust("2 seconds")
          assert.strictEqual(yield* writes, 2)
          assert.strictEqual((yield* store.getInfo(id)).progress.total, 5)
          yield* TestClock.adjust("2 seconds")
          assert.strictEqual(yield* writes, 3)
          assert.deepStrictEqual(
            (yield* store.readLogs(id)).map((l) => l.message),
            ["a line"]
          )
          yield* TestClock.adjust("8 seconds")
          assert.strictEqual(yield* writes, 3, "under 10 s (a third of the lease) since the last write: not renewed")
          yield* TestClock.adjust("2 seconds")
          assert.strictEqual(yield* writes, 4, "renewed")
          yield* TestClock.adjust("20 seconds")
          assert.strictEqual(yield* runner.await(Quiet, id), 1)
        }),
      { tasks: [] }
    )
  )

  it.scoped("a quiet task (nothing to write) still notices a takeover and requests from elsewhere", () =>
    Effect.gen(function* () {
      const { store, a, b } = yield* twoRunners()
      const Sleeper = oneShot("sleeper", () => Effect.as(Effect.sleep("1 hour"), 1))
      const taken = yield* a.runner.start(Sleeper, {})
      const paused = yield* a.runner.start(Sleeper, {})
      const cancelled = yield* a.runner.start(Sleeper, {})
      yield* TestClock.adjust("1500 millis")
      const info = yield* store.getInfo(taken)
      yield* store.update(taken, info.revision, {
        lease: { token: "theirs", holder: { host: "host-b", pid: 77, processStart: "1" }, expiresAt: 1e15 }
      })
      yield* b.runner.pause(paused)
      yield* b.runner.cancel(cancelled)
      yield* TestClock.adjust("1 second")
      yield* waitUntil(
        Effect.map(store.getInfo(cancelled), (i) => i.status === "cancelled"),
        "cancelled"
      )
      const after = yield* store.getInfo(taken)
      assert.deepStrictEqual([after.status, after.lease?.token], ["running", "theirs"])
      assert.strictEqual((yield* store.getInfo(paused)).reason, "paused on request")
      assert.strictEqual((yield* store.getInfo(cancelled)).reason, "cancelled on request")
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* store.getInfo(taken)).revision, after.revision, "the old owner stopped writing")
    })
  )

  it.scoped("log lines keep every part of a message and a cause; a failed flush keeps them for the next one", () =>
    Effect.gen(function* () {
      const memory = yield* TaskStore.makeMemory
      let failures = 1
      const flaky: Store = {
        ...memory,
        appendLogs: (...args) =>
          failures-- > 0
            ? Effect.fail(new TaskStoreError({ reason: "Unavailable", operation: "appendLogs", detail: "down" }))
            : memory.appendLogs(...args)
      }
      const Talks = oneShot("talks", () =>
        Effect.gen(function* () {
          yield* Effect.log("parts", 42, { a: 1 })
          yield* Effect.logError("went wrong", new Error("the cause"))
          yield* Effect.logWarning("with a cause", Cause.die(new Error("deep down")))
          yield* Effect.sleep("5 seconds")
          return 1
        })
      )
      const { runner, scope } = yield* buildRunner(flaky, { tasks: [Talks] })
      yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
      const id = yield* runner.start(Talks, {})
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* memory.readLogs(id), [], "the first flush failed")
      yield* TestClock.adjust("1 second")
      const lines = yield* memory.readLogs(id)
      assert.deepStrictEqual(
        lines.map((l) => l.level),
        ["INFO", "ERROR", "WARN"]
      )
      assert.match(lines[0]!.message, /^parts 42 \{\s*"a": 1\s*\}$/)
      assert.strictEqual(lines[1]!.message, "went wrong Error: the cause")
      assert.match(lines[2]!.message, /^with a cause Error: deep down/)
      yield* TestClock.adjust("5 seconds")
      yield* runner.await(Talks, id)
    })
  )

  it.scoped("a record deleted under a running task stops it and nothing is written again", () =>
    withRunner((runner, store) =>
      Effect.gen(function* () {
        const id = yield* runner.start(Counter, { n: 1000, stepMs: 100, every: 3 })
        yield* TestClock.adjust("250 millis")
        yield* store.delete(id)
        yield* TestClock.adjust("2 seconds")
        yield* waitUntil(
          Effect.sync(() => entry(id).finalized === 1),
          "stopped"
        )
        const gone = yield* Effect.either(store.getInfo(id))
        assert.isTrue(Either.isLeft(gone) && gone.left._tag === "TaskNotFound")
      })
    )
  )

  it.scoped("a runner whose lease was taken over warns with the new holder, and stops", () =>
    Effect.gen(function* () {
      const { warnings, collect } = warningCollector()
      yield* Effect.gen(function* () {
        const store = yield* TaskStore.makeMemory
        const a = yield* buildRunner(store, { host: "host-a", leaseDuration: "3 seconds" })
        const b = yield* buildRunner(store, { host: "host-b" })
        yield* Effect.addFinalizer(() =>
          Effect.zipRight(Scope.close(b.scope, Exit.void), Scope.close(a.scope, Exit.void))
        )
        const id = yield* a.runner.start(Counter, { n: 1000, stepMs: 100 })
        yield* TestClock.adjust("500 millis")
        // Another runner takes the record over behind a's back (as after a's lease had expired).
        const info = yield* store.getInfo(id)
        yield* store.update(id, info.revision, {
          lease: { token: "theirs", holder: { host: "host-b", pid: 77, processStart: "1" }, expiresAt: 1e15 }
        })
        yield* TestClock.adjust("2 seconds")
        yield* waitUntil(
          Effect.sync(() => entry(id).finalized === 1),
          "stopped"
        )
        assert.strictEqual((yield* store.getInfo(id)).lease?.token, "theirs", "nothing overwrote the new holder")
        assert.isTrue(
          warnings.some((w) => w.includes(`lost its lease on task "${id}" by pid 77 on host-b`)),
          warnings.join("\n")
        )
      }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, collect)))
    })
  )

  it.scoped("a runner that cannot renew its lease says so, and stops once it has expired", () =>
    Effect.gen(function* () {
      const { warnings, collect } = warningCollector()
      yield* Effect.gen(function* () {
        const memory = yield* TaskStore.makeMemory
        let broken = false
        const down = () =>
          Effect.fail(new TaskStoreError({ reason: "Unavailable", operation: "update", detail: "unreachable" }))
        const flaky: Store = {
          ...memory,
          update: (...args) => (broken ? down() : memory.update(...args)),
          getInfo: (id) => (broken ? down() : memory.getInfo(id))
        }
        const { runner, scope } = yield* buildRunner(flaky, { leaseDuration: "3 seconds" })
        yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
        const id = yield* runner.start(Counter, { n: 10_000, every: 1_000_000, stepMs: 100 })
        yield* TestClock.adjust("500 millis")
        broken = true
        yield* TestClock.adjust("2 seconds")
        assert.isTrue(
          warnings.some((w) => w === `Heartbeat of task ${id} failed; will retry`),
          warnings.join("\n")
        )
        assert.strictEqual(entry(id).finalized, 0)
        yield* TestClock.adjust("2 seconds")
        yield* waitUntil(
          Effect.sync(() => entry(id).finalized === 1),
          "stopped"
        )
        assert.isTrue(
          warnings.some((w) => w === `Could not renew the lease of task ${id} before it expired; stopping it here`),
          warnings.join("\n")
        )
      }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, collect)))
    })
  )

  it.scoped("tasks given to submit, start and run are learned: resume finds them by kind", () =>
    Effect.gen(function* () {
      const store = yield* TaskStore.makeMemory
      const { runner, scope } = yield* buildRunner(store, { tasks: [] })
      yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
      const id = yield* runner.submit(Counter, { n: 4 })
      assert.strictEqual((yield* store.getInfo(id)).status, "pending")
      yield* runner.resume(id)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* runner.await(Counter, id), 6)
    })
  )

  it.scoped("an unknown kind names the task and the registered kinds", () =>
    withRunner((runner, store) =>
      Effect.gen(function* () {
        yield* storeCounter(store, "alien-1", { kind: "alien" })
        const unknown = yield* failureOf(runner.resume("alien-1"))
        assert.strictEqual(unknown?._tag, "UnknownTaskKind")
        assert.include(unknown?.message, `Unknown task kind "alien" (task "alien-1")`)
      })
    )
  )

  it.scoped("interrupting the caller of run pauses the task with that reason", () =>
    withRunner((runner, store) =>
      Effect.gen(function* () {
        const id = freshId("caller")
        const fiber = yield* Effect.fork(runner.run(Counter, { n: 100, stepMs: 100 }, { id }))
        yield* TestClock.adjust("300 millis")
        yield* Fiber.interrupt(fiber)
        const info = yield* store.getInfo(id)
        assert.deepStrictEqual([info.status, info.reason], ["paused", "the caller of run was interrupted"])
      })
    )
  )

  it.scoped("forget of a task running here cancels it first; of a finished one deletes it and its logs", () =>
    withRunner((runner, store) =>
      Effect.gen(function* () {
        const id = yield* runner.start(Counter, { n: 100, stepMs: 100, logEach: true })
        yield* TestClock.adjust("1500 millis")
        yield* runner.forget(id)
        assert.strictEqual(entry(id).interrupted, 1)
        assert.isTrue(Either.isLeft(yield* Effect.either(store.getInfo(id))))
        assert.deepStrictEqual(yield* store.readLogs(id), [])
        const done = yield* runner.start(Counter, { n: 2 })
        yield* runner.await(Counter, done)
        yield* runner.forget(done)
        assert.isTrue(Either.isLeft(yield* Effect.either(store.getInfo(done))))
      })
    )
  )

  it.scoped("a resumed task keeps its first start time and counts its attempts", () =>
    withRunner((runner, store) =>
      Effect.gen(function* () {
        const id = yield* runner.start(Counter, { n: 100, stepMs: 100 })
        const started = (yield* store.getInfo(id)).startedAt
        yield* TestClock.adjust("1 second")
        yield* runner.pause(id)
        yield* TestClock.adjust("1 second")
        const resumed = yield* runner.resume(id)
        assert.strictEqual(resumed.startedAt, started)
        assert.strictEqual(resumed.attempts, 2)
        assert.strictEqual(text((yield* store.get(id)).state), JSON.stringify({ i: 10, sum: 45 }))
        yield* runner.cancel(id)
      })
    )
  )

  it.scoped("a resume of a task already running here returns it as it is", () =>
    withRunner((runner) =>
      Effect.gen(function* () {
        const id = yield* runner.start(Counter, { n: 100, stepMs: 100 })
        yield* TestClock.adjust("300 millis")
        const again = yield* runner.resume(id)
        assert.strictEqual(again.status, "running")
        assert.deepStrictEqual(entry(id).starts, [0])
        yield* runner.cancel(id)
      })
    )
  )

  it.scoped("interest timeout: the reason says for how long nobody polled", () =>
    withRunner(
      (runner, store) =>
        Effect.gen(function* () {
          const id = yield* runner.start(Counter, { n: 1000, stepMs: 100 })
          yield* TestClock.adjust("5 seconds")
          yield* waitUntil(
            Effect.map(store.getInfo(id), (i) => i.status === "paused"),
            "paused"
          )
          assert.strictEqual((yield* store.getInfo(id)).reason, "nobody polled it for 4s")
        }),
      { interestTimeout: "3500 millis" }
    )
  )

  it.scoped("progress(n) adds n, progress() one; setDone sets; task.state follows checkpoints; no logs, no lines", () =>
    withRunner(
      (runner, store) =>
        Effect.gen(function* () {
          const seen: Array<number> = []
          const Steps = oneShot("steps", (task) =>
            Effect.gen(function* () {
              yield* task.progress(5)
              yield* task.progress()
              yield* task.progress(1)
              seen.push(task.counter.done)
              task.setDone(40)
              task.advance(2)
              seen.push(task.counter.done)
              yield* task.checkpoint({ n: 7 })
              seen.push(task.state.n)
              return 1
            })
          )
          const id = yield* runner.start(Steps, {})
          assert.strictEqual(yield* runner.await(Steps, id), 1)
          assert.deepStrictEqual(seen, [7, 42, 7])
          assert.strictEqual((yield* store.getInfo(id)).progress.done, 42)
          assert.deepStrictEqual(yield* store.readLogs(id), [])
        }),
      { tasks: [] }
    )
  )

  it.scoped("log lines beyond keepLogs are dropped across flushes too", () =>
    withRunner(
      (runner, store) =>
        Effect.gen(function* () {
          const Chatty = oneShot("chatty", () =>
            Effect.gen(function* () {
              for (let k = 0; k < 8; k++) {
                yield* Effect.log(`line ${k}`)
                yield* Effect.sleep("500 millis")
              }
              return 1
            })
          )
          const id = yield* runner.start(Chatty, {})
          yield* TestClock.adjust("10 seconds")
          yield* runner.await(Chatty, id)
          assert.deepStrictEqual(
            (yield* store.readLogs(id)).map((l) => l.message),
            ["line 5", "line 6", "line 7"]
          )
        }),
      { tasks: [], keepLogs: 3 }
    )
  )

  it.scoped("a task running elsewhere is not resumable: the message names its holder and when its lease expires", () =>
    withRunner((runner, store) =>
      Effect.gen(function* () {
        const now = yield* TestClock.currentTimeMillis
        yield* storeCounter(store, "elsewhere", {
          status: "running",
          lease: { token: "t", holder: { host: "far", pid: 4242, processStart: "1" }, expiresAt: now + 90_000 }
        })
        const refused = yield* failureOf(runner.resume("elsewhere"))
        assert.include(refused?.message, "it is running in pid 4242 on far; its lease expires in 1m 30s")
        const forget = yield* failureOf(runner.forget("elsewhere"))
        assert.strictEqual(forget?._tag, "TaskStillRunning")
        assert.include(forget?.message, "pid 4242 on far; its lease expires in 1m 30s")
      })
    )
  )

  it.scoped("two runners resuming one task at once: exactly one runs it, the other is told it is running", () =>
    Effect.gen(function* () {
      const memory = yield* TaskStore.makeMemory
      // Every update lets other fibers run first, so the two resumes interleave between read and write.
      const slow: Store = { ...memory, update: (...args) => Effect.zipRight(Effect.yieldNow(), memory.update(...args)) }
      const a = yield* buildRunner(slow, { host: "host-a" })
      const b = yield* buildRunner(slow, { host: "host-b" })
      yield* Effect.addFinalizer(() =>
        Effect.zipRight(Scope.close(a.scope, Exit.void), Scope.close(b.scope, Exit.void))
      )
      yield* storeCounter(memory, "contended", { status: "paused" })
      const results = yield* Effect.all(
        [Effect.either(a.runner.resume("contended")), Effect.either(b.runner.resume("contended"))],
        { concurrency: 2 }
      )
      assert.deepStrictEqual(results.map((r) => (Either.isLeft(r) ? r.left._tag : "resumed")).sort(), [
        "TaskNotResumable",
        "resumed"
      ])
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(entry("contended").starts, [0])
    })
  )

  it.scoped("run with the id of a stored task of a kind the runner did not know resumes it", () =>
    Effect.gen(function* () {
      const store = yield* TaskStore.makeMemory
      const { runner, scope } = yield* buildRunner(store, { tasks: [] })
      yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
      yield* storeCounter(store, "known-later", { status: "paused", input: bytes(JSON.stringify({ n: 3 })) })
      const done = yield* Effect.fork(runner.run(Counter, { n: 3 }, { id: "known-later" }))
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Fiber.join(done), 3)
    })
  )
})

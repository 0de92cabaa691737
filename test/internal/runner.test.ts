/**
 * The runner's engine, part by part where the whole runner cannot time the case: a stop that arrives before the task's
 * fiber exists, and a write that keeps conflicting while the lease is still ours.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Option } from "effect"
import { hostname } from "node:os"
import * as AtOnce from "../../src/internal/atOnce.js"
import * as Engine from "../../src/internal/runner/engine.js"
import * as FencedWrite from "../../src/internal/runner/fencedWrite.js"
import { Running } from "../../src/internal/runner/running.js"
import { Holder, Lease, Progress, TaskStore } from "../../src/index.js"
import { InvalidTaskId, RevisionConflict, TaskStoreError } from "../../src/TaskError.js"
import type * as TaskRecord from "../../src/TaskRecord.js"
import { Counter } from "../fixtures/tasks.js"
import { deadPid } from "../helpers/child.js"
import { buildRunner } from "../helpers/runner.js"
import { bytes } from "../helpers/store.js"

const info: TaskRecord.TaskInfo = {
  id: "t",
  kind: Counter.name,
  status: "running",
  revision: 1,
  progress: { done: 0 },
  attempts: 1,
  createdAt: 0,
  updatedAt: 0
}

const running = (token = "token") =>
  Effect.sync(() =>
    Running.make({
      id: "t",
      task: Counter,
      token,
      leaseMs: 30_000,
      interestMs: undefined,
      startedAt: 0,
      tracker: new Progress.Tracker(),
      info,
      byWorker: false
    })
  )

describe("runner engine", () => {
  it.live("a stop requested before the task's fiber is attached is delivered when it is", () =>
    Effect.gen(function* () {
      for (const kind of ["pause", "cancel"] as const) {
        const r = yield* running()
        yield* r.requestStop({ kind, reason: "early" })
        const fiber = yield* Effect.fork(Effect.never)
        yield* r.attach(fiber)
        const exit = yield* Fiber.await(fiber).pipe(
          Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => "undelivered" })
        )
        assert.isTrue(Exit.isInterrupted(exit), `${kind} before attach interrupts the fiber once it is attached`)
        assert.deepStrictEqual(r.stop, { kind, reason: "early" })
      }
    })
  )

  it.effect(
    "a later, weaker stop neither replaces the first nor interrupts again; losing the lease outranks both",
    () =>
      Effect.gen(function* () {
        const r = yield* running()
        const fiber = yield* Effect.fork(Effect.never)
        yield* r.attach(fiber)
        yield* r.requestStop({ kind: "cancel", reason: "first" })
        yield* r.requestStop({ kind: "pause", reason: "second" })
        assert.deepStrictEqual(r.stop, { kind: "cancel", reason: "first" })
        assert.isTrue(r.holdsLease)
        yield* r.requestStop({ kind: "lost" })
        assert.isFalse(r.holdsLease)
        assert.isTrue(Exit.isInterrupted(yield* Fiber.await(fiber)))
      })
  )

  it.scoped(
    "a write whose record keeps changing gives up after a bounded number of conflicts, with a store error",
    () =>
      Effect.gen(function* () {
        const memory = yield* TaskStore.makeMemory
        const lease = Lease.make(Holder.self(), 0, 30_000)
        yield* memory.create({ ...info, status: "running", lease, input: bytes("{}") })
        let updates = 0
        const churning: TaskStore.Service = {
          ...memory,
          // Every compare-and-swap loses to another writer, and the record still holds this runner's lease.
          update: (id, expected) =>
            Effect.suspend(() => {
              updates++
              return Effect.fail(new RevisionConflict({ id, expected, found: expected + 1 }))
            })
        }
        const engine = yield* Engine.make({ tasks: [Counter] }).pipe(
          Effect.provide(Layer.succeed(TaskStore.TaskStore, churning))
        )
        const r = yield* running(lease.token)
        const error = yield* Effect.flip(FencedWrite.write(engine, r, () => ({ progress: { done: 1 } })))
        assert.strictEqual(error._tag, "TaskStoreError")
        assert.strictEqual(updates, FencedWrite.maxConflictRetries + 1)
        assert.match(error.message, /changed under 33 writes in a row/)
      })
  )

  it.scoped(
    "a write is made at once only where the store can, while no other write holds the lock and the lease is ours",
    () =>
      Effect.gen(function* () {
        const memory = yield* TaskStore.makeMemory
        const lease = Lease.make(Holder.self(), 0, 30_000)
        yield* memory.create({ ...info, status: "running", lease, input: bytes("{}") })
        const engine = yield* Engine.make({ tasks: [Counter] }).pipe(
          Effect.provide(Layer.succeed(TaskStore.TaskStore, memory))
        )
        const r = yield* running(lease.token)
        const patch = (done: number) => () => ({ progress: { done } })
        const written = FencedWrite.writeAtOnce(engine, r, patch(1), 7) as TaskRecord.TaskInfo | undefined
        assert.strictEqual(written?.revision, 2)
        assert.deepStrictEqual([r.info, r.renewedAt], [written, 7])
        assert.strictEqual((yield* memory.getInfo("t")).progress.done, 1)

        // Another write of the task holds its lock (a control write, a beat): not at once.
        const inside = yield* Deferred.make<void>()
        const leave = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(
          r.lock.with(Effect.zipRight(Deferred.succeed(inside, undefined), Deferred.await(leave)))
        )
        yield* Deferred.await(inside)
        assert.isUndefined(FencedWrite.writeAtOnce(engine, r, patch(2), 8))
        yield* Deferred.succeed(leave, undefined)
        yield* Fiber.join(holder)
        assert.strictEqual((FencedWrite.writeAtOnce(engine, r, patch(3), 9) as TaskRecord.TaskInfo).revision, 3)

        // A large state goes the effect way (it keeps peak memory lower, and at once saves nothing that counts).
        const large = () => ({ progress: { done: 3 }, state: new Uint8Array(1024 * 1024 + 1) })
        assert.isUndefined(FencedWrite.writeAtOnce(engine, r, large, 9))
        assert.strictEqual((yield* memory.getInfo("t")).revision, 3)

        // The record moved under it (a request from another process): nothing written, the effect path re-reads.
        yield* memory.update("t", 3, { interrupt: "pause" })
        assert.isUndefined(FencedWrite.writeAtOnce(engine, r, patch(4), 10))
        assert.strictEqual((yield* memory.getInfo("t")).progress.done, 3)

        // A store in another layer's wrapping has no write at once; nor does a runner that lost its lease.
        const wrapped = yield* Engine.make({ tasks: [Counter] }).pipe(
          Effect.provide(Layer.succeed(TaskStore.TaskStore, { ...memory }))
        )
        r.info = yield* memory.getInfo("t")
        assert.isUndefined(FencedWrite.writeAtOnce(wrapped, r, patch(5), 11))
        yield* r.requestStop({ kind: "lost" })
        assert.isUndefined(FencedWrite.writeAtOnce(engine, r, patch(6), 12))
        assert.strictEqual((yield* memory.getInfo("t")).revision, 4, "none of those wrote")
      })
  )

  it.scopedLive(
    "a write at once that fails goes on as a failed write: reported, or ridden out, not made again at once",
    () =>
      Effect.gen(function* () {
        const memory = yield* TaskStore.makeMemory
        const lease = Lease.make(Holder.self(), Date.now(), 30_000)
        yield* memory.create({ ...info, status: "running", lease, input: bytes("{}") })
        for (const reason of ["Io", "Unavailable"] as const) {
          let atOnce = 0
          let updates = 0
          const failing = AtOnce.registerWrite(
            {
              ...memory,
              update: (id: string, expected: number, patch: TaskRecord.TaskPatch) =>
                Effect.suspend(() => {
                  updates++
                  return memory.update(id, expected, patch)
                })
            },
            () => {
              atOnce++
              return new TaskStoreError({ reason, operation: "update", detail: "failed at once" })
            }
          )
          const engine = yield* Engine.make({ tasks: [Counter] }).pipe(
            Effect.provide(Layer.succeed(TaskStore.TaskStore, failing))
          )
          const r = yield* running(lease.token)
          r.info = yield* memory.getInfo("t")
          const written = yield* Effect.either(
            FencedWrite.writeThroughOutages(engine, r, () => ({ progress: { done: 1 } }))
          )
          assert.strictEqual(atOnce, 1, `${reason}: tried at once once`)
          if (reason === "Io") {
            // A store that answered with a failure of its own: the write fails with it, nothing is tried again.
            assert.isTrue(written._tag === "Left" && written.left._tag === "TaskStoreError")
            assert.strictEqual(updates, 0)
          } else {
            // An unreachable store: ridden out the effect way, which goes through here.
            assert.isTrue(written._tag === "Right")
            assert.strictEqual(updates, 1)
          }
        }
      })
  )

  it.scoped(
    "a write issued at once holds the task's lock until the store answers, and the runner goes on from the answer",
    () =>
      Effect.gen(function* () {
        const memory = yield* TaskStore.makeMemory
        const lease = Lease.make(Holder.self(), Date.now(), 30_000)
        yield* memory.create({ ...info, status: "running", lease, input: bytes("{}") })
        const writeNow = AtOnce.writeOf(memory)!
        let issued = 0
        let updates = 0
        let answer: (reply?: TaskRecord.TaskInfo | TaskStoreError | undefined) => void = () => {}
        // A store that answers when the test says: with the write made then, or with the reply given.
        const later = AtOnce.registerWriteAsync(
          {
            ...memory,
            update: (id: string, expected: number, patch: TaskRecord.TaskPatch) =>
              Effect.suspend(() => {
                updates++
                return memory.update(id, expected, patch)
              })
          },
          (id, expected, patch) => {
            issued++
            return new Promise((resolve) => {
              answer = (...reply) => resolve(reply.length === 0 ? writeNow(id, expected, patch) : reply[0])
            })
          }
        )
        const engine = yield* Engine.make({ tasks: [Counter] }).pipe(
          Effect.provide(Layer.succeed(TaskStore.TaskStore, later))
        )
        const r = yield* running(lease.token)
        r.info = yield* memory.getInfo("t")
        const issue = (done: number) =>
          Effect.gen(function* () {
            const before = issued
            const fiber = yield* Effect.fork(FencedWrite.writeThroughOutages(engine, r, () => ({ progress: { done } })))
            while (issued === before) yield* Effect.yieldNow()
            return fiber
          })

        // Answered with the write made: the metadata is the runner's; the lock was held until then.
        let fiber = yield* issue(1)
        assert.isTrue(r.lock.isHeld, "held while the store has not answered")
        assert.isTrue(Option.isNone(yield* r.lock.ifFree(Effect.void)), "a beat meanwhile skips")
        answer()
        const written = yield* Fiber.join(fiber)
        assert.strictEqual(written.revision, 2)
        assert.deepStrictEqual(r.info, written)
        assert.isFalse(r.lock.isHeld)

        // Interrupted before the answer: the lock stays held, and the metadata is kept, once the answer comes.
        fiber = yield* issue(2)
        yield* Fiber.interrupt(fiber)
        assert.isTrue(r.lock.isHeld)
        answer()
        yield* Effect.promise(() => Promise.resolve())
        assert.isFalse(r.lock.isHeld)
        assert.strictEqual(r.info.revision, 3)
        assert.strictEqual(r.info.progress.done, 2)

        // Not made (the record moved): the effect path writes it, through update.
        fiber = yield* issue(3)
        answer(undefined)
        assert.strictEqual((yield* Fiber.join(fiber)).revision, 4)
        assert.strictEqual(updates, 1)

        // A failure of the store's own: the write fails with it, and nothing is tried again.
        fiber = yield* issue(4)
        answer(new TaskStoreError({ reason: "Io", operation: "update", detail: "failed when answered" }))
        const failed = yield* Effect.flip(Fiber.join(fiber))
        assert.strictEqual(failed._tag, "TaskStoreError")
        assert.strictEqual(updates, 1)
        assert.strictEqual((yield* memory.getInfo("t")).revision, 4)
      })
  )

  it.scoped("staleness is judged from the runner's own host: a dead pid under another host name proves nothing", () =>
    Effect.gen(function* () {
      const held = {
        ...info,
        lease: { token: "x", holder: { host: hostname(), pid: deadPid(), processStart: "1" }, expiresAt: 60_000 }
      }
      const memory = yield* TaskStore.makeMemory
      const here = (yield* buildRunner(memory)).runner
      const elsewhere = (yield* buildRunner(memory, { host: "another-host" })).runner
      assert.isTrue(here.isStale(held, 0), "its holder's process is gone on this host")
      assert.isFalse(elsewhere.isStale(held, 0), "a runner calling itself another host cannot see that")
    })
  )

  it.scoped(
    "a lease this process signed and none of its runners holds is stale at once; one a runner here holds is not",
    () =>
      Effect.gen(function* () {
        const memory = yield* TaskStore.makeMemory
        const a = (yield* buildRunner(memory)).runner
        const b = (yield* buildRunner(memory)).runner
        // Left behind by a run of this process that ended without clearing it (its store write failed).
        const abandoned = Lease.make(Holder.self(), 0, 60 * 60_000)
        yield* memory.create({
          ...info,
          id: "abandoned",
          status: "running",
          lease: abandoned,
          input: bytes('{"n":3,"stepMs":100000}')
        })
        const record = yield* memory.getInfo("abandoned")
        assert.isTrue(a.isStale(record, 0), "not waited out for an hour")
        const resumed = yield* a.resume("abandoned")
        assert.strictEqual(resumed.status, "running")
        assert.notStrictEqual(resumed.lease?.token, abandoned.token)
        // The same process, another runner: the lease the first one now holds is alive.
        assert.isFalse(b.isStale(resumed, 0))
        const refused = yield* Effect.either(b.resume("abandoned"))
        assert.isTrue(refused._tag === "Left" && refused.left._tag === "TaskNotResumable")
      })
  )

  it.scoped("a poll that would resume a task it cannot decode fails and changes nothing", () =>
    Effect.gen(function* () {
      const memory = yield* TaskStore.makeMemory
      const runner = (yield* buildRunner(memory)).runner
      yield* memory.create({ ...info, id: "garbled", status: "paused", input: bytes("not json") })
      const before = yield* memory.getInfo("garbled")
      const polled = yield* Effect.either(runner.poll("garbled", { resume: true }))
      assert.isTrue(polled._tag === "Left" && polled.left._tag === "TaskDecodeError")
      assert.deepStrictEqual(yield* memory.getInfo("garbled"), before, "no poll time written")
    })
  )

  it("an invalid id is cut in messages", () => {
    const long = "x".repeat(10_000) + "/"
    const message = new InvalidTaskId({ id: long, reason: "it contains '/'" }).message
    assert.isBelow(message.length, 400)
    assert.include(message, "(10001 characters)")
  })

  it.scoped("run with the id of an existing task and another input is refused; the same input returns its result", () =>
    Effect.gen(function* () {
      const memory = yield* TaskStore.makeMemory
      const runner = (yield* buildRunner(memory)).runner
      const first = yield* runner.run(Counter, { n: 3 }, { id: "same" })
      const other = yield* Effect.either(runner.run(Counter, { n: 4 }, { id: "same" }))
      assert.isTrue(other._tag === "Left" && other.left._tag === "TaskInputMismatch")
      if (other._tag === "Left") assert.include(other.left.message, 'stored: {"n":3}; given: {"n":4}')
      assert.deepStrictEqual(yield* runner.run(Counter, { n: 3 }, { id: "same" }), first)
    })
  )
})

/**
 * Child tasks (`task.child`) in one process: fan-out under a concurrency bound, re-attaching on a resume (completed
 * children are not run again, the others resume from their checkpoints), typed failures, pause and cancel reaching
 * the children, progress rolled up by weight, and a family listed and deleted together.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, Exit, Fiber, Schedule, Schema, Scope } from "effect"
import { Task, TaskStore } from "../src/index.js"
import type * as TaskRecord from "../src/TaskRecord.js"
import { buildRunner, waitUntil } from "./helpers/runner.js"

class Boom extends Schema.TaggedError<Boom>()("Boom", { shard: Schema.Int }) {}

/** Runs of each child id, and the step each run started from. */
const runs = new Map<string, Array<number>>()
/** How many shards run at this moment, and the most that ever ran at once. */
let running = 0
let mostAtOnce = 0
/** Shards with `hold` wait for this latch before their last step (opened by each test that uses it). */
let gate = Effect.runSync(Effect.makeLatch(false))

/** `steps` steps of 5 ms, a checkpoint after each; the sum of its steps' numbers. Fails when asked to. */
const Shard = Task.make({
  name: "shard",
  input: Schema.Struct({
    shard: Schema.Int,
    steps: Schema.Int,
    fail: Schema.optional(Schema.Boolean),
    hold: Schema.optional(Schema.Int)
  }),
  state: Schema.Struct({ step: Schema.Int, sum: Schema.Int }),
  success: Schema.Int,
  error: Boom,
  initial: () => ({ step: 0, sum: 0 }),
  run: (input, task) =>
    Effect.gen(function* () {
      runs.set(task.id, [...(runs.get(task.id) ?? []), task.state.step])
      yield* task.total(input.steps)
      task.setDone(task.state.step)
      let { step, sum } = task.state
      while (step < input.steps) {
        if (input.hold !== undefined && step === input.hold) yield* gate.await
        yield* Effect.sleep("5 millis")
        sum += step * (input.shard + 1)
        step++
        yield* task.progress(1)
        yield* task.checkpoint({ step, sum })
      }
      if (input.fail === true) return yield* new Boom({ shard: input.shard })
      return sum
    }).pipe((effect) =>
      Effect.acquireUseRelease(
        Effect.sync(() => {
          running++
          mostAtOnce = Math.max(mostAtOnce, running)
        }),
        () => effect,
        () => Effect.sync(() => running--)
      )
    )
})

/** Fans out over `shards` shards, `concurrency` at a time; the sum of their results. */
const Fan = Task.make({
  name: "fan",
  input: Schema.Struct({
    shards: Schema.Int,
    steps: Schema.Int,
    concurrency: Schema.Int,
    failShard: Schema.optional(Schema.Int),
    catchFailure: Schema.optional(Schema.Boolean),
    hold: Schema.optional(Schema.Int),
    weight: Schema.optional(Schema.Number),
    queue: Schema.optional(Schema.Boolean)
  }),
  state: Schema.Struct({}),
  success: Schema.Int,
  error: Boom,
  initial: () => ({}),
  run: (input, task) =>
    Effect.gen(function* () {
      const results = yield* Effect.forEach(
        Array.from({ length: input.shards }, (_, shard) => shard),
        (shard) => {
          const child = task.child(
            Shard,
            {
              shard,
              steps: input.steps,
              ...(shard === input.failShard ? { fail: true } : {}),
              ...(input.hold === undefined || shard === input.failShard ? {} : { hold: input.hold })
            },
            {
              key: `shard-${shard}`,
              ...(input.weight === undefined ? {} : { weight: input.weight }),
              ...(input.queue === true ? { queue: true } : {})
            }
          )
          return input.catchFailure === true ? Effect.catchTag(child, "Boom", () => Effect.succeed(-1000)) : child
        },
        { concurrency: input.concurrency }
      )
      return results.reduce((a, b) => a + b, 0)
    })
})

/** Fails its first attempt with a typed error, then succeeds; its retry policy tries again after 20 ms. */
const FlakyChild = Task.make({
  name: "flaky-child",
  input: Schema.Struct({}),
  state: Schema.Struct({}),
  success: Schema.Int,
  error: Boom,
  initial: () => ({}),
  retry: { times: 2, schedule: Schedule.spaced("20 millis") },
  run: (_, task) => (task.attempt === 1 ? Effect.fail(new Boom({ shard: -1 })) : Effect.succeed(task.attempt))
})

const WaitsForFlaky = Task.make({
  name: "waits-for-flaky",
  input: Schema.Struct({}),
  state: Schema.Struct({}),
  success: Schema.Int,
  error: Boom,
  initial: () => ({}),
  run: (_, task) => task.child(FlakyChild, {}, { key: "flaky" })
})

/** What `shards` shards of `steps` steps return in all, run without interruption. */
const expected = (shards: number, steps: number) => {
  let total = 0
  for (let shard = 0; shard < shards; shard++) for (let step = 0; step < steps; step++) total += step * (shard + 1)
  return total
}

const setup = Effect.gen(function* () {
  runs.clear()
  running = 0
  mostAtOnce = 0
  gate = yield* Effect.makeLatch(false)
  const store = yield* TaskStore.makeMemory
  const { runner } = yield* buildRunner(store, { tasks: [Fan, Shard] })
  return { runner, store }
})

describe("child tasks", () => {
  it.live("fan out: each child a task of its own, at most `concurrency` at once, the parent gets their results", () =>
    Effect.gen(function* () {
      const { runner } = yield* setup
      const value = yield* runner.run(Fan, { shards: 5, steps: 4, concurrency: 2 }, { id: "fan-1" })
      assert.strictEqual(value, expected(5, 4))
      assert.strictEqual(mostAtOnce, 2)
      const children = (yield* runner.list({ parent: "fan-1" })).items
      assert.deepStrictEqual(
        children.map((c) => [c.id, c.kind, c.status, c.parent]),
        [0, 1, 2, 3, 4].map((s) => [`fan-1.shard-${s}`, "shard", "completed", "fan-1"])
      )
      // Each child's result is stored with it, readable on its own.
      assert.strictEqual(yield* runner.result(Shard, "fan-1.shard-1"), expected(1, 4) * 2)
      // The parent's progress is its children's, rolled up: 5 x 4 steps, all done.
      const parent = yield* runner.status("fan-1")
      assert.strictEqual(parent.progress.done, 20)
      assert.strictEqual(parent.progress.total, 20)
      // Unrelated tasks are not in the family.
      assert.strictEqual((yield* runner.list({ parent: "fan-1.shard-0" })).items.length, 0)
    })
  )

  it.live(
    "a resumed parent re-attaches: completed children are not run again, the others resume from checkpoints",
    () =>
      Effect.gen(function* () {
        const { runner } = yield* setup
        // Shards 0 and 1 run first (concurrency 2) and stop at step 3 of 6 until the gate opens.
        yield* runner.start(Fan, { shards: 4, steps: 6, concurrency: 2, hold: 3 }, { id: "fan-2" })
        yield* waitUntil(
          Effect.map(
            runner.list({ parent: "fan-2" }),
            (p) => p.items.filter((c) => c.status === "running").length === 2
          ),
          "two children run",
          { live: true }
        )
        yield* Effect.sleep("100 millis")
        yield* runner.pause("fan-2")
        const paused = (yield* runner.list({ parent: "fan-2" })).items
        assert.deepStrictEqual(
          paused.map((c) => [c.id, c.status, c.reason]),
          [0, 1].map((s) => [`fan-2.shard-${s}`, "paused", "its parent fan-2 was paused"])
        )
        assert.strictEqual((yield* runner.status("fan-2")).status, "paused")
        // Let the first two finish on the resume, and the others pass step 3 at once.
        yield* gate.open
        yield* runner.resume("fan-2")
        const value = yield* runner.await(Fan, "fan-2").pipe(Effect.timeout("10 seconds"))
        assert.strictEqual(value, expected(4, 6))
        // Shards 0 and 1: a first run, then one resume from their checkpoint at step 3. Shards 2 and 3: one run.
        assert.deepStrictEqual(runs.get("fan-2.shard-0"), [0, 3])
        assert.deepStrictEqual(runs.get("fan-2.shard-1"), [0, 3])
        assert.deepStrictEqual(runs.get("fan-2.shard-2"), [0])
        assert.deepStrictEqual(runs.get("fan-2.shard-3"), [0])
        // Run again by id: the parent's stored result; no child runs again.
        assert.strictEqual(
          yield* runner.run(Fan, { shards: 4, steps: 6, concurrency: 2, hold: 3 }, { id: "fan-2" }),
          expected(4, 6)
        )
        assert.deepStrictEqual(runs.get("fan-2.shard-2"), [0])
      })
  )

  it.live("a completed child is not run again when its parent runs it again after a failure", () =>
    Effect.gen(function* () {
      const { runner } = yield* setup
      const failed = yield* Effect.either(
        runner.run(Fan, { shards: 3, steps: 2, concurrency: 1, failShard: 1 }, { id: "fan-3" })
      )
      // The child's typed error reaches the parent's caller as the parent's typed error.
      assert.deepStrictEqual(failed, Either.left(new Boom({ shard: 1 })))
      const info = yield* runner.status("fan-3")
      assert.strictEqual(info.status, "failed")
      assert.strictEqual(info.failure?.kind, "error")
      assert.strictEqual((yield* runner.status("fan-3.shard-1")).status, "failed")
      // Shard 2 never started: forEach stops at the first failure.
      assert.isUndefined(runs.get("fan-3.shard-2"))
      // Resuming the parent resumes the failed child from its checkpoint (and it fails again); shard 0 is not re-run.
      yield* runner.resume("fan-3")
      assert.deepStrictEqual(yield* Effect.either(runner.await(Fan, "fan-3")), Either.left(new Boom({ shard: 1 })))
      assert.deepStrictEqual(runs.get("fan-3.shard-0"), [0])
      assert.deepStrictEqual(runs.get("fan-3.shard-1"), [0, 2])
    })
  )

  it.live("a child's failure stops its parent waiting for the others: they pause, and say why", () =>
    Effect.gen(function* () {
      const { runner } = yield* setup
      const failed = yield* Effect.either(
        runner.run(Fan, { shards: 3, steps: 4, concurrency: 3, failShard: 0, hold: 1 }, { id: "fan-11" })
      )
      assert.deepStrictEqual(failed, Either.left(new Boom({ shard: 0 })))
      assert.deepStrictEqual(
        (yield* runner.list({ parent: "fan-11" })).items.map((c) => [c.status, c.reason ?? ""]),
        [
          ["failed", ""],
          ["paused", "its parent fan-11 stopped waiting for it"],
          ["paused", "its parent fan-11 stopped waiting for it"]
        ]
      )
    })
  )

  it.live("a parent that catches its child's typed error completes", () =>
    Effect.gen(function* () {
      const { runner } = yield* setup
      const value = yield* runner.run(Fan, { shards: 3, steps: 2, concurrency: 3, failShard: 2, catchFailure: true })
      assert.strictEqual(value, expected(2, 2) - 1000)
    })
  )

  it.live("cancelling the parent cancels its running children; the family is deleted together", () =>
    Effect.gen(function* () {
      const { runner, store } = yield* setup
      yield* runner.start(Fan, { shards: 3, steps: 6, concurrency: 3, hold: 2 }, { id: "fan-4" })
      yield* waitUntil(
        Effect.map(runner.list({ parent: "fan-4" }), (p) => p.items.filter((c) => c.status === "running").length === 3),
        "three children run",
        { live: true }
      )
      const info = yield* runner.cancel("fan-4")
      assert.strictEqual(info.status, "cancelled")
      const children = (yield* runner.list({ parent: "fan-4" })).items
      assert.deepStrictEqual(
        children.map((c) => [c.status, c.reason]),
        [0, 1, 2].map(() => ["cancelled", "its parent fan-4 was cancelled"])
      )
      yield* runner.forget("fan-4")
      assert.strictEqual((yield* store.list({})).items.length, 0, "the parent and its children are gone")
    })
  )

  it.live("a parent paused while nobody runs it pauses its children too (and cancels them when cancelled)", () =>
    Effect.gen(function* () {
      const { runner, store } = yield* setup
      const now = Date.now()
      const base = {
        kind: "x",
        progress: { done: 0 },
        attempts: 0,
        createdAt: now,
        updatedAt: now,
        input: new Uint8Array()
      }
      yield* store.create({ ...base, id: "p", status: "pending" })
      yield* store.create({ ...base, id: "p.a", status: "pending", parent: "p" })
      yield* store.create({ ...base, id: "p.a.b", status: "paused", parent: "p.a" })
      yield* store.create({ ...base, id: "q", status: "pending" })
      yield* runner.pause("p")
      assert.deepStrictEqual(
        (yield* store.list({})).items.map((i) => [i.id, i.status]),
        [
          ["p", "paused"],
          ["p.a", "paused"],
          ["p.a.b", "paused"],
          ["q", "pending"]
        ]
      )
      yield* runner.cancel("p")
      assert.deepStrictEqual(
        (yield* store.list({})).items.map((i) => [i.id, i.status]),
        [
          ["p", "cancelled"],
          ["p.a", "cancelled"],
          ["p.a.b", "cancelled"],
          ["q", "pending"]
        ]
      )
    })
  )

  it.live("a child paused on its own pauses its parent; resuming the parent resumes the child", () =>
    Effect.gen(function* () {
      const { runner, store } = yield* setup
      yield* runner.start(Fan, { shards: 1, steps: 4, concurrency: 1, hold: 2 }, { id: "fan-5" })
      yield* waitUntil(
        // As stored: its checkpoint at step 2 is in, and it waits at the gate.
        Effect.map(store.getInfo("fan-5.shard-0"), (i) => i.progress.done === 2).pipe(
          Effect.orElseSucceed(() => false)
        ),
        "the child waits at step 2",
        { live: true }
      )
      yield* runner.pause("fan-5.shard-0")
      yield* waitUntil(
        Effect.map(runner.status("fan-5"), (i) => i.status === "paused"),
        "the parent pauses",
        {
          live: true
        }
      )
      assert.strictEqual((yield* runner.status("fan-5")).reason, "its child fan-5.shard-0 was paused")
      yield* gate.open
      yield* runner.resume("fan-5")
      assert.strictEqual(yield* runner.await(Fan, "fan-5").pipe(Effect.timeout("10 seconds")), expected(1, 4))
      assert.deepStrictEqual(runs.get("fan-5.shard-0"), [0, 2])
    })
  )

  it.live("the parent's progress is the weighted sum of its children's, live and as stored", () =>
    Effect.gen(function* () {
      const { runner } = yield* setup
      // Three children of 8 steps, each counting 100 units of the parent's; all wait at step 2, then at step 6.
      yield* runner.start(Fan, { shards: 3, steps: 8, concurrency: 3, hold: 2, weight: 100 }, { id: "fan-6" })
      const at = (done: number) =>
        waitUntil(
          Effect.map(
            runner.list({ parent: "fan-6" }),
            (p) => p.items.length === 3 && p.items.every((c) => c.progress.done === done)
          ),
          `every child has done ${done}`,
          { live: true }
        )
      yield* at(2)
      const live = yield* runner.status("fan-6")
      assert.strictEqual(live.progress.total, 300)
      assert.strictEqual(live.progress.done, 3 * 100 * (2 / 8))
      assert.deepStrictEqual(live.progress.own, { done: 0 })
      yield* gate.open
      yield* runner.await(Fan, "fan-6").pipe(Effect.timeout("10 seconds"))
      const stored = yield* runner.status("fan-6")
      assert.strictEqual(stored.progress.done, 300)
      assert.strictEqual(stored.progress.total, 300)
    })
  )

  it.live("a child whose progress has no weight counts by its own total", () =>
    Effect.gen(function* () {
      const { runner } = yield* setup
      yield* runner.start(Fan, { shards: 2, steps: 10, concurrency: 2, hold: 4 }, { id: "fan-7" })
      yield* waitUntil(
        Effect.map(
          runner.list({ parent: "fan-7" }),
          (p) => p.items.length === 2 && p.items.every((c) => c.progress.done === 4)
        ),
        "both children at step 4",
        { live: true }
      )
      const live = yield* runner.status("fan-7")
      assert.deepStrictEqual([live.progress.done, live.progress.total], [8, 20])
      yield* gate.open
      yield* runner.await(Fan, "fan-7").pipe(Effect.timeout("10 seconds"))
    })
  )

  it.live("keys are checked; an id taken by a task that is not this parent's child is refused", () =>
    Effect.gen(function* () {
      const { runner } = yield* setup
      const Bad = Task.make({
        name: "bad-key",
        input: Schema.Struct({ key: Schema.String }),
        state: Schema.Struct({}),
        success: Schema.Int,
        initial: () => ({}),
        run: (input, task) => task.child(Shard, { shard: 0, steps: 1 }, { key: input.key }).pipe(Effect.orDie)
      })
      const dot = yield* Effect.exit(runner.run(Bad, { key: "a.b" }, { id: "bad-1" }))
      assert.isTrue(Exit.isFailure(dot))
      assert.include((yield* runner.status("bad-1")).failure?.message ?? "", 'Invalid key "a.b"')
      // Another task already has the id this child would get.
      yield* runner.run(Shard, { shard: 0, steps: 1 }, { id: "bad-2.taken" })
      yield* Effect.exit(runner.run(Bad, { key: "taken" }, { id: "bad-2" }))
      assert.include((yield* runner.status("bad-2")).failure?.message ?? "", "already exists")
      // Without a key, the same input is the same child.
      const Twice = Task.make({
        name: "twice",
        input: Schema.Struct({}),
        state: Schema.Struct({}),
        success: Schema.Int,
        error: Boom,
        initial: () => ({}),
        run: (_, task) =>
          Effect.zipWith(
            task.child(Shard, { shard: 1, steps: 2 }),
            task.child(Shard, { shard: 1, steps: 2 }),
            (a, b) => a + b
          )
      })
      assert.strictEqual(yield* runner.run(Twice, {}, { id: "twice" }), 2 * expected(1, 2) * 2)
      const children = (yield* runner.list({ parent: "twice" })).items
      assert.strictEqual(children.length, 1)
      assert.match(children[0]!.id, /^twice\.shard-[0-9a-f]{12}$/)
      assert.deepStrictEqual(runs.get(children[0]!.id), [0])
    })
  )

  it.live("children do not time out for want of polls: their interest is their parent's", () =>
    Effect.gen(function* () {
      runs.clear()
      const store = yield* TaskStore.makeMemory
      const { runner } = yield* buildRunner(store, {
        tasks: [Fan, Shard],
        interestTimeout: "150 millis",
        flushInterval: "50 millis"
      })
      // Two children of 40 steps of 5 ms (about 250 ms each, one after the other); only the parent is polled.
      yield* runner.start(Fan, { shards: 2, steps: 40, concurrency: 1 }, { id: "fan-8" })
      const polling = yield* Effect.fork(
        Effect.forever(Effect.zipRight(runner.poll("fan-8"), Effect.sleep("30 millis")))
      )
      assert.strictEqual(yield* runner.await(Fan, "fan-8").pipe(Effect.timeout("10 seconds")), expected(2, 40))
      yield* Fiber.interrupt(polling)
      assert.deepStrictEqual(runs.get("fan-8.shard-0"), [0])
      // Unpolled, the parent pauses, and its running child with it.
      yield* runner.start(Fan, { shards: 1, steps: 400, concurrency: 1 }, { id: "fan-9" })
      yield* waitUntil(
        Effect.map(runner.status("fan-9"), (i) => i.status === "paused"),
        "the parent pauses",
        {
          live: true
        }
      )
      assert.strictEqual((yield* runner.status("fan-9.shard-0")).status, "paused")
      assert.match((yield* runner.status("fan-9")).reason ?? "", /^nobody polled it for/)
    })
  )

  it.live("a child's own retry policy runs first: the parent waits through its attempts", () =>
    Effect.gen(function* () {
      const store = yield* TaskStore.makeMemory
      const { runner } = yield* buildRunner(store, { tasks: [WaitsForFlaky, FlakyChild] })
      assert.strictEqual(yield* runner.run(WaitsForFlaky, {}, { id: "w" }).pipe(Effect.timeout("10 seconds")), 2)
      assert.strictEqual((yield* runner.status("w.flaky")).attempts, 2)
    })
  )

  it.live("a worker shutting down hands the parent back to the queue, and its children with it", () =>
    Effect.gen(function* () {
      yield* setup
      const store = yield* TaskStore.makeMemory
      const { runner } = yield* buildRunner(store, { tasks: [Fan, Shard] })
      const workerScope = yield* Scope.make()
      yield* runner.work({ kinds: ["fan"], concurrency: 1 }).pipe(Scope.extend(workerScope))
      yield* runner.submit(Fan, { shards: 2, steps: 6, concurrency: 2, hold: 2 }, { id: "fan-10" })
      yield* waitUntil(
        Effect.map(
          runner.list({ parent: "fan-10" }),
          (p) => p.items.filter((c) => c.status === "running" && c.progress.done === 2).length === 2
        ),
        "both children wait at step 2",
        { live: true }
      )
      yield* Scope.close(workerScope, Exit.void)
      assert.strictEqual((yield* runner.status("fan-10")).status, "pending")
      assert.deepStrictEqual(
        (yield* runner.list({ parent: "fan-10" })).items.map((c) => [c.status, c.reason]),
        [0, 1].map(() => ["pending", "its parent fan-10 was released"])
      )
      // The next worker claims the parent, which resumes its children from their checkpoints.
      yield* gate.open
      const next = yield* Scope.make()
      yield* runner.work({ kinds: ["fan"], concurrency: 1 }).pipe(Scope.extend(next))
      assert.strictEqual(yield* runner.await(Fan, "fan-10").pipe(Effect.timeout("10 seconds")), expected(2, 6))
      assert.deepStrictEqual(runs.get("fan-10.shard-0"), [0, 2])
      yield* Scope.close(next, Exit.void)
    })
  )

  it.live(
    "queued children run on the workers of their kind, elsewhere; a pause and a resume of the parent reach them there",
    () =>
      Effect.gen(function* () {
        yield* setup
        const store = yield* TaskStore.makeMemory
        const parents = yield* buildRunner(store, { tasks: [Fan, Shard], host: "host-a" })
        const workers = yield* buildRunner(store, { tasks: [Shard], host: "host-b", flushInterval: "50 millis" })
        yield* workers.runner.work({ kinds: ["shard"], concurrency: 3 }).pipe(Scope.extend(workers.scope))
        yield* parents.runner.start(
          Fan,
          { shards: 3, steps: 6, concurrency: 3, hold: 2, queue: true },
          { id: "fan-12" }
        )
        const held = (p: TaskRecord.Page) =>
          p.items.length === 3 && p.items.every((c) => c.status === "running" && c.progress.done === 2)
        yield* waitUntil(Effect.map(store.list({ parent: "fan-12" }), held), "the workers run the three children", {
          live: true
        })
        for (const c of (yield* store.list({ parent: "fan-12" })).items) {
          assert.strictEqual(c.lease?.holder.host, "host-b", `${c.id} runs on the worker's host`)
        }
        // The parent's progress rolls up what the worker flushes: 3 x 2 of 3 x 6.
        yield* waitUntil(
          Effect.map(parents.runner.status("fan-12"), (i) => i.progress.done === 6 && i.progress.total === 18),
          "the parent's progress shows its children's",
          { live: true }
        )
        yield* parents.runner.pause("fan-12")
        yield* waitUntil(
          Effect.map(store.list({ parent: "fan-12" }), (p) => p.items.every((c) => c.status === "paused")),
          "the children pause where they run",
          { live: true }
        )
        yield* gate.open
        yield* parents.runner.resume("fan-12")
        assert.strictEqual(
          yield* parents.runner.await(Fan, "fan-12").pipe(Effect.timeout("10 seconds")),
          expected(3, 6)
        )
        // Each ran twice on the worker: the second time from its checkpoint at step 2.
        for (let s = 0; s < 3; s++) assert.deepStrictEqual(runs.get(`fan-12.shard-${s}`), [0, 2])
      })
  )
})

/**
 * Workers in one process, over a shared memory store: several workers drain a queue with every task run exactly
 * once and never more than `concurrency` at a time per worker; closing a worker hands its running tasks back as
 * `pending` from their last checkpoints, and another worker finishes them; takeover of stale tasks is opt-in.
 * (Workers in separate processes, over Postgres, are in `TaskRunner.work.process.test.ts`.)
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Schedule, Schema, Scope } from "effect"
import { Task, TaskRunner, TaskStore } from "../src/index.js"
import { UnknownTaskKind } from "../src/TaskError.js"
import { type Store, waitUntil } from "./helpers/runner.js"

/** Runs of each task id, and how many run at once in each worker's process. */
const runs = new Map<string, number>()
let runningNow = 0
let mostAtOnce = 0

/** Counts its runs; checkpoints `steps` times, sleeping `ms` between; returns the steps it did in this run. */
const Job = Task.make({
  name: "job",
  input: Schema.Struct({ steps: Schema.Int, ms: Schema.Int }),
  state: Schema.Struct({ step: Schema.Int }),
  success: Schema.Struct({ firstStep: Schema.Int }),
  initial: () => ({ step: 0 }),
  run: (input, task) =>
    Effect.gen(function* () {
      runs.set(task.id, (runs.get(task.id) ?? 0) + 1)
      runningNow++
      mostAtOnce = Math.max(mostAtOnce, runningNow)
      const firstStep = task.state.step
      for (let step = firstStep; step < input.steps; step++) {
        yield* Effect.sleep(input.ms)
        yield* task.checkpoint({ step: step + 1 })
      }
      return { firstStep }
    }).pipe(
      Effect.ensuring(
        Effect.sync(() => {
          runningNow--
        })
      )
    )
})

/** Fails its first run at once (after counting it), then succeeds; retried 100 ms later. */
const FlakyJob = Task.make({
  name: "flaky-job",
  input: Schema.Struct({}),
  state: Schema.Struct({}),
  success: Schema.Int,
  initial: () => ({}),
  retry: { times: 1, schedule: Schedule.spaced("100 millis") },
  run: (_, task) =>
    Effect.gen(function* () {
      runs.set(task.id, (runs.get(task.id) ?? 0) + 1)
      runningNow++
      mostAtOnce = Math.max(mostAtOnce, runningNow)
      if (task.attempt === 1) return yield* Effect.dieMessage("first run fails")
      return task.attempt
    }).pipe(
      Effect.ensuring(
        Effect.sync(() => {
          runningNow--
        })
      )
    )
})

/** A runner that knows `Job`, over `store`, in a scope of its own. */
const buildRunner = (store: Store) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const layer = TaskRunner.layer({ tasks: [Job, FlakyJob] }).pipe(
      Layer.provide(Layer.succeed(TaskStore.TaskStore, store))
    )
    const context = yield* Layer.buildWithScope(layer, scope)
    return { runner: Context.get(context, TaskRunner.TaskRunner), scope }
  })

const reset = () => {
  runs.clear()
  runningNow = 0
  mostAtOnce = 0
}

describe("TaskRunner.work", () => {
  it.live("three workers drain 60 submitted tasks: each completes once, at most `concurrency` at a time", () =>
    Effect.gen(function* () {
      reset()
      const store = yield* TaskStore.makeMemory
      const submitter = yield* buildRunner(store)
      const ids = yield* Effect.forEach(Array.from({ length: 60 }), () =>
        submitter.runner.submit(Job, { steps: 3, ms: 2 })
      )
      const workers = yield* Effect.forEach([1, 2, 3], () => buildRunner(store))
      const scopes = yield* Effect.forEach(workers, ({ runner }) =>
        Effect.gen(function* () {
          const scope = yield* Scope.make()
          yield* Scope.extend(runner.work({ concurrency: 2 }), scope)
          return scope
        })
      )
      for (const id of ids) yield* submitter.runner.await(Job, id).pipe(Effect.timeout("20 seconds"))
      assert.strictEqual(runs.size, 60)
      assert.isTrue(
        [...runs.values()].every((n) => n === 1),
        "every task ran exactly once"
      )
      assert.isAtMost(mostAtOnce, 6, "three workers at concurrency 2")
      assert.isAtLeast(mostAtOnce, 2, "the workers did run tasks side by side")
      const pending = yield* store.list({ status: "pending" })
      assert.strictEqual(pending.items.length, 0)
      for (const scope of scopes) yield* Scope.close(scope, Exit.void)
    })
  )

  it.live("a task submitted to an idle worker starts without waiting for the poll timer", () =>
    Effect.gen(function* () {
      reset()
      const store = yield* TaskStore.makeMemory
      const worker = yield* buildRunner(store)
      yield* worker.runner.work({ concurrency: 1, maxPollInterval: "1 minute" }).pipe(Scope.extend(worker.scope))
      // Idle long enough for the poll timer to back off.
      yield* Effect.sleep("300 millis")
      const other = yield* buildRunner(store)
      const started = Date.now()
      const id = yield* other.runner.submit(Job, { steps: 1, ms: 0 })
      yield* other.runner.await(Job, id).pipe(Effect.timeout("5 seconds"))
      assert.isBelow(Date.now() - started, 1000)
    })
  )

  it.live("closing a worker releases its running tasks as pending, from their checkpoints; another finishes them", () =>
    Effect.gen(function* () {
      reset()
      const store = yield* TaskStore.makeMemory
      const first = yield* buildRunner(store)
      const ids = yield* Effect.forEach([1, 2], () => first.runner.submit(Job, { steps: 200, ms: 5 }))
      const firstScope = yield* Scope.make()
      yield* Scope.extend(first.runner.work({ concurrency: 2 }), firstScope)
      yield* waitUntil(
        Effect.map(
          Effect.forEach(ids, (id) => store.getInfo(id)),
          (infos) => infos.every((i) => i.status === "running" && i.revision >= 4)
        ),
        "both tasks checkpointed a few times",
        { live: true }
      )
      yield* Scope.close(firstScope, Exit.void)
      for (const id of ids) {
        const info = yield* store.getInfo(id)
        assert.strictEqual(info.status, "pending")
        assert.match(info.reason ?? "", /released by a worker/)
        assert.isUndefined(info.lease)
      }
      const second = yield* buildRunner(store)
      yield* second.runner.work({ concurrency: 2 }).pipe(Scope.extend(second.scope))
      for (const id of ids) {
        const { firstStep } = yield* second.runner.await(Job, id).pipe(Effect.timeout("10 seconds"))
        assert.isAbove(firstStep, 0, "resumed from its checkpoint, not from the start")
        assert.strictEqual(runs.get(id), 2)
      }
    })
  )

  it.live("takeover is opt-in: a stale running task is claimed only by a worker that takes over", () =>
    Effect.gen(function* () {
      reset()
      const store = yield* TaskStore.makeMemory
      const submitter = yield* buildRunner(store)
      const id = yield* submitter.runner.submit(Job, { steps: 1, ms: 0 })
      // Its holder died long ago: a lease of a process that does not exist, expired.
      const info = yield* store.getInfo(id)
      yield* store.update(id, info.revision, {
        status: "running",
        lease: {
          token: "01a220b5-41e9-7080-884f-f28554064fdc",
          holder: { host: "elsewhere", pid: 1, processStart: "1" },
          expiresAt: 1
        },
        attempts: 1
      })
      const plain = yield* buildRunner(store)
      yield* plain.runner.work({ concurrency: 1 }).pipe(Scope.extend(plain.scope))
      yield* Effect.sleep("300 millis")
      assert.strictEqual((yield* store.getInfo(id)).status, "running", "left alone without takeover")
      assert.strictEqual(runs.get(id), undefined)
      const taking = yield* buildRunner(store)
      yield* taking.runner.work({ concurrency: 1, takeover: true }).pipe(Scope.extend(taking.scope))
      yield* submitter.runner.await(Job, id).pipe(Effect.timeout("5 seconds"))
      assert.strictEqual(runs.get(id), 1)
    })
  )

  it.live("a worker's retried task goes back to the workers: it never runs beside a slot's other task", () =>
    Effect.gen(function* () {
      reset()
      const store = yield* TaskStore.makeMemory
      const submitter = yield* buildRunner(store)
      const flaky = yield* submitter.runner.submit(FlakyJob, {})
      const worker = yield* buildRunner(store)
      yield* worker.runner.work({ concurrency: 1 }).pipe(Scope.extend(worker.scope))
      yield* waitUntil(
        Effect.map(store.getInfo(flaky), (i) => i.status === "pending" && i.attempts === 1),
        "the first run to fail",
        { live: true }
      )
      // The slot's next task runs past the retry's delay.
      const long = yield* submitter.runner.submit(Job, { steps: 1, ms: 400 })
      assert.strictEqual(yield* submitter.runner.await(FlakyJob, flaky).pipe(Effect.timeout("10 seconds")), 2)
      yield* submitter.runner.await(Job, long).pipe(Effect.timeout("10 seconds"))
      assert.strictEqual(mostAtOnce, 1, "concurrency 1 held through the retry")
    })
  )

  it.effect("a kind the runner does not know is refused at once", () =>
    Effect.gen(function* () {
      const store = yield* TaskStore.makeMemory
      const { runner, scope } = yield* buildRunner(store)
      const exit = yield* Effect.exit(runner.work({ kinds: ["nope"] }).pipe(Scope.extend(scope)))
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) {
        const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
        assert.instanceOf(error, UnknownTaskKind)
      }
    })
  )
})

/**
 * `npx tsx bench/steps.ts [noop|checkpoint]`: how many steps of Effect's run loop one `runner.run` of a task takes on
 * the memory store, per fiber (the caller's, the task's, the runner's own), counted by a `Supervisor` with op
 * supervision on. Each step allocates and costs a few hundred nanoseconds here, and more right after a blocking write;
 * a step fewer on the run path is time saved on every store. `checkpoint` counts a task that checkpoints ten times.
 */
import { Effect, Layer, RuntimeFlags, RuntimeFlagsPatch, Schema, Supervisor } from "effect"
import type * as Fiber from "effect/Fiber"
import { Task, TaskRunner, TaskStore } from "../src/index.js"

const work = (process.argv[2] ?? "noop") as "noop" | "checkpoint"

const Work = Task.make({
  name: "bench-steps",
  input: Schema.Struct({}),
  state: Schema.Struct({ i: Schema.Int }),
  success: Schema.Number,
  initial: () => ({ i: 0 }),
  run: (_, task) =>
    work === "noop"
      ? Effect.succeed(0)
      : Effect.gen(function* () {
          for (let i = 1; i <= 10; i++) yield* task.checkpoint({ i })
          return 10
        })
})

/** Steps per fiber while `counting`; fibers that started meanwhile. */
let counting = false
const steps = new Map<number, number>()
const started = new Set<number>()

class Counter extends Supervisor.AbstractSupervisor<void> {
  get value() {
    return Effect.void
  }
  override onStart<A, E, R>(_: unknown, __: Effect.Effect<A, E, R>, ___: unknown, fiber: Fiber.RuntimeFiber<A, E>) {
    if (counting) started.add(fiber.id().id)
  }
  override onEffect<A, E>(fiber: Fiber.RuntimeFiber<A, E>) {
    if (!counting) return
    const id = fiber.id().id
    steps.set(id, (steps.get(id) ?? 0) + 1)
  }
}

const runs = 1000
await Effect.runPromise(
  Effect.gen(function* () {
    const runner = yield* TaskRunner.TaskRunner
    const caller = yield* Effect.withFiberRuntime((fiber) => Effect.succeed(fiber.id().id))
    // Warm: the runner's heartbeat loop and its follower of the store's changes are running by now.
    for (let i = 0; i < 100; i++) yield* runner.run(Work, {})
    counting = true
    for (let i = 0; i < runs; i++) yield* runner.run(Work, {})
    counting = false
    let callers = 0
    let forked = 0
    let own = 0
    for (const [id, n] of steps) {
      if (id === caller) callers += n
      else if (started.has(id)) forked += n
      else own += n
    }
    const per = (n: number) => (n / runs).toFixed(1)
    console.log(
      `${work} on memory, per run: ${per(callers + forked + own)} steps (the caller's fiber ${per(callers)}, ` +
        `fibers started by the run ${per(forked)}, the runner's own ${per(own)}); ${per(started.size)} fibers started`
    )
  }).pipe(
    Effect.provide(TaskRunner.layer({ tasks: [Work] }).pipe(Layer.provide(TaskStore.layerMemory))),
    Effect.scoped,
    Effect.supervised(new Counter()),
    Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.enable(RuntimeFlags.OpSupervision))
  )
)

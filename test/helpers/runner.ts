/**
 * Building runners in tests: over a given store, in a scope of their own (so a test can close one and not the
 * other), and waiting for what forked fibers do.
 */
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { TaskRunner, TaskStore } from "../../src/index.js"
import type * as TaskRecord from "../../src/TaskRecord.js"
import { bytes } from "./store.js"
import { tasks } from "../fixtures/tasks.js"

export type Runner = TaskRunner.TaskRunner["Type"]
export type Store = TaskStore.TaskStore["Type"]

/**
 * Lets forked fibers run until `check` holds. Under the TestClock no time passes; on the live clock each try waits a
 * little (real time, so a blocked event loop makes this fail instead of hang).
 */
export const waitUntil = (check: Effect.Effect<boolean, unknown>, what: string, options: { live?: boolean } = {}) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 10_000
    for (let i = 0; options.live === true ? Date.now() < deadline : i < 2000; i++) {
      if (yield* check) return
      if (options.live === true) yield* Effect.promise(() => new Promise((r) => setTimeout(r, 20)))
      else yield* Effect.yieldNow()
    }
    return yield* Effect.dieMessage(`timed out waiting until ${what}`)
  })

/** Builds a runner over `store` in its own scope, so a test can close it (or not) on its own. */
export const buildRunner = (store: Store, options: Partial<TaskRunner.Options> = {}) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    // The definitions a test passes need no services (a wider `tasks` would widen the requirements to `any`).
    const runnerLayer = TaskRunner.layer({ tasks, ...options }) as Layer.Layer<
      TaskRunner.TaskRunner,
      never,
      TaskStore.TaskStore
    >
    const layer = runnerLayer.pipe(Layer.provide(Layer.succeed(TaskStore.TaskStore, store)))
    const context = yield* Layer.buildWithScope(layer, scope)
    return { runner: Context.get(context, TaskRunner.TaskRunner), scope }
  })

/** A runner over a fresh memory store, closed with the test. */
export const withRunner = <A, E>(
  f: (runner: Runner, store: Store) => Effect.Effect<A, E, Scope.Scope>,
  options: Partial<TaskRunner.Options> = {}
) =>
  Effect.gen(function* () {
    const store = yield* TaskStore.makeMemory
    const { runner, scope } = yield* buildRunner(store, options)
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    return yield* f(runner, store)
  })

/** Two runners on one memory store, as two processes on different hosts would be; closed with the test. */
export const twoRunners = (optionsA: Partial<TaskRunner.Options> = {}, optionsB: Partial<TaskRunner.Options> = {}) =>
  Effect.gen(function* () {
    const store = yield* TaskStore.makeMemory
    const a = yield* buildRunner(store, { host: "host-a", ...optionsA })
    const b = yield* buildRunner(store, { host: "host-b", ...optionsB })
    yield* Effect.addFinalizer(() => Effect.zipRight(Scope.close(a.scope, Exit.void), Scope.close(b.scope, Exit.void)))
    return { store, a, b }
  })

/** Stores a `counter` task (input `{ n: 10 }`, paused) as another runner would have left it, with `fields` over it. */
export const storeCounter = (store: Store, id: string, fields: Partial<TaskRecord.TaskRecord>) =>
  store.create({
    id,
    kind: "counter",
    status: "paused",
    progress: { done: 0 },
    attempts: 1,
    createdAt: 0,
    updatedAt: 0,
    input: bytes(JSON.stringify({ n: 10 })),
    ...fields
  })

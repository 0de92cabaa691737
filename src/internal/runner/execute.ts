/**
 * Executes a claimed task: forks its fiber in the runner's scope with its logs captured, and records its end however
 * it exits (its heartbeat stopped first).
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as Task from "../../Task.js"
import type * as TaskRecord from "../../TaskRecord.js"
import { resume } from "./claim.js"
import type { Engine } from "./engine.js"
import { writeThroughOutages } from "./fencedWrite.js"
import { makeHandle } from "./handle.js"
import { stopBeating } from "./heartbeat.js"
import { enterRun, flushLogs } from "./logCapture.js"
import { outcome } from "./outcome.js"
import { release, type Running } from "./running.js"
import { unwatchIfIdle } from "./watch.js"

/**
 * Records the end of a run (unless the lease is lost), then lets it go from the table of running tasks. A run its
 * retry policy sends back to the queue is resumed here once its delay has passed, unless a worker claims it first
 * (a worker's own run goes back to the workers, to be counted in their slots).
 */
const finish = (engine: Engine, r: Running, exit: Exit.Exit<unknown, unknown>, context: Context.Context<never>) =>
  Effect.gen(function* () {
    const patch = yield* outcome(r, exit)
    if (patch !== undefined && r.holdsLease) {
      yield* flushLogs(engine, r)
      let written: TaskRecord.TaskPatch | undefined
      const recorded = yield* writeThroughOutages(engine, r, (_, now) => (written = patch(now))).pipe(
        Effect.map((info) => {
          r.end = { info, result: written?.result, error: written?.error }
          return info as TaskRecord.TaskInfo | undefined
        }),
        Effect.catchAll((e) =>
          // After a store failure the awaiter gets that failure; this one says the same again (at info level).
          Effect.as(
            r.storeError === undefined
              ? Effect.logWarning(`Could not record the end of task ${r.id}`, e)
              : Effect.logInfo(`Could not record the end of task ${r.id}`, e),
            undefined
          )
        )
      )
      if (recorded?.status === "pending" && recorded.runAt !== undefined && !r.byWorker) {
        const retry = Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.delay(
            resume(engine, r.id, context).pipe(
              // Claimed elsewhere meanwhile, cancelled, deleted: nothing to do here.
              Effect.catchAll(() => Effect.void)
            ),
            Duration.millis(Math.max(0, recorded.runAt! - now))
          )
        )
        yield* Effect.forkIn(Effect.interruptible(retry), engine.scope)
      }
    }
  }).pipe(
    Effect.ensuring(
      Effect.suspend(() => {
        engine.running.delete(r.id)
        release(r.token)
        return Effect.zipRight(unwatchIfIdle(engine), Deferred.done(r.done, Exit.void))
      })
    )
  )

/** Forks the task's fiber in the runner's scope and gives it to `r`. */
export const launch = (
  engine: Engine,
  r: Running,
  input: unknown,
  state: unknown,
  context: Context.Context<never>
): Effect.Effect<void> =>
  Effect.gen(function* () {
    const handle = makeHandle(engine, r, state, r.info.attempts)
    const program = r.task.run(input, handle) as Effect.Effect<unknown, unknown, never>
    // The fiber is the task's from its start to its end: its services, its log, set once rather than set and restored.
    const services = Context.add(context, Task.CurrentTask, handle as Task.Handle<unknown>)
    const supervised = Effect.uninterruptibleMask((restore) =>
      Effect.gen(function* () {
        yield* FiberRef.set(FiberRef.currentContext, services)
        yield* enterRun(engine, r)
        const exit = yield* Effect.exit(restore(program))
        // The runner's heartbeat loop beats the task while its fiber runs, and stops before its end is recorded.
        yield* stopBeating(r)
        yield* finish(engine, r, exit, context)
      })
    )
    // Interruptible whatever the caller's region (a claim launches its task uninterruptibly): a fork inherits it.
    yield* r.attach(yield* Effect.forkIn(Effect.interruptible(supervised), engine.scope))
  })

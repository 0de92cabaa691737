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
import { type EndPatch, outcome } from "./outcome.js"
import { release, type Running } from "./running.js"
import { unwatchIfIdle } from "./watch.js"

/** Writes the end of a run: the metadata stored, or `undefined` when it could not be written (logged). */
const recordEnd = (engine: Engine, r: Running, patch: EndPatch): Effect.Effect<TaskRecord.TaskInfo | undefined> => {
  let written: TaskRecord.TaskPatch | undefined
  return Effect.matchEffect(
    writeThroughOutages(engine, r, (_, now) => (written = patch(now))),
    {
      onSuccess: (info) => {
        r.end = { info, result: written?.result, error: written?.error }
        return Effect.succeed(info)
      },
      // After a store failure the awaiter gets that failure; this one says the same again (at info level).
      onFailure: (e) =>
        Effect.as(
          r.storeError === undefined
            ? Effect.logWarning(`Could not record the end of task ${r.id}`, e)
            : Effect.logInfo(`Could not record the end of task ${r.id}`, e),
          undefined
        )
    }
  )
}

/**
 * Records the end of a run (unless the lease is lost). A run its retry policy sends back to the queue is resumed here
 * once its delay has passed, unless a worker claims it first (a worker's own run goes back to the workers, to be
 * counted in their slots).
 */
const record = (engine: Engine, r: Running, exit: Exit.Exit<unknown, unknown>, context: Context.Context<never>) =>
  Effect.gen(function* () {
    const patch = yield* outcome(r, exit)
    if (patch === undefined || !r.holdsLease) return
    yield* flushLogs(engine, r)
    const recorded = yield* recordEnd(engine, r, patch)
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
  })

/** Lets a run go from the table of running tasks, and tells whoever awaits it here that its end is recorded. */
const letGo = (engine: Engine, r: Running) =>
  Effect.suspend(() => {
    engine.running.delete(r.id)
    release(r.token)
    return Effect.zipRight(
      unwatchIfIdle(engine),
      Effect.sync(() => {
        Deferred.unsafeDone(r.done, Exit.void)
      })
    )
  })

/**
 * Records the end of a run, then lets it go, however the recording ends. It runs uninterruptibly (the end of the
 * task's fiber).
 */
const finish = (engine: Engine, r: Running, exit: Exit.Exit<unknown, unknown>, context: Context.Context<never>) =>
  Effect.matchCauseEffect(record(engine, r, exit, context), {
    onFailure: (cause) => Effect.zipRight(letGo(engine, r), Effect.failCause(cause)),
    onSuccess: () => letGo(engine, r)
  })

/** Forks the task's fiber in the runner's scope and gives it to `r`. */
export const launch = (
  engine: Engine,
  r: Running,
  input: unknown,
  state: unknown,
  context: Context.Context<never>
): Effect.Effect<void> =>
  Effect.suspend(() => {
    const handle = makeHandle(engine, r, state, r.info.attempts)
    // The fiber is the task's from its start to its end: its services, its log, set once rather than set and restored.
    const services = Context.add(context, Task.CurrentTask, handle as Task.Handle<unknown>)
    // The task's program is made in its own fiber: a definition that throws instead of returning an effect ends its
    // run as a defect, recorded like any other.
    const program = Effect.suspend(() => r.task.run(input, handle) as Effect.Effect<unknown, unknown, never>)
    const supervised = Effect.uninterruptibleMask((restore) =>
      Effect.zipRight(
        Effect.zipRight(FiberRef.set(FiberRef.currentContext, services), enterRun(engine, r)),
        Effect.flatMap(Effect.exit(restore(program)), (exit) =>
          // The runner's heartbeat loop beats the task while its fiber runs, and stops before its end is recorded.
          Effect.zipRight(stopBeating(r), finish(engine, r, exit, context))
        )
      )
    )
    // Interruptible whatever the caller's region (a claim launches its task uninterruptibly): a fork inherits it.
    return Effect.flatMap(Effect.forkIn(Effect.interruptible(supervised), engine.scope), (fiber) => r.attach(fiber))
  })

/**
 * Pause, cancel, poll and forget from anywhere: a task running here is stopped through its `Running`; a task another
 * runner holds is asked through the store (its owner notices at its next heartbeat); a task nobody runs is changed
 * directly. A family goes together: a task's runner stops its running children with it (`family.ts`); a task changed
 * directly here has its children stopped here too; forgetting a task forgets its children first.
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import { TaskStillRunning } from "../../TaskError.js"
import type * as TaskRecord from "../../TaskRecord.js"
import type { LookupError, PollOptions, ResumeError } from "../../TaskRunner.js"
import { resume } from "./claim.js"
import { describeHolder, type Engine, isStale } from "./engine.js"
import type { Running } from "./running.js"

/** Stops a task running here and waits until its end is recorded. */
export const stopHere = (r: Running, kind: "pause" | "cancel", reason: string) =>
  Effect.zipRight(r.requestStop({ kind, reason }), Deferred.await(r.done))

/** Every child of `id`, page by page (`f` may delete the ones it is given). */
const forEachChild = <E>(
  engine: Engine,
  id: string,
  statuses: ReadonlyArray<TaskRecord.Status> | undefined,
  f: (child: TaskRecord.TaskInfo) => Effect.Effect<unknown, E>
) =>
  Effect.gen(function* () {
    let after: string | undefined = undefined
    do {
      const page: TaskRecord.Page = yield* engine.store.list({ parent: id, status: statuses, limit: 100, after })
      yield* Effect.forEach(page.items, f, { discard: true })
      after = page.next
    } while (after !== undefined)
  })

/** Pause or cancel: stop it here, ask its owner through the store, or change a task nobody runs directly. */
export const stop = (
  engine: Engine,
  id: string,
  kind: "pause" | "cancel",
  reason?: string
): Effect.Effect<TaskRecord.TaskInfo, LookupError> =>
  Effect.gen(function* () {
    const verb = kind === "pause" ? "paused" : "cancelled"
    const here = engine.running.get(id)
    if (here !== undefined) {
      yield* stopHere(here, kind, reason ?? `${verb} on request`)
      return yield* engine.store.getInfo(id)
    }
    const info = yield* engine.store.getInfo(id)
    const now = yield* Clock.currentTimeMillis
    if (info.status === "running" && !isStale(engine, info, now)) {
      if (info.interrupt === "cancel" || info.interrupt === kind) return info
      return yield* engine.store.update(id, info.revision, { interrupt: kind })
    }
    const stoppable: ReadonlyArray<TaskRecord.Status> =
      kind === "pause" ? ["pending", "running"] : ["pending", "running", "paused", "failed"]
    if (!stoppable.includes(info.status)) return info
    const stopped = yield* engine.store.update(id, info.revision, {
      status: kind === "pause" ? "paused" : "cancelled",
      lease: undefined,
      interrupt: undefined,
      reason: `${reason ?? `${verb} on request`}${info.status === "running" ? " (its runner had stopped)" : ""}`,
      updatedAt: now,
      ...(kind === "cancel" ? { finishedAt: now } : {})
    })
    // Nobody runs this task to stop its children: they are stopped from here.
    yield* forEachChild(engine, id, stoppable, (child) =>
      stop(engine, child.id, kind, `its parent ${id} was ${verb}`).pipe(
        Effect.catchTag("TaskNotFound", () => Effect.void)
      )
    )
    return stopped
  }).pipe(Effect.catchTag("RevisionConflict", () => stop(engine, id, kind, reason)))

/** The task's metadata, with live progress if it runs here. */
export const status = (engine: Engine, id: string): Effect.Effect<TaskRecord.TaskInfo, LookupError> =>
  Effect.suspend(() => {
    const r = engine.running.get(id)
    return r === undefined ? engine.store.getInfo(id) : Effect.succeed(r.live())
  })

/** Records interest in a task and, if asked, resumes it when it can be. */
export const poll = (
  engine: Engine,
  id: string,
  options?: PollOptions
): Effect.Effect<TaskRecord.TaskInfo, ResumeError> =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const r = engine.running.get(id)
    if (r !== undefined) {
      r.polledAt = now
      return r.live()
    }
    const info = yield* engine.store.getInfo(id)
    const resumable =
      info.status === "paused" || info.status === "pending" || (info.status === "running" && isStale(engine, info, now))
    if (options?.resume === true && resumable && engine.registry.has(info.kind)) {
      // The claim records the interest (a run starts with it): a resume that fails changes nothing.
      const resumed = yield* resume(engine, id, engine.captured).pipe(
        Effect.as(true),
        Effect.catchTag("TaskNotResumable", () => Effect.succeed(false))
      )
      if (resumed) return yield* status(engine, id)
    }
    // Polls are coalesced: a frontend polling every 100 ms does not write 10 times a second.
    if (info.polledAt !== undefined && info.polledAt > now - Math.min(engine.flushMs, 1000)) return info
    return yield* engine.store
      .update(id, info.revision, { polledAt: now })
      .pipe(Effect.catchTag("RevisionConflict", () => engine.store.getInfo(id)))
  })

/**
 * Deletes a task and its logs, and its children before it (a family is deleted together; stopped part-way, what is
 * left is the parent and its remaining children, deleted by trying again). A task running here is cancelled first,
 * one running elsewhere is refused.
 */
export const forget = (engine: Engine, id: string): Effect.Effect<void, LookupError | TaskStillRunning> =>
  Effect.gen(function* () {
    const r = engine.running.get(id)
    if (r !== undefined) yield* stopHere(r, "cancel", "forgotten")
    const info = yield* engine.store.getInfo(id)
    const now = yield* Clock.currentTimeMillis
    if (info.status === "running" && !isStale(engine, info, now)) {
      return yield* new TaskStillRunning({ id, holder: describeHolder(info, now) })
    }
    yield* forEachChild(engine, id, undefined, (child) =>
      forget(engine, child.id).pipe(Effect.catchTag("TaskNotFound", () => Effect.void))
    )
    yield* engine.store.delete(id, info.revision)
  }).pipe(Effect.catchTag("RevisionConflict", () => forget(engine, id)))

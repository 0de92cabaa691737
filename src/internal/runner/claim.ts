/**
 * Claiming a stored task: decide whether it may be resumed, decode its input and state, take it over with a fresh
 * lease (a compare-and-swap from the revision just read), and launch it.
 */
import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Lease from "../../Lease.js"
import * as Progress from "../../Progress.js"
import type * as Task from "../../Task.js"
import { type RevisionConflict, type TaskDecodeError, TaskNotResumable, type TaskStoreError } from "../../TaskError.js"
import * as TaskRecord from "../../TaskRecord.js"
import * as TaskStore from "../../TaskStore.js"
import type { LookupError, ResumeError } from "../../TaskRunner.js"
import { decodeField } from "./codecs.js"
import { describeHolder, type Engine, isStale, lookupKind, toMillis } from "./engine.js"
import { launch } from "./execute.js"
import { familyOf } from "./family.js"
import { hold, release, Running } from "./running.js"
import { watch } from "./watch.js"

/** Why a stored task cannot be resumed now, or `undefined` when it can. */
export const notResumable = (engine: Engine, info: TaskRecord.TaskInfo, now: number): string | undefined => {
  switch (info.status) {
    case "completed":
      return "it has completed; read its result instead"
    case "cancelled":
      return "it was cancelled, and cancelled tasks are final"
    case "running":
      return isStale(engine, info, now) ? undefined : `it is running in ${describeHolder(info, now)}`
    default:
      return undefined
  }
}

/** What a run starts from: the stored input, and the last checkpoint (or the initial state on a first run). */
const decodeRun = (task: Task.Any, record: TaskRecord.TaskRecord) =>
  Effect.gen(function* () {
    const input = yield* decodeField(task.codecs.input, record, "input", record.input)
    const state =
      record.state === undefined
        ? task.initial(input)
        : yield* decodeField(task.codecs.state, record, "state", record.state)
    return { input, state }
  })

/**
 * Decodes a stored task's input and state, then takes it over with a fresh lease and launches it (for a worker's slot
 * when `byWorker`).
 */
export const claim = (
  engine: Engine,
  record: TaskRecord.TaskRecord,
  task: Task.Any,
  context: Context.Context<never>,
  byWorker = false
): Effect.Effect<TaskRecord.TaskInfo, RevisionConflict | TaskDecodeError | LookupError> =>
  Effect.gen(function* () {
    const { input, state } = yield* decodeRun(task, record)
    return yield* claimAndBegin(
      engine,
      task,
      (lease, now) => engine.store.update(record.id, record.revision, TaskStore.claimPatch(record, lease, now)),
      input,
      state,
      context,
      byWorker
    )
  })

/** A lease taken here: the record written with it, its token, its length. */
export interface Claimed {
  readonly info: TaskRecord.TaskInfo
  readonly token: string
  readonly leaseMs: number
  readonly now: number
}

/** Launches a task whose lease this runner has just written, from `state`; `byWorker` when a worker claimed it. */
const begin = (
  engine: Engine,
  task: Task.Any,
  claimed: Claimed,
  input: unknown,
  state: unknown,
  context: Context.Context<never>,
  byWorker: boolean
): Effect.Effect<void> =>
  Effect.suspend(() => {
    // A child's interest is its parent's: nobody polls a child, and a parent paused for want of interest pauses it.
    const interest = claimed.info.parent === undefined ? (task.interestTimeout ?? engine.interestTimeout) : undefined
    const r = Running.make({
      id: claimed.info.id,
      task,
      token: claimed.token,
      leaseMs: claimed.leaseMs,
      interestMs: interest === undefined ? undefined : toMillis(interest),
      startedAt: claimed.now,
      tracker: new Progress.Tracker(claimed.info.progress),
      info: claimed.info,
      byWorker
    })
    // A task that had children before this run counts them all, not only those it attaches to again.
    if (claimed.info.progress.own !== undefined) familyOf(engine, r, true)
    engine.running.set(r.id, r)
    return Effect.zipRight(watch(engine), launch(engine, r, input, state, context))
  })

/**
 * Writes a record with this runner's fresh lease (`write` is a claim of a stored task, or the creation of a task
 * already claimed), then launches the task: once the write is in, the launch is not interrupted, so a claimed task
 * always has its `Running` (whoever interrupts the caller then stops the task itself).
 */
export const claimAndBegin = <E>(
  engine: Engine,
  task: Task.Any,
  write: (lease: Lease.Lease, now: number) => Effect.Effect<TaskRecord.TaskInfo, E>,
  input: unknown,
  state: unknown,
  context: Context.Context<never>,
  byWorker = false
): Effect.Effect<TaskRecord.TaskInfo, E> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.clockWith((clock) => {
      const now = clock.unsafeCurrentTimeMillis()
      const leaseMs = toMillis(task.leaseDuration ?? engine.defaultLeaseMs)
      const lease = Lease.make(engine.me, now, leaseMs)
      // The token is held before it is written: between the write and the launch, this process must not see its own
      // lease as stale.
      hold(lease.token)
      return Effect.matchCauseEffect(restore(write(lease, now)), {
        // Failed or interrupted (a write that went through is then a lease this process holds in no runner: stale
        // here at once, so a resume can have it).
        onFailure: (cause) => {
          release(lease.token)
          return Effect.failCause(cause)
        },
        onSuccess: (info) =>
          Effect.as(
            begin(engine, task, { info, token: lease.token, leaseMs, now }, input, state, context, byWorker),
            info
          )
      })
    })
  )

/** Resumes task `id` here with the services in `context`; a task already running here is left as it is. */
export const resume = (
  engine: Engine,
  id: string,
  context: Context.Context<never>
): Effect.Effect<TaskRecord.TaskInfo, ResumeError> =>
  Effect.gen(function* () {
    const here = engine.running.get(id)
    if (here !== undefined) return here.info
    const record = yield* engine.store.get(id)
    const task = yield* lookupKind(engine, record.kind, id)
    const now = yield* Clock.currentTimeMillis
    const why = notResumable(engine, record, now)
    if (why !== undefined) return yield* new TaskNotResumable({ id, status: record.status, reason: why })
    return yield* claim(engine, record, task, context)
  }).pipe(Effect.catchTag("RevisionConflict", () => resume(engine, id, context)))

/**
 * Claims the oldest pending task of `kinds` through the store (one atomic step) and launches it here in a worker's
 * slot: its id, or `undefined` when none is pending. A claimed task whose input or state no longer decodes is recorded
 * as failed (a worker must not claim it again and again), and the next is tried.
 */
export const claimNext = (
  engine: Engine,
  kinds: ReadonlyArray<string>,
  context: Context.Context<never>
): Effect.Effect<string | undefined, TaskStoreError> =>
  Effect.gen(function* () {
    if (kinds.length === 0) return undefined
    const leaseMsOf = (task: Task.Any) => toMillis(task.leaseDuration ?? engine.defaultLeaseMs)
    // The lease it is claimed with is the shortest of the kinds' (the kind is known only once claimed); the task's own
    // length applies from its first renewal, a heartbeat later.
    const claimLeaseMs = Math.min(...kinds.map((kind) => leaseMsOf(engine.registry.get(kind)!)))
    while (true) {
      const now = yield* Clock.currentTimeMillis
      const lease = Lease.make(engine.me, now, claimLeaseMs)
      hold(lease.token)
      const record = yield* engine.store
        .claimNext({ kinds, lease, now })
        .pipe(Effect.onError(() => Effect.sync(() => release(lease.token))))
      if (record === undefined) {
        release(lease.token)
        return undefined
      }
      const task = engine.registry.get(record.kind)!
      const decoded = yield* Effect.either(decodeRun(task, record))
      if (decoded._tag === "Left") {
        release(lease.token)
        yield* Effect.logWarning(`Task ${record.id} was claimed but cannot run here`, decoded.left)
        yield* engine.store
          .update(record.id, record.revision, {
            status: "failed",
            lease: undefined,
            failure: { kind: "defect", message: decoded.left.message },
            finishedAt: now,
            updatedAt: now
          })
          .pipe(
            // A claimed record's id is valid, and nobody else writes it while its fresh lease holds.
            Effect.catchTags({
              RevisionConflict: () => Effect.void,
              TaskNotFound: () => Effect.void,
              InvalidTaskId: Effect.die
            })
          )
        continue
      }
      const info = TaskRecord.info(record)
      yield* begin(
        engine,
        task,
        { info, token: lease.token, leaseMs: leaseMsOf(task), now },
        decoded.right.input,
        decoded.right.state,
        context,
        true
      )
      return record.id
    }
  })

/**
 * Runs tasks as fibers over a `TaskStore`: claims them with a lease, heartbeats and flushes progress, captures logs,
 * watches for pause and cancel requests, maps fiber interruption to pause or cancel, and resumes tasks by id through
 * the registry of definitions it was built with.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as HashSet from "effect/HashSet"
import * as Inspectable from "effect/Inspectable"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Lease from "./Lease.js"
import * as Progress from "./Progress.js"
import * as Task from "./Task.js"
import {
  type InvalidTaskId,
  LeaseLost,
  type RevisionConflict,
  type TaskAlreadyExists,
  TaskCancelled,
  TaskDecodeError,
  TaskDefect,
  TaskEncodeError,
  TaskKindMismatch,
  TaskNotCompleted,
  TaskNotFound,
  TaskNotResumable,
  TaskPaused,
  TaskStillRunning,
  TaskStoreError,
  UnknownTaskKind
} from "./TaskError.js"
import * as TaskId from "./TaskId.js"
import * as TaskRecord from "./TaskRecord.js"
import { defaultKeepLogs, TaskStore } from "./TaskStore.js"

/** How a runner runs tasks. Every duration has a default that suits long work. */
export interface Options {
  /** The task definitions this runner can resume by id. */
  readonly tasks: ReadonlyArray<Task.Any>
  /** How long a lease lasts without a heartbeat (default 30 s). Another runner may take the task over after that. */
  readonly leaseDuration?: Duration.DurationInput | undefined
  /** How often progress and logs are flushed and the lease renewed (default 1 s). */
  readonly flushInterval?: Duration.DurationInput | undefined
  /** Pause any task nobody has polled for this long (default: never). A task's own setting wins. */
  readonly interestTimeout?: Duration.DurationInput | undefined
  /** How many log lines to keep per task (default 1,000). */
  readonly keepLogs?: number | undefined
  /** How often `await` looks at the store for a task another process runs (default 250 ms). */
  readonly awaitInterval?: Duration.DurationInput | undefined
  /** The host name this runner records in its leases (default: the OS host name). */
  readonly host?: string | undefined
}

/** Options for `start` and `run`. */
export interface StartOptions {
  /** The task id; generated (UUIDv7) when absent. */
  readonly id?: string | undefined
}

/** Options for `poll`. */
export interface PollOptions {
  /** Resume the task if it is paused, pending or stale and this runner knows its kind. */
  readonly resume?: boolean | undefined
}

/** Errors of operations that address a stored task by id. */
export type LookupError = TaskNotFound | InvalidTaskId | TaskStoreError

/** Errors of `resume`. */
export type ResumeError = LookupError | UnknownTaskKind | TaskNotResumable | TaskDecodeError

/** Errors of `start`. */
export type StartError = TaskAlreadyExists | InvalidTaskId | TaskEncodeError | TaskDecodeError | TaskStoreError

/** Errors of `await` and `result` besides the task's own error. */
export type AwaitError = LookupError | TaskKindMismatch | TaskDecodeError | TaskCancelled | TaskPaused | TaskDefect

/** Errors of `run` besides the task's own error. */
export type RunError = StartError | ResumeError | AwaitError

/** The runner service. */
export class TaskRunner extends Context.Tag("@vectorlink/task/TaskRunner")<
  TaskRunner,
  {
    /** Starts a task in the background and returns its id. */
    readonly start: <T extends Task.Any>(
      task: T,
      input: Task.Input<T>,
      options?: StartOptions
    ) => Effect.Effect<string, StartError, Task.Services<T>>
    /** Stores a task as `pending` without running it; any runner that knows its kind can resume it. */
    readonly submit: <T extends Task.Any>(
      task: T,
      input: Task.Input<T>,
      options?: StartOptions
    ) => Effect.Effect<string, StartError>
    /**
     * Runs a task in the foreground to its result. With an `id` that exists, re-enters it from its checkpoint (or
     * returns its stored result). Interrupting the caller pauses the task.
     */
    readonly run: <T extends Task.Any>(
      task: T,
      input: Task.Input<T>,
      options?: StartOptions
    ) => Effect.Effect<Task.Success<T>, Task.Error<T> | RunError, Task.Services<T>>
    /** Resumes a paused, failed, pending or stale task from its last checkpoint, in the background. */
    readonly resume: (id: string) => Effect.Effect<TaskRecord.TaskInfo, ResumeError>
    /** Pauses a task: at once if it runs here, at the owner's next heartbeat if another runner has it. */
    readonly pause: (id: string) => Effect.Effect<TaskRecord.TaskInfo, LookupError>
    /** Cancels a task for good, the same way as `pause`. */
    readonly cancel: (id: string) => Effect.Effect<TaskRecord.TaskInfo, LookupError>
    /** The task's metadata, with live progress if it runs here. */
    readonly status: (id: string) => Effect.Effect<TaskRecord.TaskInfo, LookupError>
    /** Lists tasks by status and kind, a page at a time. */
    readonly list: (filter?: TaskRecord.ListFilter) => Effect.Effect<TaskRecord.Page, TaskStoreError>
    /**
     * Waits for the task to end: its typed success, or its typed failure. A pending task is waited for until a runner
     * starts it; bound the wait with `Effect.timeout` where that may never happen.
     */
    readonly await: <T extends Task.Any>(
      task: T,
      id: string
    ) => Effect.Effect<Task.Success<T>, Task.Error<T> | AwaitError>
    /** The stored result of a completed task (or its typed failure), without waiting. */
    readonly result: <T extends Task.Any>(
      task: T,
      id: string
    ) => Effect.Effect<Task.Success<T>, Task.Error<T> | AwaitError | TaskNotCompleted>
    /** Records interest in a task (keeping it alive under an interest timeout) and returns its status. */
    readonly poll: (id: string, options?: PollOptions) => Effect.Effect<TaskRecord.TaskInfo, ResumeError>
    /** Deletes a task and its logs; a task running here is cancelled first. */
    readonly forget: (id: string) => Effect.Effect<void, LookupError | TaskStillRunning>
    /** The task's kept log lines. */
    readonly logs: (
      id: string,
      options?: { readonly after?: number | undefined; readonly limit?: number | undefined }
    ) => Effect.Effect<ReadonlyArray<TaskRecord.LogLine>, InvalidTaskId | TaskStoreError>
  }
>() {}

/**
 * Why a running task is being stopped: a pause or cancel (its reason is recorded), or the lease lost (nothing may be
 * written any more, so there is nothing to record).
 */
type Stop = { readonly kind: "pause" | "cancel"; readonly reason: string } | { readonly kind: "lost" }

/** A task this runner executes now. */
interface Running {
  readonly id: string
  readonly task: Task.Any
  readonly token: string
  readonly leaseMs: number
  readonly interestMs: number | undefined
  readonly startedAt: number
  readonly tracker: Progress.Tracker
  readonly logs: Array<TaskRecord.NewLogLine>
  readonly lock: Effect.Semaphore
  readonly done: Deferred.Deferred<void>
  info: TaskRecord.TaskInfo
  flushedVersion: number
  flushedDone: number
  renewedAt: number
  polledAt: number
  stop: Stop | undefined
  fiber: Fiber.RuntimeFiber<void> | undefined
}

const toMillis = (d: Duration.DurationInput): number => Duration.toMillis(Duration.decode(d))

/**
 * A checkpoint is a yield point for the whole event loop, not only for fibers: stores with synchronous I/O (SQLite,
 * the file store's direct system calls) never give timers a turn otherwise, and a task checkpointing back to back would
 * starve the runner's heartbeat. At most every 20 ms of real time, so it costs nothing measurable.
 */
let lastMacroYield = Date.now()
const yieldToEventLoop: Effect.Effect<void> = Effect.suspend(() => {
  const now = Date.now()
  // Stryker disable next-line EqualityOperator,ArithmeticOperator: how often it yields is timing only.
  if (now - lastMacroYield < 20) return Effect.void
  lastMacroYield = now
  return Effect.async<void>((resume) => {
    const handle = setImmediate(() => resume(Effect.void))
    return Effect.sync(() => clearImmediate(handle))
  })
})

/** One part of a log message as text: an `Error` as its name and message (`Inspectable.format` would give `{}`). */
const formatLogPart = (part: unknown): string =>
  typeof part === "string" ? part : part instanceof Error ? String(part) : Inspectable.format(part)

const formatLogMessage = (message: unknown): string =>
  Array.isArray(message) ? message.map(formatLogPart).join(" ") : formatLogPart(message)

/** Human text for the result of `Cause.pretty`, first line only (for record `reason`/`failure`). */
const firstLine = (text: string): string => text.split("\n", 1)[0] ?? text

/** Builds a runner over the `TaskStore` in context. Tasks still running when the scope closes are paused. */
export const make = (options: Options): Effect.Effect<TaskRunner["Type"], never, TaskStore | Scope.Scope> =>
  Effect.gen(function* () {
    const store = yield* TaskStore
    const scope = yield* Effect.scope
    const captured = yield* Effect.context<never>()
    const registry = new Map<string, Task.Any>(options.tasks.map((t) => [t.name, t]))
    const me = Lease.self(options.host)
    const defaultLeaseMs = toMillis(options.leaseDuration ?? "30 seconds")
    const flushMs = toMillis(options.flushInterval ?? "1 second")
    const awaitMs = toMillis(options.awaitInterval ?? "250 millis")
    const keepLogs = options.keepLogs ?? defaultKeepLogs
    const running = new Map<string, Running>()

    const lookupKind = (kind: string, id?: string) => {
      const task = registry.get(kind)
      return task === undefined
        ? Effect.fail(
            new UnknownTaskKind({ kind, known: Array.from(registry.keys()), ...(id === undefined ? {} : { id }) })
          )
        : Effect.succeed(task)
    }

    const checkKind = (task: Task.Any, info: TaskRecord.TaskInfo) =>
      info.kind === task.name
        ? Effect.void
        : Effect.fail(new TaskKindMismatch({ id: info.id, expected: task.name, found: info.kind }))

    const decodeField = <A>(
      codec: { readonly decode: (bytes: Uint8Array) => Effect.Effect<A, { detail: string; found: string }> },
      record: TaskRecord.TaskInfo,
      field: "input" | "state" | "result" | "error",
      bytes: Uint8Array
    ) =>
      Effect.mapError(
        codec.decode(bytes),
        (e) => new TaskDecodeError({ id: record.id, kind: record.kind, field, found: e.found, detail: e.detail })
      )

    const encodeField = <A>(
      codec: { readonly encode: (value: A) => Effect.Effect<Uint8Array, string> },
      id: string,
      kind: string,
      field: "input" | "state" | "result" | "error",
      value: A
    ) => Effect.mapError(codec.encode(value), (detail) => new TaskEncodeError({ id, kind, field, detail }))

    // ---- fenced writes -------------------------------------------------------------------------------------------

    const lost = (r: Running, fresh: TaskRecord.TaskInfo | undefined) => {
      const holder = fresh?.lease === undefined ? undefined : Lease.describe(fresh.lease.holder)
      return new LeaseLost({ id: r.id, ...(holder === undefined ? {} : { holder }) })
    }

    /**
     * Compare-and-swap from the last metadata this runner saw; on a conflict, re-read and retry only while the lease
     * token is still ours. Another runner's takeover therefore rejects every later write of this one (fencing).
     */
    const writeUnlocked = (
      r: Running,
      patch: (info: TaskRecord.TaskInfo, now: number) => TaskRecord.TaskPatch
    ): Effect.Effect<TaskRecord.TaskInfo, LeaseLost | TaskStoreError> => {
      const attempt: Effect.Effect<TaskRecord.TaskInfo, LeaseLost | TaskStoreError> = Effect.suspend(() => {
        if (r.stop?.kind === "lost") return Effect.fail(lost(r, undefined))
        return Effect.flatMap(Clock.currentTimeMillis, (now) =>
          store.update(r.id, r.info.revision, patch(r.info, now)).pipe(
            Effect.tap((info) =>
              Effect.suspend(() => {
                r.info = info
                r.renewedAt = now
                return noticeRequests(r)
              })
            ),
            Effect.catchTags({
              RevisionConflict: () =>
                store.getInfo(r.id).pipe(
                  Effect.catchTag("TaskNotFound", () => Effect.fail(lost(r, undefined))),
                  Effect.flatMap((fresh) => {
                    if (fresh.status !== "running" || fresh.lease?.token !== r.token) {
                      return Effect.fail(lost(r, fresh))
                    }
                    r.info = fresh
                    return attempt
                  })
                ),
              TaskNotFound: () => Effect.fail(lost(r, undefined))
            })
          )
        )
      }).pipe(Effect.catchTag("InvalidTaskId", (e) => Effect.die(e)))
      return attempt
    }

    const write = (
      r: Running,
      patch: (info: TaskRecord.TaskInfo, now: number) => TaskRecord.TaskPatch
    ): Effect.Effect<TaskRecord.TaskInfo, LeaseLost | TaskStoreError> => r.lock.withPermits(1)(writeUnlocked(r, patch))

    const renewed = (r: Running, now: number): TaskRecord.TaskPatch => {
      r.tracker.sample(now)
      return {
        lease: { token: r.token, holder: me, expiresAt: now + r.leaseMs },
        progress: r.tracker.snapshot(),
        updatedAt: now,
        // Stryker disable next-line ConditionalExpression,EqualityOperator: writing an unchanged poll time again changes nothing.
        ...(r.polledAt > (r.info.polledAt ?? 0) ? { polledAt: r.polledAt } : {})
      }
    }

    const requestStop = (r: Running, stop: Stop) =>
      Effect.suspend(() => {
        // Cancel outranks pause; losing the lease outranks both (nothing may be written any more).
        const rank = { pause: 0, cancel: 1, lost: 2 }
        if (r.stop !== undefined && rank[r.stop.kind] >= rank[stop.kind]) return Effect.void
        // Stryker disable next-line ConditionalExpression: interrupting a fiber twice is interrupting it once.
        const first = r.stop === undefined
        r.stop = stop
        return first && r.fiber !== undefined ? Fiber.interruptFork(r.fiber) : Effect.void
      })

    const onWriteError = (r: Running) => (error: LeaseLost | TaskStoreError) =>
      error._tag === "LeaseLost"
        ? Effect.zipRight(Effect.logWarning(error.message), requestStop(r, { kind: "lost" }))
        : Effect.flatMap(Clock.currentTimeMillis, (now) =>
            // The store is unreachable. Once the lease this runner last renewed has run out, another runner may
            // rightly take the task over: stop here rather than risk running it twice (it is left stale, resumable).
            r.info.lease !== undefined && now >= r.info.lease.expiresAt
              ? Effect.zipRight(
                  Effect.logWarning(
                    `Could not renew the lease of task ${r.id} before it expired; stopping it here`,
                    error
                  ),
                  requestStop(r, { kind: "lost" })
                )
              : Effect.logWarning(`Heartbeat of task ${r.id} failed; will retry`, error)
          )

    const noticeRequests = (r: Running) =>
      Effect.suspend(() => {
        const request = r.info.interrupt
        if (request === undefined) return Effect.void
        return requestStop(r, {
          kind: request,
          reason: request === "cancel" ? "cancelled on request" : "paused on request"
        })
      })

    const flushLogs = (r: Running) =>
      Effect.suspend(() => {
        // Stryker disable next-line ConditionalExpression: appending no lines is a no-op; this only saves the call.
        if (r.logs.length === 0) return Effect.void
        const lines = r.logs.splice(0, r.logs.length)
        return store.appendLogs(r.id, lines, { keep: keepLogs }).pipe(
          Effect.catchAll((e) =>
            Effect.sync(() => {
              // Keep the lines for the next flush rather than lose them.
              r.logs.unshift(...lines)
              // Stryker disable next-line all: a bound on memory only; the store keeps `keepLogs` lines whatever it is given.
              if (r.logs.length > keepLogs) r.logs.splice(0, r.logs.length - keepLogs)
            }).pipe(Effect.zipRight(Effect.logDebug(`Could not flush logs of task ${r.id}`, e)))
          )
        )
      })

    const beat = (r: Running) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        r.tracker.sample(now)
        // Stryker disable next-line ConditionalExpression: without a timeout the comparison below is never true.
        if (r.interestMs !== undefined) {
          const interest = Math.max(r.startedAt, r.polledAt, r.info.polledAt ?? 0)
          if (now - interest > r.interestMs) {
            const idle = Duration.format(Duration.millis(now - interest))
            yield* requestStop(r, { kind: "pause", reason: `nobody polled it for ${idle}` })
            return
          }
        }
        const due =
          r.tracker.version !== r.flushedVersion ||
          r.tracker.done !== r.flushedDone ||
          r.logs.length > 0 ||
          r.polledAt > (r.info.polledAt ?? 0) ||
          now - r.renewedAt >= r.leaseMs / 3
        if (due) {
          const version = r.tracker.version
          const done = r.tracker.done
          // A write in progress (a checkpoint) renews the lease and flushes progress itself: skip this beat rather
          // than queue behind the task, which may take the lock again before this fiber gets to run.
          const wrote = yield* r.lock.withPermitsIfAvailable(1)(writeUnlocked(r, (_, t) => renewed(r, t)))
          if (Option.isSome(wrote)) {
            r.flushedVersion = version
            r.flushedDone = done
          }
          // Logs follow a successful fenced write, so a runner that lost its lease stops adding to them.
          yield* flushLogs(r)
        } else {
          // Nothing to write: still look for requests from other processes and for a takeover.
          const fresh = yield* store.getInfo(r.id).pipe(Effect.catchTag("InvalidTaskId", Effect.die))
          if (fresh.status !== "running" || fresh.lease?.token !== r.token) return yield* Effect.fail(lost(r, fresh))
          if (fresh.revision > r.info.revision) r.info = fresh
        }
        yield* noticeRequests(r)
      }).pipe(
        Effect.catchTag("TaskNotFound", () => Effect.fail(lost(r, undefined))),
        Effect.catchAll(onWriteError(r))
      )

    const heartbeat = (r: Running) => Effect.forever(Effect.zipRight(Effect.sleep(flushMs), beat(r)))

    // ---- executing -----------------------------------------------------------------------------------------------

    const captureLogger = (r: Running) =>
      Logger.make<unknown, void>(({ cause, date, logLevel, message }) => {
        let text = formatLogMessage(message)
        if (!Cause.isEmpty(cause)) text += ` ${Cause.pretty(cause, { renderErrorCause: true })}`
        r.logs.push({ time: date.getTime(), level: logLevel.label, message: text })
        // Stryker disable next-line all: a bound on memory only; the store keeps `keepLogs` lines whatever it is given.
        if (r.logs.length > keepLogs) r.logs.shift()
      })

    const makeHandle = <S>(r: Running, initial: S, attempt: number): Task.Handle<S> => {
      let state = initial
      const tracker = r.tracker
      const progressOne = Progress.inlineSync(() => {
        tracker.done++
      })
      const codec = r.task.codecs.state as { readonly encode: (value: S) => Effect.Effect<Uint8Array, string> }
      return {
        id: r.id,
        get state() {
          return state
        },
        attempt,
        checkpoint: (next) =>
          encodeField(codec, r.id, r.task.name, "state", next).pipe(
            Effect.flatMap((bytes) => {
              const version = tracker.version
              const done = tracker.done
              return Effect.as(
                write(r, (_, now) => ({ ...renewed(r, now), state: bytes })),
                [version, done] as const
              )
            }),
            Effect.tap(([version, done]) =>
              Effect.suspend(() => {
                state = next
                r.flushedVersion = version
                r.flushedDone = done
                return yieldToEventLoop
              })
            ),
            Effect.tapError((e) => (e._tag === "LeaseLost" ? onWriteError(r)(e) : Effect.void)),
            Effect.asVoid
          ),
        // `progress()` and `progress(1)` reuse one prebuilt effect: the hot path allocates nothing.
        progress: (n = 1) => (n === 1 ? progressOne : Effect.sync(() => tracker.advance(n))),
        total: (n) => Effect.sync(() => tracker.setTotal(n)),
        message: (text) => Effect.sync(() => tracker.setMessage(text)),
        advance: (n = 1) => {
          tracker.done += n
        },
        counter: tracker,
        setDone: (n) => tracker.set(n)
      }
    }

    /** The patch that ends a run, from how the task's fiber exited. `undefined` when nothing may be written. */
    const outcome = (
      r: Running,
      exit: Exit.Exit<unknown, unknown>
    ): Effect.Effect<((now: number) => TaskRecord.TaskPatch) | undefined> =>
      Effect.gen(function* () {
        const ended = (now: number): TaskRecord.TaskPatch => ({
          lease: undefined,
          interrupt: undefined,
          progress: r.tracker.snapshot(),
          updatedAt: now
        })
        if (Exit.isSuccess(exit)) {
          const bytes = yield* Effect.either(
            encodeField(r.task.codecs.success, r.id, r.task.name, "result", exit.value)
          )
          if (bytes._tag === "Left") {
            return (now) => ({
              ...ended(now),
              status: "failed",
              finishedAt: now,
              failure: { kind: "defect", message: bytes.left.message }
            })
          }
          return (now) => ({
            ...ended(now),
            status: "completed",
            finishedAt: now,
            result: bytes.right,
            reason: undefined,
            failure: undefined
          })
        }
        const cause = exit.cause
        const failure = Cause.failureOption(cause)
        if (Option.isSome(failure)) {
          const error = failure.value
          if (error instanceof LeaseLost) {
            r.stop = { kind: "lost" }
            return undefined
          }
          if (error instanceof TaskStoreError) {
            return (now) => ({
              ...ended(now),
              status: "failed",
              finishedAt: now,
              failure: { kind: "store", message: error.message }
            })
          }
          if (error instanceof TaskEncodeError) {
            return (now) => ({
              ...ended(now),
              status: "failed",
              finishedAt: now,
              failure: { kind: "defect", message: error.message }
            })
          }
          const bytes = yield* Effect.either(encodeField(r.task.codecs.error, r.id, r.task.name, "error", error))
          const message = firstLine(Cause.pretty(Cause.fail(error)))
          return (now) => ({
            ...ended(now),
            status: "failed",
            finishedAt: now,
            failure: { kind: bytes._tag === "Right" ? "error" : "defect", message },
            ...(bytes._tag === "Right" ? { error: bytes.right } : {})
          })
        }
        if (Cause.isInterruptedOnly(cause)) {
          const stop = r.stop ?? { kind: "pause", reason: "interrupted" }
          if (stop.kind === "lost") return undefined
          if (stop.kind === "cancel") {
            return (now) => ({ ...ended(now), status: "cancelled", finishedAt: now, reason: stop.reason })
          }
          return (now) => ({ ...ended(now), status: "paused", reason: stop.reason })
        }
        const message = firstLine(Cause.pretty(cause))
        return (now) => ({ ...ended(now), status: "failed", finishedAt: now, failure: { kind: "defect", message } })
      })

    const finish = (r: Running, hb: Fiber.RuntimeFiber<unknown, unknown>, exit: Exit.Exit<unknown, unknown>) =>
      Effect.gen(function* () {
        yield* Fiber.interrupt(hb)
        const patch = yield* outcome(r, exit)
        if (patch !== undefined && r.stop?.kind !== "lost") {
          yield* flushLogs(r)
          yield* write(r, (_, now) => patch(now)).pipe(
            Effect.catchAll((e) => Effect.logWarning(`Could not record the end of task ${r.id}`, e))
          )
        }
      }).pipe(
        Effect.ensuring(
          Effect.suspend(() => {
            running.delete(r.id)
            return Deferred.done(r.done, Exit.void)
          })
        )
      )

    /** Forks the task's fiber in the runner's scope: heartbeat beside it, the end recorded however it exits. */
    const launch = (r: Running, input: unknown, state: unknown, context: Context.Context<never>): Effect.Effect<void> =>
      Effect.gen(function* () {
        const handle = makeHandle(r, state, r.info.attempts)
        const program = r.task
          .run(input, handle)
          .pipe(
            Effect.provideService(Task.CurrentTask, handle as Task.Handle<unknown>),
            Effect.locallyWith(FiberRef.currentLoggers, HashSet.add(captureLogger(r))),
            Effect.annotateLogs({ taskId: r.id, taskKind: r.task.name })
          ) as Effect.Effect<unknown, unknown, never>
        const supervised = Effect.uninterruptibleMask((restore) =>
          Effect.gen(function* () {
            const hb = yield* Effect.fork(Effect.interruptible(heartbeat(r)))
            const exit = yield* Effect.exit(restore(program))
            yield* finish(r, hb, exit)
          })
        ).pipe(Effect.provide(context))
        r.fiber = yield* Effect.forkIn(supervised, scope)
      })

    const describeHolder = (info: TaskRecord.TaskInfo, now: number) =>
      info.lease === undefined
        ? "no lease"
        : `${Lease.describe(info.lease.holder)}; its lease expires in ${Duration.format(
            Duration.millis(Math.max(0, info.lease.expiresAt - now))
          )}`

    /** Why a stored task cannot be resumed now, or `undefined` when it can. */
    const notResumable = (info: TaskRecord.TaskInfo, now: number): string | undefined => {
      switch (info.status) {
        case "completed":
          return "it has completed; read its result instead"
        case "cancelled":
          return "it was cancelled, and cancelled tasks are final"
        case "running":
          return Lease.isStale(info, now, me) ? undefined : `it is running in ${describeHolder(info, now)}`
        default:
          return undefined
      }
    }

    /** Decodes a stored task's input and state, then takes it over with a fresh lease and launches it. */
    const claim = (
      record: TaskRecord.TaskRecord,
      task: Task.Any,
      context: Context.Context<never>
    ): Effect.Effect<TaskRecord.TaskInfo, RevisionConflict | TaskDecodeError | LookupError> =>
      Effect.gen(function* () {
        const input = yield* decodeField(task.codecs.input, record, "input", record.input)
        const state =
          record.state === undefined
            ? task.initial(input)
            : yield* decodeField(task.codecs.state, record, "state", record.state)
        const now = yield* Clock.currentTimeMillis
        const leaseMs = toMillis(task.leaseDuration ?? defaultLeaseMs)
        const lease = Lease.make(me, now, leaseMs)
        const info = yield* store.update(record.id, record.revision, {
          status: "running",
          lease,
          interrupt: undefined,
          reason: undefined,
          failure: undefined,
          error: undefined,
          finishedAt: undefined,
          attempts: record.attempts + 1,
          startedAt: record.startedAt ?? now,
          updatedAt: now
        })
        const interest = task.interestTimeout ?? options.interestTimeout
        const r: Running = {
          id: record.id,
          task,
          token: lease.token,
          leaseMs,
          interestMs: interest === undefined ? undefined : toMillis(interest),
          startedAt: now,
          tracker: new Progress.Tracker(record.progress),
          logs: [],
          lock: yield* Effect.makeSemaphore(1),
          done: yield* Deferred.make<void>(),
          info,
          flushedVersion: 0,
          flushedDone: record.progress.done,
          renewedAt: now,
          polledAt: now,
          stop: undefined,
          fiber: undefined
        }
        running.set(r.id, r)
        yield* launch(r, input, state, context)
        return info
      })

    const resumeWith = (id: string, context: Context.Context<never>): Effect.Effect<TaskRecord.TaskInfo, ResumeError> =>
      Effect.gen(function* () {
        const here = running.get(id)
        if (here !== undefined) return here.info
        const record = yield* store.get(id)
        const task = yield* lookupKind(record.kind, id)
        const now = yield* Clock.currentTimeMillis
        const why = notResumable(record, now)
        if (why !== undefined) return yield* new TaskNotResumable({ id, status: record.status, reason: why })
        return yield* claim(record, task, context)
      }).pipe(Effect.catchTag("RevisionConflict", () => resumeWith(id, context)))

    const resume = (id: string) => resumeWith(id, captured)

    const submit = <T extends Task.Any>(task: T, input: Task.Input<T>, startOptions?: StartOptions) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const id = startOptions?.id ?? TaskId.make(now)
        yield* TaskId.validate(id)
        const bytes = yield* encodeField(task.codecs.input, id, task.name, "input", input)
        if (!registry.has(task.name)) registry.set(task.name, task)
        yield* store.create({
          id,
          kind: task.name,
          status: "pending",
          progress: { done: 0 },
          attempts: 0,
          createdAt: now,
          updatedAt: now,
          input: bytes
        })
        return id
      })

    const start = <T extends Task.Any>(task: T, input: Task.Input<T>, startOptions?: StartOptions) =>
      Effect.gen(function* () {
        const id = yield* submit(task, input, startOptions)
        const record = yield* store.get(id).pipe(Effect.catchTag("TaskNotFound", (e) => Effect.die(e)))
        const context = yield* Effect.context<Task.Services<T>>()
        yield* claim(record, task, Context.merge(captured, context) as Context.Context<never>).pipe(
          // Someone touched the brand-new record (a concurrent cancel): leave it to them.
          Effect.catchTag("RevisionConflict", () => Effect.void),
          Effect.catchTag("TaskNotFound", (e) => Effect.die(e))
        )
        return id
      })

    const stopHere = (r: Running, kind: "pause" | "cancel", reason: string) =>
      Effect.zipRight(requestStop(r, { kind, reason }), Deferred.await(r.done))

    /** Pause or cancel: stop it here, ask its owner through the store, or change a task nobody runs directly. */
    const stopTask = (id: string, kind: "pause" | "cancel"): Effect.Effect<TaskRecord.TaskInfo, LookupError> =>
      Effect.gen(function* () {
        const verb = kind === "pause" ? "paused" : "cancelled"
        const here = running.get(id)
        if (here !== undefined) {
          yield* stopHere(here, kind, `${verb} on request`)
          return yield* store.getInfo(id)
        }
        const info = yield* store.getInfo(id)
        const now = yield* Clock.currentTimeMillis
        if (info.status === "running" && !Lease.isStale(info, now, me)) {
          if (info.interrupt === "cancel" || info.interrupt === kind) return info
          return yield* store.update(id, info.revision, { interrupt: kind })
        }
        const stoppable = kind === "pause" ? ["pending", "running"] : ["pending", "running", "paused", "failed"]
        if (!stoppable.includes(info.status)) return info
        return yield* store.update(id, info.revision, {
          status: kind === "pause" ? "paused" : "cancelled",
          lease: undefined,
          interrupt: undefined,
          reason: `${verb} on request${info.status === "running" ? " (its runner had stopped)" : ""}`,
          updatedAt: now,
          ...(kind === "cancel" ? { finishedAt: now } : {})
        })
      }).pipe(Effect.catchTag("RevisionConflict", () => stopTask(id, kind)))

    const status = (id: string) =>
      Effect.suspend(() => {
        const r = running.get(id)
        return r === undefined
          ? store.getInfo(id)
          : Effect.succeed({ ...r.info, progress: r.tracker.snapshot() } as TaskRecord.TaskInfo)
      })

    /** The end of a task as its typed success or failure; `undefined` while it is still on its way. */
    const ended = <T extends Task.Any>(task: T, id: string, now: number) =>
      Effect.gen(function* () {
        const info = yield* store.getInfo(id)
        yield* checkKind(task, info)
        switch (info.status) {
          case "completed": {
            const record = yield* store.get(id)
            if (record.result === undefined) {
              return yield* new TaskDecodeError({
                id,
                kind: info.kind,
                field: "result",
                found: "nothing",
                detail: "the record is completed but holds no result"
              })
            }
            return Option.some(yield* decodeField(task.codecs.success, info, "result", record.result))
          }
          case "failed": {
            const record = yield* store.get(id)
            if (info.failure?.kind === "error" && record.error !== undefined) {
              const error = yield* decodeField(task.codecs.error, info, "error", record.error)
              return yield* Effect.fail(error as Task.Error<T>)
            }
            return yield* new TaskDefect({ id, description: info.failure?.message ?? "unknown failure" })
          }
          case "cancelled":
            return yield* new TaskCancelled({ id })
          case "paused":
            return yield* new TaskPaused({ id, reason: info.reason ?? "paused" })
          case "running":
            if (!running.has(id) && Lease.isStale(info, now, me)) {
              return yield* new TaskPaused({ id, reason: "its runner stopped without pausing it" })
            }
            return Option.none()
          case "pending":
            // Waiting for a runner to start it: as long as the caller is willing to wait (`Effect.timeout`).
            return Option.none()
        }
      })

    const awaitTask = <T extends Task.Any>(
      task: T,
      id: string
    ): Effect.Effect<Task.Success<T>, Task.Error<T> | AwaitError> =>
      Effect.gen(function* () {
        while (true) {
          const r = running.get(id)
          if (r !== undefined) yield* Deferred.await(r.done)
          const now = yield* Clock.currentTimeMillis
          const result = yield* ended(task, id, now)
          if (Option.isSome(result)) return result.value as Task.Success<T>
          if (!running.has(id)) yield* Effect.sleep(awaitMs)
        }
      })

    const result = <T extends Task.Any>(task: T, id: string) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const value = yield* ended(task, id, now).pipe(
          Effect.catchTag("TaskPaused", (e) => Effect.fail(new TaskNotCompleted({ id: e.id, status: "paused" }))),
          Effect.catchTag("TaskCancelled", (e) => Effect.fail(new TaskNotCompleted({ id: e.id, status: "cancelled" })))
        )
        if (Option.isNone(value)) return yield* new TaskNotCompleted({ id, status: "running" })
        return value.value as Task.Success<T>
      })

    const run = <T extends Task.Any>(task: T, input: Task.Input<T>, runOptions?: StartOptions) =>
      Effect.gen(function* () {
        const id = runOptions?.id
        const existing =
          id === undefined
            ? undefined
            : yield* store.getInfo(id).pipe(
                Effect.map((info) => info as TaskRecord.TaskInfo | undefined),
                Effect.catchTag("TaskNotFound", () => Effect.succeed(undefined))
              )
        let taskId: string
        if (existing === undefined) {
          taskId = yield* start(task, input, runOptions)
        } else {
          yield* checkKind(task, existing)
          taskId = existing.id
          if (!registry.has(task.name)) registry.set(task.name, task)
          if (existing.status !== "completed" && !running.has(taskId)) {
            const context = yield* Effect.context<Task.Services<T>>()
            yield* resumeWith(taskId, Context.merge(captured, context) as Context.Context<never>)
          }
        }
        return yield* awaitTask(task, taskId).pipe(
          Effect.onInterrupt(() =>
            Effect.suspend(() => {
              const r = running.get(taskId)
              return r === undefined ? Effect.void : stopHere(r, "pause", "the caller of run was interrupted")
            })
          )
        )
      })

    const poll = (id: string, pollOptions?: PollOptions): Effect.Effect<TaskRecord.TaskInfo, ResumeError> =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const r = running.get(id)
        if (r !== undefined) {
          r.polledAt = now
          return yield* status(id)
        }
        let info = yield* store.getInfo(id)
        // Polls are coalesced: a frontend polling every 100 ms does not write 10 times a second.
        if (info.polledAt === undefined || info.polledAt <= now - Math.min(flushMs, 1000)) {
          info = yield* store
            .update(id, info.revision, { polledAt: now })
            .pipe(Effect.catchTag("RevisionConflict", () => store.getInfo(id)))
        }
        const resumable =
          info.status === "paused" ||
          info.status === "pending" ||
          (info.status === "running" && Lease.isStale(info, now, me))
        if (pollOptions?.resume === true && resumable && registry.has(info.kind)) {
          yield* resume(id).pipe(Effect.catchTag("TaskNotResumable", () => Effect.void))
          return yield* status(id)
        }
        return info
      })

    const forget = (id: string): Effect.Effect<void, LookupError | TaskStillRunning> =>
      Effect.gen(function* () {
        const r = running.get(id)
        if (r !== undefined) yield* stopHere(r, "cancel", "forgotten")
        const info = yield* store.getInfo(id)
        const now = yield* Clock.currentTimeMillis
        if (info.status === "running" && !Lease.isStale(info, now, me)) {
          return yield* new TaskStillRunning({ id, holder: describeHolder(info, now) })
        }
        yield* store.delete(id, info.revision)
      }).pipe(Effect.catchTag("RevisionConflict", () => forget(id)))

    return TaskRunner.of({
      submit,
      start,
      run,
      resume,
      pause: (id) => stopTask(id, "pause"),
      cancel: (id) => stopTask(id, "cancel"),
      status,
      list: (filter) => store.list(filter),
      await: awaitTask,
      result,
      poll,
      forget,
      logs: (id, logOptions) => store.readLogs(id, logOptions)
    })
  })

/**
 * The runner as a layer over a `TaskStore`. Services the registered tasks need are taken when the layer is built.
 *
 * @example
 * const Runner = TaskRunner.layer({ tasks: [EmbedCorpus] }).pipe(Layer.provide(TaskStore.layerMemory))
 */
export const layer = <const Tasks extends ReadonlyArray<Task.Any>>(
  options: Options & { readonly tasks: Tasks }
): Layer.Layer<TaskRunner, never, TaskStore | Task.Services<Tasks[number]>> =>
  Layer.scoped(TaskRunner, make(options)) as Layer.Layer<TaskRunner, never, TaskStore | Task.Services<Tasks[number]>>

/** True when a running task's lease has expired or its holder on this host is gone: it may be resumed. */
export const isStale = (info: TaskRecord.TaskInfo, now: number): boolean => Lease.isStale(info, now, Lease.self())

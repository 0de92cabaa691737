/**
 * Runs tasks as fibers over a `TaskStore`: claims them with a lease, heartbeats and flushes progress, captures logs,
 * watches for pause and cancel requests, maps fiber interruption to pause or cancel, and resumes tasks by id through
 * the registry of definitions it was built with.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Await from "./internal/runner/await.js"
import * as Claim from "./internal/runner/claim.js"
import * as Control from "./internal/runner/control.js"
import * as Engine from "./internal/runner/engine.js"
import * as Start from "./internal/runner/start.js"
import * as Work from "./internal/runner/work.js"
import type * as Task from "./Task.js"
import type {
  InvalidTaskId,
  TaskAlreadyExists,
  TaskCancelled,
  TaskDecodeError,
  TaskDefect,
  TaskEncodeError,
  TaskInputMismatch,
  TaskKindMismatch,
  TaskNotCompleted,
  TaskNotFound,
  TaskNotResumable,
  TaskPaused,
  TaskStillRunning,
  TaskStoreError,
  UnknownTaskKind
} from "./TaskError.js"
import type * as TaskRecord from "./TaskRecord.js"
import type { TaskStore } from "./TaskStore.js"

/**
 * How a runner runs tasks. Every duration has a default that suits long work.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The task definitions this runner can resume by id. */
  readonly tasks: ReadonlyArray<Task.Any>
  /** How long a lease lasts without a heartbeat (default 30 s). Another runner may take the task over after that. */
  readonly leaseDuration?: Duration.DurationInput | undefined
  /**
   * How often progress and logs are flushed and the lease renewed (default 1 s); less often where a write of the
   * record takes long (at most once per 50 times the last write's duration, the lease still a third through).
   */
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

/**
 * Options for `start` and `run`.
 *
 * @since 0.1.0
 * @category models
 */
export interface StartOptions {
  /** The task id; generated (UUIDv7) when absent. */
  readonly id?: string | undefined
}

/**
 * What a worker runs.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkOptions {
  /** The kinds it claims (each must be registered with the runner). Default: every kind the runner knows. */
  readonly kinds?: ReadonlyArray<string> | undefined
  /** How many tasks it runs at once (default 4). */
  readonly concurrency?: number | undefined
  /**
   * Whether it also takes over stale tasks of its kinds: tasks whose holder died (at once on this host) or whose
   * lease expired (elsewhere). Default `false`: a crashed task then waits for a manual `resume`, as outside workers.
   */
  readonly takeover?: boolean | undefined
  /** The longest wait between two looks for work when nothing announces any (default 5 seconds). */
  readonly maxPollInterval?: Duration.DurationInput | undefined
}

/**
 * Options for `submit`.
 *
 * @since 0.1.0
 * @category models
 */
export interface SubmitOptions extends StartOptions {
  /** Workers claim queued tasks of higher priority first (default 0; any integer). */
  readonly priority?: number | undefined
  /** Not claimed by a worker before this time (a `Date`, or ms since epoch). */
  readonly runAt?: Date | number | undefined
}

/**
 * Options for `poll`.
 *
 * @since 0.1.0
 * @category models
 */
export interface PollOptions {
  /** Resume the task if it is paused, pending or stale and this runner knows its kind. */
  readonly resume?: boolean | undefined
}

/**
 * Errors of operations that address a stored task by id.
 *
 * @since 0.1.0
 * @category models
 */
export type LookupError = TaskNotFound | InvalidTaskId | TaskStoreError

/**
 * Errors of `resume`.
 *
 * @since 0.1.0
 * @category models
 */
export type ResumeError = LookupError | UnknownTaskKind | TaskNotResumable | TaskDecodeError

/**
 * Errors of `start`.
 *
 * @since 0.1.0
 * @category models
 */
export type StartError = TaskAlreadyExists | InvalidTaskId | TaskEncodeError | TaskDecodeError | TaskStoreError

/**
 * Errors of `await` and `result` besides the task's own error.
 *
 * @since 0.1.0
 * @category models
 */
export type AwaitError = LookupError | TaskKindMismatch | TaskDecodeError | TaskCancelled | TaskPaused | TaskDefect

/**
 * Errors of `run` besides the task's own error.
 *
 * @since 0.1.0
 * @category models
 */
export type RunError = StartError | ResumeError | AwaitError | TaskInputMismatch

/**
 * The runner service.
 *
 * @since 0.1.0
 * @category tags
 */
export class TaskRunner extends Context.Tag("@vectorlink/task/TaskRunner")<
  TaskRunner,
  {
    /** Starts a task in the background and returns its id. */
    readonly start: <T extends Task.Any>(
      task: T,
      input: Task.Input<T>,
      options?: StartOptions
    ) => Effect.Effect<string, StartError, Task.Services<T>>
    /**
     * Queues a task: stores it `pending` without running it. A worker (`work`, `vltask worker`) of its kind claims it,
     * by `priority` and age, once its `runAt` has come; any runner that knows its kind can also resume it by id.
     */
    readonly submit: <T extends Task.Any>(
      task: T,
      input: Task.Input<T>,
      options?: SubmitOptions
    ) => Effect.Effect<string, StartError>
    /**
     * Runs a task in the foreground to its result. With an `id` that exists, re-enters it from its checkpoint (or
     * returns its stored result); the input must then be the one it was started with (`TaskInputMismatch`).
     * Interrupting the caller pauses the task.
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
    /**
     * True when a `running` task's lease can be taken over, seen from this runner (its `host`, its process): the lease
     * expired, or its holder on this host is gone. Such a task is resumable.
     */
    readonly isStale: (info: TaskRecord.TaskInfo, now: number) => boolean
    /**
     * Starts a worker for the length of the scope: it claims `pending` tasks of its kinds (and, with `takeover`, stale
     * ones) and runs up to `concurrency` at once. Closing the scope hands its running tasks back as `pending`, from
     * their last checkpoints, for another worker to claim at once. See docs/workers.md.
     */
    readonly work: (options?: WorkOptions) => Effect.Effect<void, UnknownTaskKind, Scope.Scope>
  }
>() {}

/**
 * Builds a runner over the `TaskStore` in context. Tasks still running when the scope closes are paused.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<TaskRunner["Type"], never, TaskStore | Scope.Scope> =>
  Effect.map(Engine.make(options), (engine) =>
    TaskRunner.of({
      submit: (task, input, startOptions) => Start.submit(engine, task, input, startOptions),
      start: (task, input, startOptions) => Start.start(engine, task, input, startOptions),
      run: (task, input, runOptions) => Start.run(engine, task, input, runOptions),
      resume: (id) => Claim.resume(engine, id, engine.captured),
      pause: (id) => Control.stop(engine, id, "pause"),
      cancel: (id) => Control.stop(engine, id, "cancel"),
      status: (id) => Control.status(engine, id),
      list: (filter) => engine.store.list(filter),
      await: (task, id) => Await.awaitTask(engine, task, id),
      result: (task, id) => Await.result(engine, task, id),
      poll: (id, pollOptions) => Control.poll(engine, id, pollOptions),
      forget: (id) => Control.forget(engine, id),
      logs: (id, logOptions) => engine.store.readLogs(id, logOptions),
      isStale: (info, now) => Engine.isStale(engine, info, now),
      work: (workOptions) => Work.work(engine, workOptions)
    })
  )

/**
 * The runner as a layer over a `TaskStore`. Services the registered tasks need are taken when the layer is built.
 *
 * @example
 * const Runner = TaskRunner.layer({ tasks: [EmbedCorpus] }).pipe(Layer.provide(TaskStore.layerMemory))
 * @since 0.1.0
 * @category layers
 */
export const layer = <const Tasks extends ReadonlyArray<Task.Any>>(
  options: Options & { readonly tasks: Tasks }
): Layer.Layer<TaskRunner, never, TaskStore | Task.Services<Tasks[number]>> =>
  Layer.scoped(TaskRunner, make(options)) as Layer.Layer<TaskRunner, never, TaskStore | Task.Services<Tasks[number]>>

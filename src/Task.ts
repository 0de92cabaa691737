/**
 * Task definitions: a name, Schemas for input, state, success and error, the first state, and the work itself as an
 * Effect that checkpoints its state and reports progress through a typed handle.
 *
 * @example
 * import { Effect, Schema } from "effect"
 * import { Task } from "@vectorlink/task"
 *
 * const Count = Task.make({
 *   name: "count",
 *   input: Schema.Struct({ to: Schema.Number }),
 *   state: Schema.Struct({ next: Schema.Number }),
 *   success: Schema.Number,
 *   initial: () => ({ next: 0 }),
 *   run: (input, task) =>
 *     Effect.gen(function* () {
 *       yield* task.total(input.to)
 *       for (let i = task.state.next; i < input.to; i++) {
 *         yield* task.progress(1)
 *         if (i % 100 === 0) yield* task.checkpoint({ next: i + 1 })
 *       }
 *       return input.to
 *     })
 * })
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Schedule from "effect/Schedule"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { CheckpointError, ChildError } from "./TaskError.js"
import * as TaskCodec from "./TaskCodec.js"

/**
 * Any Schema without requirements: what a task definition takes for its input, state, success and error.
 *
 * @since 0.1.0
 * @category models
 */
export type AnySchema =
  | Schema.Schema<any, any, never>
  | Schema.Schema<any, never, never>
  | Schema.Schema<never, any, never>
  | Schema.Schema<never, never, never>

/**
 * The handle a running task gets: its current state, and the steps it reports progress and checkpoints with.
 *
 * @since 0.1.0
 * @category models
 */
export interface Handle<S> {
  /** The task's id. */
  readonly id: string
  /** The last checkpoint, or the initial state on a first run. Updated when `checkpoint` returns. */
  readonly state: S
  /** 1 on the first run, 2 on the first resume, and so on. */
  readonly attempt: number
  /** Persists `state`; when this returns, the state survives any crash and is where a resume starts. */
  readonly checkpoint: (state: S) => Effect.Effect<void, CheckpointError>
  /** Adds `n` (default 1) items done. No I/O: the runner persists progress on its own schedule. */
  readonly progress: (n?: number) => Effect.Effect<void>
  /** Sets the number of items expected in all. */
  readonly total: (n: number) => Effect.Effect<void>
  /** Sets a short message shown with the progress. */
  readonly message: (text: string) => Effect.Effect<void>
  /** Adds `n` (default 1) items done, synchronously (a function call: for code that is not an Effect). */
  readonly advance: (n?: number) => void
  /**
   * The progress counter itself, for the hottest loops: `counter.done += n` is a field update and nothing else. The
   * runner reads it on its own schedule.
   *
   * @example
   * const counter = task.counter
   * for (const item of batch) { work(item); counter.done++ }
   */
  readonly counter: { done: number }
  /** Sets the number of items done outright (e.g. after a resume that skipped work). */
  readonly setDone: (n: number) => void
  /**
   * Runs another task as this one's child, and returns its typed success (or fails with its typed error). The child
   * is a task of its own — its own checkpoints, progress, logs and stored result — with an id derived from this
   * task's id and `key`, so a resume of this task re-attaches to it: a child that completed returns its stored result
   * without running again, one that was paused, failed or stopped with its process resumes from its own last
   * checkpoint. Its progress rolls up into this task's. Pausing or cancelling this task pauses or cancels its running
   * children; interrupting this effect alone (a timeout, a race) pauses the child. Run children side by side with
   * `Effect.all` or `Effect.forEach` and `concurrency`. See docs/composing-tasks.md.
   */
  readonly child: <I extends AnySchema, S2 extends AnySchema, A extends AnySchema, E extends AnySchema, R = never>(
    task: Task<I, S2, A, E, R>,
    input: I["Type"],
    options?: ChildOptions
  ) => Effect.Effect<A["Type"], E["Type"] | ChildError, Exclude<R, CurrentTask>>
}

/**
 * Options of `Handle.child`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ChildOptions {
  /**
   * Names the child among its parent's children (its id is `<parent id>.<key>`): letters, digits and `-_:@+=`.
   * Default: the child's kind and a hash of its encoded input, so the same child with the same input is the same
   * child. Give keys when two children may have the same input, or when the input may change between runs.
   */
  readonly key?: string | undefined
  /**
   * How many units of this task's progress the child counts for (default: the child's own total). The parent's
   * total is the one it sets with `task.total`, or, when it sets none, the sum of its children's weights.
   */
  readonly weight?: number | undefined
  /**
   * Queue the child for the workers (`runner.work`, `vltask worker`) of its kind instead of running it in this
   * process: stored `pending`, claimed by whichever worker comes first, anywhere the store reaches; queued again when
   * the parent resumes it. A parent waiting for queued children holds its own worker slot meanwhile: give the workers
   * that run children more slots than parents, or run the parents elsewhere.
   */
  readonly queue?: boolean | undefined
}

/**
 * The running task, as an ambient service for helpers that do not hold the handle.
 *
 * @since 0.1.0
 * @category tags
 */
export class CurrentTask extends Context.Tag("@vectorlink/task/CurrentTask")<CurrentTask, Handle<unknown>>() {}

/**
 * Options a definition may set for how it is run.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunOptions {
  /** Pause the task when nobody has polled it for this long (the requester went away). */
  readonly interestTimeout?: Duration.DurationInput | undefined
  /** How long a runner's lease on this task lasts without a heartbeat (default: the runner's, 30 s). */
  readonly leaseDuration?: Duration.DurationInput | undefined
  /**
   * Retries a run that failed (with the task's typed error, or a defect) from its last checkpoint, up to `times`
   * more runs, each after the delay `schedule` gives for it (default: 1 s, doubling, jittered). Meanwhile the task
   * waits as `pending` with a run-after time, for a worker of its kind (or a `resume`); each failed attempt is kept
   * in its log. After the last attempt it fails for good. Cancellation, pauses and store failures are not retried.
   */
  readonly retry?: Retry | undefined
}

/**
 * A task's retry policy (see `RunOptions.retry`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Retry {
  /** How many times a failed run is retried (0: never). */
  readonly times: number
  /** The delay before each retry, as an Effect `Schedule` (e.g. `Schedule.exponential("1 second")`). */
  readonly schedule?: Schedule.Schedule<unknown, unknown> | undefined
}

/**
 * A task definition.
 *
 * @since 0.1.0
 * @category models
 */
export interface Task<
  Input extends AnySchema,
  State extends AnySchema,
  Success extends AnySchema,
  Error extends AnySchema,
  R
> extends RunOptions {
  readonly name: string
  readonly input: Input
  readonly state: State
  readonly success: Success
  readonly error: Error
  /** The state a first run starts from. */
  readonly initial: (input: Input["Type"]) => State["Type"]
  /** The work. Re-entered with the last checkpoint as `task.state` on resume. */
  readonly run: (
    input: Input["Type"],
    task: Handle<State["Type"]>
  ) => Effect.Effect<Success["Type"], Error["Type"] | CheckpointError | ChildError, R | CurrentTask>
  /** Codecs derived from the Schemas, built once. */
  readonly codecs: {
    readonly input: TaskCodec.Codec<Input["Type"]>
    readonly state: TaskCodec.Codec<State["Type"]>
    readonly success: TaskCodec.Codec<Success["Type"]>
    readonly error: TaskCodec.Codec<Error["Type"]>
  }
}

/**
 * Any task definition.
 *
 * @since 0.1.0
 * @category models
 */
export interface Any extends Task<any, any, any, any, any> {}

/**
 * Any task definition that needs no services besides the runner's.
 *
 * @since 0.1.0
 * @category models
 */
export interface AnyNoContext extends Task<any, any, any, any, never> {}

/**
 * The input type of a task definition.
 *
 * @since 0.1.0
 * @category models
 */
export type Input<T> = T extends Task<infer I, any, any, any, any> ? I["Type"] : never
/**
 * The state type of a task definition.
 *
 * @since 0.1.0
 * @category models
 */
export type State<T> = T extends Task<any, infer S, any, any, any> ? S["Type"] : never
/**
 * The success type of a task definition.
 *
 * @since 0.1.0
 * @category models
 */
export type Success<T> = T extends Task<any, any, infer A, any, any> ? A["Type"] : never
/**
 * The error type of a task definition.
 *
 * @since 0.1.0
 * @category models
 */
export type Error<T> = T extends Task<any, any, any, infer E, any> ? E["Type"] : never
/**
 * The services a task definition needs (besides `CurrentTask`, which the runner provides).
 *
 * @since 0.1.0
 * @category models
 */
export type Services<T> = T extends Task<any, any, any, any, infer R> ? Exclude<R, CurrentTask> : never

const codec = <S extends AnySchema>(schema: S): TaskCodec.Codec<S["Type"]> =>
  TaskCodec.json(schema as Schema.Schema<S["Type"], unknown, never>)

/**
 * Defines a task.
 *
 * `initial(input)` gives the first state; `run(input, task)` does the work, reading `task.state` and calling
 * `task.checkpoint(next)` whenever it has made progress worth keeping.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <
  Input extends AnySchema,
  State extends AnySchema,
  Success extends AnySchema,
  R,
  Error extends AnySchema = typeof Schema.Never
>(
  options: {
    readonly name: string
    readonly input: Input
    readonly state: State
    readonly success: Success
    readonly error?: Error | undefined
    readonly initial: (input: Input["Type"]) => State["Type"]
    readonly run: (
      input: Input["Type"],
      task: Handle<State["Type"]>
    ) => Effect.Effect<Success["Type"], Error["Type"] | CheckpointError | ChildError, R>
  } & RunOptions
): Task<Input, State, Success, Error, Exclude<R, CurrentTask>> => {
  const error = (options.error ?? Schema.Never) as Error
  return {
    ...options,
    error,
    run: options.run as Task<Input, State, Success, Error, Exclude<R, CurrentTask>>["run"],
    codecs: {
      input: codec(options.input),
      state: codec(options.state),
      success: codec(options.success),
      error: codec(error)
    }
  }
}

/**
 * The running task's handle, from inside a task.
 *
 * @since 0.1.0
 * @category accessors
 */
export const current: Effect.Effect<Handle<unknown>, never, CurrentTask> = CurrentTask

/**
 * Adds `n` (default 1) items done to the running task.
 *
 * @since 0.1.0
 * @category accessors
 */
export const progress = (n = 1): Effect.Effect<void, never, CurrentTask> =>
  Effect.map(CurrentTask, (task) => task.advance(n))

/**
 * Sets the running task's expected total.
 *
 * @since 0.1.0
 * @category accessors
 */
export const total = (n: number): Effect.Effect<void, never, CurrentTask> =>
  Effect.flatMap(CurrentTask, (t) => t.total(n))

/**
 * Sets the running task's message.
 *
 * @since 0.1.0
 * @category accessors
 */
export const message = (text: string): Effect.Effect<void, never, CurrentTask> =>
  Effect.flatMap(CurrentTask, (t) => t.message(text))

/** Creating tasks: submit (stored `pending`), start (stored, then claimed here), and run (started or re-entered, then awaited). */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Task from "../../Task.js"
import * as TaskCodec from "../../TaskCodec.js"
import { TaskInputMismatch } from "../../TaskError.js"
import * as TaskId from "../../TaskId.js"
import type * as TaskRecord from "../../TaskRecord.js"
import type { StartOptions, SubmitOptions } from "../../TaskRunner.js"
import { awaitTask } from "./await.js"
import { claimAndBegin, resume } from "./claim.js"
import { decodeField, encodeField } from "./codecs.js"
import { stopHere } from "./control.js"
import { checkKind, type Engine, register } from "./engine.js"

/** The runner's services merged with the caller's: what a task started by this caller runs with. */
export const callerContext = <R>(engine: Engine) =>
  Effect.contextWith((context: Context.Context<R>) => Context.merge(engine.captured, context) as Context.Context<never>)

/** A new task's id (validated, or made as of `now`) and its encoded input. */
const prepare = <T extends Task.Any>(
  engine: Engine,
  task: T,
  input: Task.Input<T>,
  options: StartOptions | undefined,
  now: number
) =>
  Effect.gen(function* () {
    const id = options?.id ?? TaskId.make(now)
    yield* TaskId.validate(id)
    const bytes = yield* encodeField(task.codecs.input, id, task.name, "input", input)
    register(engine, task)
    return { id, bytes }
  })

/** Where a child task belongs: its parent, and its weight in the parent's progress. */
export interface Membership {
  readonly parent: string
  readonly weight: number | undefined
}

/** What a child's record says of its family. */
const family = (membership: Membership | undefined) => ({
  ...(membership === undefined ? {} : { parent: membership.parent }),
  ...(membership?.weight === undefined ? {} : { weight: membership.weight })
})

/** Stores a task as `pending` (with its priority and run-after time), and returns its id. A child is stored with its family. */
export const submit = <T extends Task.Any>(
  engine: Engine,
  task: T,
  input: Task.Input<T>,
  options?: SubmitOptions,
  membership?: Membership
) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const { id, bytes } = yield* prepare(engine, task, input, options, now)
    const priority = options?.priority ?? 0
    const runAt = options?.runAt instanceof Date ? options.runAt.getTime() : options?.runAt
    if (!Number.isSafeInteger(priority)) {
      return yield* Effect.dieMessage(`submit: priority must be an integer, not ${priority}`)
    }
    yield* engine.store.create({
      id,
      kind: task.name,
      status: "pending",
      progress: { done: 0 },
      attempts: 0,
      createdAt: now,
      updatedAt: now,
      input: bytes,
      ...(priority === 0 ? {} : { priority }),
      ...(runAt === undefined || runAt <= now ? {} : { runAt }),
      ...family(membership)
    })
    yield* Effect.forEach(engine.wakers, (wake) => wake, { discard: true })
    return id
  })

/**
 * Stores a task already claimed by this runner (one write: created `running` with its lease), and launches it. A
 * child is stored with its parent and weight.
 */
export const start = <T extends Task.Any>(
  engine: Engine,
  task: T,
  input: Task.Input<T>,
  options?: StartOptions,
  membership?: Membership
) =>
  Effect.gen(function* () {
    const { id, bytes } = yield* prepare(engine, task, input, options, yield* Clock.currentTimeMillis)
    // The task starts from its input as stored, as a resume will: decoded from the bytes, before anything is written.
    const decoded = yield* decodeField(task.codecs.input, { id, kind: task.name }, "input", bytes)
    const context = yield* callerContext<Task.Services<T>>(engine)
    yield* claimAndBegin(
      engine,
      task,
      (lease, now) =>
        engine.store.create({
          id,
          kind: task.name,
          status: "running",
          lease,
          progress: { done: 0 },
          attempts: 1,
          createdAt: now,
          updatedAt: now,
          startedAt: now,
          input: bytes,
          ...family(membership)
        }),
      decoded,
      task.initial(decoded),
      context
    )
    return id
  })

/** Fails with `TaskInputMismatch` unless `input` encodes to the bytes `record` was started with. */
export const checkSameInput = <T extends Task.Any>(task: T, record: TaskRecord.TaskRecord, input: Task.Input<T>) =>
  Effect.gen(function* () {
    const given = yield* encodeField(task.codecs.input, record.id, task.name, "input", input)
    const stored = record.input
    if (stored.length !== given.length || stored.some((byte, i) => byte !== given[i])) {
      return yield* new TaskInputMismatch({
        id: record.id,
        stored: TaskCodec.preview(stored),
        given: TaskCodec.preview(given)
      })
    }
  })

/**
 * Runs a task to its end in the foreground: started, re-entered from its checkpoint, or its stored end read. With an
 * id, it is started unless a task has that id already (one write, and no read before it: the store's create refuses
 * a taken id); then that task is re-entered or its end read.
 */
export const run = <T extends Task.Any>(engine: Engine, task: T, input: Task.Input<T>, options?: StartOptions) =>
  Effect.gen(function* () {
    const id = options?.id
    const started = yield* start(engine, task, input, options).pipe(
      Effect.catchTag("TaskAlreadyExists", (e) => (id === undefined ? Effect.fail(e) : Effect.succeed(undefined)))
    )
    let taskId: string
    if (started !== undefined) {
      taskId = started
    } else {
      const existing = yield* engine.store.getInfo(id!)
      yield* checkKind(task, existing)
      yield* checkSameInput(task, yield* engine.store.get(existing.id), input)
      taskId = existing.id
      if (existing.status !== "completed" && !engine.running.has(taskId)) {
        yield* resume(engine, taskId, yield* callerContext<Task.Services<T>>(engine))
      }
    }
    return yield* awaitTask(engine, task, taskId).pipe(
      Effect.onInterrupt(() =>
        Effect.suspend(() => {
          const r = engine.running.get(taskId)
          return r === undefined ? Effect.void : stopHere(r, "pause", "the caller of run was interrupted")
        })
      )
    )
  })

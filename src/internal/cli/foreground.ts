/**
 * Running a task from a command: its input from `--input`, a rerun's checks, the live bar while it runs (or one JSON
 * value with `--json`), its end as the CLI reports it, and `--detach` into a background process.
 */
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { spawn } from "node:child_process"
import { closeSync, mkdirSync, openSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type * as Task from "../../Task.js"
import { type TaskDefect, TaskKindMismatch, type TaskPaused } from "../../TaskError.js"
import type * as TaskRecord from "../../TaskRecord.js"
import { checkSameInput } from "../runner/start.js"
import { withBinaryAsBase64 } from "../binary.js"
import { findConfig } from "./config.js"
import type { Common, Context } from "./context.js"
import { exitCodes, InvalidInput, TaskEnded } from "./errors.js"
import { describeFailure, print, printJson, toJson } from "./output.js"
import { describe as describeProgress, Display } from "./progressBar.js"

/** How a command runs a task in the foreground. */
export interface Mode {
  /** One JSON value on stdout at the end instead of the live bar and lines for people. */
  readonly json: boolean
  /** The same command line continues the task (it names the task's id). */
  readonly rerunnable: boolean
}

/** What an interrupted (Ctrl-C) run prints: where the task stopped, and how to continue it. */
const interrupted = (last: Option.Option<TaskRecord.TaskInfo>, mode: Mode) =>
  Option.match(last, {
    onNone: () => `Interrupted.`,
    onSome: (i) =>
      i.status === "paused"
        ? `Paused ${i.id} at ${describeProgress(i)}. Continue from its last checkpoint with \`vltask resume ${i.id}\`${mode.rerunnable ? " (or the same command again)" : ""}.`
        : `Interrupted; task ${i.id} is ${i.status}.`
  })

/** Follows a task's progress on stdout until `until` completes, then draws the final state. */
export const withLiveBar = <A, E, R>(
  ctx: Context,
  id: string,
  until: Effect.Effect<A, E, R>,
  mode: Mode,
  interest = false
) =>
  Effect.gen(function* () {
    const display = new Display(process.stdout)
    const look = interest ? ctx.runner.poll(id) : ctx.runner.status(id)
    const render = Effect.forever(
      Effect.zipRight(
        Effect.tap(Effect.option(look), (info) => Effect.sync(() => Option.map(info, (i) => display.update(i)))),
        Effect.sleep(display.isTTY ? "100 millis" : "500 millis")
      )
    )
    const fiber = yield* Effect.fork(render)
    const finish = (draw: boolean) =>
      Effect.gen(function* () {
        yield* Fiber.interrupt(fiber)
        const last = yield* Effect.option(ctx.runner.status(id))
        if (draw && Option.isSome(last)) display.update(last.value, true)
        display.done()
        return last
      })
    const result = yield* until.pipe(
      Effect.onInterrupt(() =>
        Effect.flatMap(finish(true), (last) =>
          Effect.zipRight(
            print(interrupted(last, mode)),
            Effect.sync(() => (process.exitCode = exitCodes.interrupted))
          )
        )
      ),
      Effect.tapError(() => finish(false))
    )
    yield* finish(true)
    return result
  })

/** With `--json`: no bar; an interrupt prints the task's state as JSON. */
const quietly = <A, E, R>(ctx: Context, id: string, until: Effect.Effect<A, E, R>) =>
  until.pipe(
    Effect.onInterrupt(() =>
      Effect.flatMap(Effect.option(ctx.runner.status(id)), (last) =>
        Effect.zipRight(
          Option.match(last, { onNone: () => Effect.void, onSome: (i) => printJson(toJson(ctx, i, Date.now())) }),
          Effect.sync(() => (process.exitCode = exitCodes.interrupted))
        )
      )
    )
  )

/** Where a detached run's output goes: a file per task id in the temp directory, named in the message. */
export const detachedOutput = (id: string) => join(tmpdir(), "vltask", `${id}.out`)

/** Starts `vltask resume ID` as a detached background process on the same store and config. */
export const detach = (ctx: Context, c: Common, id: string) =>
  Effect.sync(() => {
    const configPath = findConfig(c.config)
    const args = [...process.execArgv, process.argv[1]!, "resume", id, "--store", ctx.url]
    if (configPath !== undefined) args.push("--config", configPath)
    const output = detachedOutput(id)
    mkdirSync(join(tmpdir(), "vltask"), { recursive: true })
    const fd = openSync(output, "a")
    const child = spawn(process.execPath, args, { detached: true, stdio: ["ignore", fd, fd] })
    // The child has its own copy of the descriptor.
    closeSync(fd)
    child.unref()
    return { pid: child.pid, output }
  })

/** The task's input from `--input` (a JSON object, the whole input), else the config's default, decoded. */
export const parseInput = (kind: string, task: Task.Any, text: Option.Option<string>, defaults: unknown) =>
  Effect.gen(function* () {
    let input: unknown = defaults ?? {}
    if (Option.isSome(text)) {
      try {
        input = JSON.parse(text.value)
      } catch (e) {
        return yield* new InvalidInput({ kind, detail: `--input is not JSON (${(e as Error).message})` })
      }
      if (typeof input !== "object" || input === null || Array.isArray(input)) {
        const got = input === null ? "null" : Array.isArray(input) ? "an array" : `a ${typeof input}`
        return yield* new InvalidInput({ kind, detail: `--input must be a JSON object, not ${got}` })
      }
    }
    return yield* Schema.decodeUnknown(task.input as Schema.Schema<unknown, unknown>)(input).pipe(
      Effect.mapError((e) => new InvalidInput({ kind, detail: ParseResult.TreeFormatter.formatErrorSync(e) }))
    )
  })

/** A task's success in its encoded (JSON) form, as the CLI prints it. */
export const encodeSuccess = (task: Task.AnyNoContext, value: unknown) =>
  Schema.encode(task.success as Schema.Schema<unknown, unknown>)(value).pipe(Effect.orDie)

/** The errors of awaiting a task that are the runner's own; any other is the task's typed failure. */
const runnerErrors = new Set([
  "TaskNotFound",
  "InvalidTaskId",
  "TaskStoreError",
  "TaskKindMismatch",
  "TaskDecodeError",
  "UnknownTaskKind",
  "TaskNotResumable",
  "TaskAlreadyExists",
  "TaskEncodeError",
  "TaskInputMismatch"
])

type Reported = TaskEnded | { readonly _tag: string; readonly message: string }

/** How the CLI reports the end of a task that did not complete. */
export const awaitEnd =
  (ctx: Context, id: string) =>
  (e: unknown): Effect.Effect<never, Reported> => {
    const tag = typeof e === "object" && e !== null ? (e as { _tag?: unknown })._tag : undefined
    switch (tag) {
      case "TaskPaused":
        return Effect.fail(new TaskEnded({ id, status: "paused", detail: (e as TaskPaused).reason }))
      case "TaskCancelled":
        return Effect.fail(new TaskEnded({ id, status: "cancelled", detail: "cancelled tasks are final" }))
      case "TaskDefect":
        return Effect.fail(new TaskEnded({ id, status: "failed", detail: (e as TaskDefect).description }))
      case "TaskStoreError":
        // The store failed under a task that exists: its run stopped at its last checkpoint, which is intact.
        return Effect.flatMap(Effect.either(ctx.store.getInfo(id)), (found) =>
          Effect.fail(
            found._tag === "Right"
              ? new TaskEnded({ id, status: "stopped", detail: (e as { readonly message: string }).message })
              : (e as Reported)
          )
        )
      default:
        return typeof tag === "string" && runnerErrors.has(tag)
          ? Effect.fail(e as Reported)
          : Effect.fail(new TaskEnded({ id, status: "failed", detail: describeFailure(e) }))
    }
  }

/** A rerun of an existing id must be of its kind, with its input, and resumable or completed. */
export const checkRerun = (task: Task.AnyNoContext, record: TaskRecord.TaskRecord, input: unknown) =>
  Effect.gen(function* () {
    if (record.kind !== task.name) {
      return yield* new TaskKindMismatch({ id: record.id, expected: task.name, found: record.kind })
    }
    yield* checkSameInput(task, record, input)
  })

/**
 * Runs `until` (which ends with the task's result) under the live bar and prints the result; with `--json`, prints the
 * task's state and its encoded result as one JSON value (its state alone when it did not complete).
 */
export const foreground = <E>(
  ctx: Context,
  task: Task.AnyNoContext,
  id: string,
  until: Effect.Effect<unknown, E>,
  mode: Mode
) =>
  Effect.gen(function* () {
    const followed = mode.json ? quietly(ctx, id, until) : withLiveBar(ctx, id, until, mode)
    const value = yield* followed.pipe(
      Effect.catchAll(awaitEnd(ctx, id)),
      Effect.tapError(() =>
        mode.json
          ? Effect.flatMap(Effect.option(ctx.runner.status(id)), (info) =>
              Option.match(info, { onNone: () => Effect.void, onSome: (i) => printJson(toJson(ctx, i, Date.now())) })
            )
          : Effect.void
      )
    )
    const encoded = yield* encodeSuccess(task, value)
    if (!mode.json) return yield* print(`Completed ${id}: ${JSON.stringify(encoded, withBinaryAsBase64)}`)
    const info = yield* ctx.runner.status(id)
    yield* printJson({ ...toJson(ctx, info, Date.now()), result: encoded })
  })

/**
 * The `vltask` command line: run tasks with a live progress bar, and list, show, watch, pause, cancel, resume, read
 * logs and results of tasks any process runs on the same store. Platform wiring lives in `bin.ts`.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { resolve } from "node:path"
import { importConfig } from "./internal/cli/importConfig.js"
import { checkSameInput } from "./internal/runner/start.js"
import { version } from "./internal/version.js"
import { Display, clock, describe as describeProgress } from "./internal/cli/progressBar.js"
import * as Holder from "./Holder.js"
import * as StoreUrl from "./StoreUrl.js"
import type * as Task from "./Task.js"
import { type TaskDefect, TaskKindMismatch, TaskNotCompleted, type TaskPaused, UnknownTaskKind } from "./TaskError.js"
import * as TaskId from "./TaskId.js"
import type * as TaskRecord from "./TaskRecord.js"
import * as TaskRunner from "./TaskRunner.js"
import { TaskStore } from "./TaskStore.js"

/**
 * What a `vltask.config.ts` module exports (as `default`, or as named `tasks` and `inputs`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Config {
  /** The task definitions the CLI can run and resume (tasks that need no services of their own). */
  readonly tasks: ReadonlyArray<Task.AnyNoContext>
  /** Default input per kind, merged under `--input`. */
  readonly inputs?: Readonly<Record<string, unknown>> | undefined
}

/**
 * Declares a CLI configuration (an identity function that gives you type checking).
 *
 * @since 0.1.0
 * @category constructors
 */
export const defineConfig = (config: Config): Config => config

/**
 * The config file names looked for in the working directory.
 *
 * @since 0.1.0
 * @category utils
 */
export const configNames = ["vltask.config.ts", "vltask.config.mts", "vltask.config.js", "vltask.config.mjs"]

/**
 * No configuration module was found where one is needed.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConfigNotFound extends Schema.TaggedError<ConfigNotFound>()("ConfigNotFound", {
  path: Schema.String
}) {
  override get message(): string {
    return `No vltask config found (looked for ${this.path}). Create vltask.config.ts exporting { tasks: [...] }, or pass --config FILE.`
  }
}

/**
 * The configuration module failed to load or exports no tasks.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConfigInvalid extends Schema.TaggedError<ConfigInvalid>()("ConfigInvalid", {
  path: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `The vltask config ${this.path} cannot be used: ${this.detail}.`
  }
}

/**
 * `--input` is not JSON or does not match the task's input Schema.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidInput extends Schema.TaggedError<InvalidInput>()("InvalidInput", {
  kind: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `Invalid input for ${JSON.stringify(this.kind)}: ${this.detail}. Pass --input with a JSON object.`
  }
}

/**
 * A task ended other than completed (for `run`, `resume`, `watch`, `result`).
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskEnded extends Schema.TaggedError<TaskEnded>()("TaskEnded", {
  id: Schema.String,
  status: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `Task ${this.id} ${this.status}: ${this.detail}`
  }
}

/**
 * Exit codes, distinct per kind of failure.
 *
 * @since 0.1.0
 * @category utils
 */
export const exitCodes = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  notResumable: 4,
  taskFailed: 5,
  paused: 6,
  interrupted: 130
} as const

// ---- shared options ------------------------------------------------------------------------------------------------

const store = Options.text("store").pipe(
  Options.withDescription("Store: file:DIR, sqlite:FILE or postgres://… (default: $VLTASK_STORE or file:.vltask)"),
  Options.optional
)
const config = Options.file("config").pipe(
  Options.withDescription("The config module with the task definitions (default: ./vltask.config.ts)"),
  Options.optional
)
const json = Options.boolean("json").pipe(Options.withDescription("Print machine-readable JSON"))
const verbose = Options.boolean("verbose").pipe(Options.withDescription("Show causes and stack traces of errors"))
const common = { store, config, verbose }
type Common = { readonly store: Option.Option<string>; readonly config: Option.Option<string> }

const taskId = Args.text({ name: "id" }).pipe(Args.withDescription("The task id"))

const storeUrl = (c: Common) => Option.getOrElse(c.store, () => process.env.VLTASK_STORE ?? StoreUrl.defaultUrl)

const findConfig = (c: Common): string | undefined => {
  const given = Option.getOrUndefined(c.config) ?? process.env.VLTASK_CONFIG
  if (given !== undefined) return resolve(given)
  return configNames.map((n) => resolve(n)).find((p) => existsSync(p))
}

const loadConfig = (c: Common, required: boolean): Effect.Effect<Config | undefined, ConfigNotFound | ConfigInvalid> =>
  Effect.gen(function* () {
    const path = findConfig(c)
    if (path === undefined || !existsSync(path)) {
      if (!required) return undefined
      return yield* new ConfigNotFound({ path: path ?? configNames.map((n) => resolve(n)).join(", ") })
    }
    const module = yield* Effect.tryPromise({
      try: () => importConfig(path),
      catch: (e) => new ConfigInvalid({ path, detail: e instanceof Error ? e.message : String(e) })
    })
    const candidate = (module.default ?? module) as Partial<Config>
    if (!Array.isArray(candidate.tasks)) {
      return yield* new ConfigInvalid({ path, detail: "it exports no `tasks` array" })
    }
    return { tasks: candidate.tasks, inputs: candidate.inputs }
  })

interface Context {
  readonly runner: TaskRunner.TaskRunner["Type"]
  readonly store: TaskStore["Type"]
  readonly config: Config | undefined
  readonly url: string
}

/** Opens the store and a runner over it (with the config's definitions), for the length of `f`. */
const withRunner = <A, E>(c: Common, requireConfig: boolean, f: (ctx: Context) => Effect.Effect<A, E, Scope.Scope>) =>
  Effect.gen(function* () {
    const loaded = yield* loadConfig(c, requireConfig)
    const url = storeUrl(c)
    const layer = TaskRunner.layer({ tasks: loaded?.tasks ?? [] }).pipe(Layer.provideMerge(StoreUrl.layer(url)))
    return yield* Effect.gen(function* () {
      const runner = yield* TaskRunner.TaskRunner
      const taskStore = yield* TaskStore
      return yield* f({ runner, store: taskStore, config: loaded, url })
    }).pipe(Effect.scoped, Effect.provide(layer))
  })

const definition = (ctx: Context, kind: string) => {
  const task = ctx.config?.tasks.find((t) => t.name === kind)
  return task === undefined
    ? Effect.fail(new UnknownTaskKind({ kind, known: (ctx.config?.tasks ?? []).map((t) => t.name) }))
    : Effect.succeed(task)
}

const print = (text: string) => Effect.sync(() => process.stdout.write(text.endsWith("\n") ? text : text + "\n"))
const printJson = (value: unknown) => print(JSON.stringify(value, null, 2))

const ago = (ms: number) => {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000))
  return s < 60
    ? `${s}s ago`
    : s < 3600
      ? `${Math.floor(s / 60)}m ago`
      : s < 86400
        ? `${Math.floor(s / 3600)}h ago`
        : `${Math.floor(s / 86400)}d ago`
}

/** The JSON shape of a task for `show --json` and `list --json`. */
const toJson = (ctx: Context, info: TaskRecord.TaskInfo, now: number) => {
  const stale = ctx.runner.isStale(info, now)
  return {
    ...info,
    stale,
    resumable: info.status === "paused" || info.status === "pending" || info.status === "failed" || stale
  }
}

/** Follows a task's progress on stdout until `until` completes, then draws the final state. */
const withLiveBar = <A, E, R>(ctx: Context, id: string, until: Effect.Effect<A, E, R>, interest = false) =>
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
          print(
            Option.match(last, {
              onNone: () => `Interrupted.`,
              onSome: (i) =>
                i.status === "paused"
                  ? `Paused ${i.id} at ${describeProgress(i)}. Run the same command again (or \`vltask resume ${i.id}\`) to continue from its last checkpoint.`
                  : `Interrupted; task ${i.id} is ${i.status}.`
            })
          ).pipe(Effect.zipRight(Effect.sync(() => (process.exitCode = exitCodes.interrupted))))
        )
      ),
      Effect.tapError(() => finish(false))
    )
    yield* finish(true)
    return result
  })

/** Starts `vltask resume ID` as a detached background process on the same store and config. */
const detach = (ctx: Context, c: Common, id: string) =>
  Effect.sync(() => {
    const configPath = findConfig(c)
    const args = [...process.execArgv, process.argv[1]!, "resume", id, "--store", ctx.url]
    if (configPath !== undefined) args.push("--config", configPath)
    const child = spawn(process.execPath, args, { detached: true, stdio: "ignore" })
    child.unref()
    return child.pid
  })

const parseInput = (kind: string, task: Task.Any, text: Option.Option<string>, defaults: unknown) =>
  Effect.gen(function* () {
    // The config's default input is used only when --input is absent; a given --input is the whole input.
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
const encodeSuccess = (task: Task.AnyNoContext, value: unknown) =>
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

/** A task's typed failure in one line: its tag and its fields as JSON (`Timeout {"after":30}`). */
const describeFailure = (error: unknown): string => {
  if (typeof error !== "object" || error === null) return JSON.stringify(error) ?? String(error)
  const { _tag, name: _name, message: _message, stack: _stack, ...fields } = error as Record<string, unknown>
  const json = JSON.stringify(fields)
  return typeof _tag === "string" ? (json === "{}" ? _tag : `${_tag} ${json}`) : JSON.stringify(error)
}

const awaitEnd =
  (id: string) =>
  (e: unknown): Effect.Effect<never, TaskEnded | { readonly _tag: string; readonly message: string }> => {
    const tag = typeof e === "object" && e !== null ? (e as { _tag?: unknown })._tag : undefined
    switch (tag) {
      case "TaskPaused":
        return Effect.fail(new TaskEnded({ id, status: "paused", detail: (e as TaskPaused).reason }))
      case "TaskCancelled":
        return Effect.fail(new TaskEnded({ id, status: "cancelled", detail: "cancelled tasks are final" }))
      case "TaskDefect":
        return Effect.fail(new TaskEnded({ id, status: "failed", detail: (e as TaskDefect).description }))
      default:
        return typeof tag === "string" && runnerErrors.has(tag)
          ? Effect.fail(e as { readonly _tag: string; readonly message: string })
          : Effect.fail(new TaskEnded({ id, status: "failed", detail: describeFailure(e) }))
    }
  }

/** A rerun of an existing id must be of its kind, with its input, and resumable or completed. */
const checkRerun = (task: Task.AnyNoContext, record: TaskRecord.TaskRecord, input: unknown) =>
  Effect.gen(function* () {
    if (record.kind !== task.name) {
      return yield* new TaskKindMismatch({ id: record.id, expected: task.name, found: record.kind })
    }
    yield* checkSameInput(task, record, input)
  })

/** Runs `until` (which ends with the task's result) under the live bar, then prints the result. */
const foreground = <E>(ctx: Context, task: Task.AnyNoContext, id: string, until: Effect.Effect<unknown, E>) =>
  Effect.gen(function* () {
    const result = yield* withLiveBar(ctx, id, until).pipe(Effect.catchAll(awaitEnd(id)))
    yield* print(`Completed ${id}: ${JSON.stringify(yield* encodeSuccess(task, result))}`)
  })

// ---- commands ------------------------------------------------------------------------------------------------------

const run = Command.make(
  "run",
  {
    ...common,
    kind: Args.text({ name: "kind" }).pipe(Args.withDescription("The task kind, as named in the config")),
    input: Options.text("input").pipe(Options.withDescription("The task input as JSON"), Options.optional),
    id: Options.text("id").pipe(
      Options.withDescription("The task id (rerun with the same id to resume)"),
      Options.optional
    ),
    detach: Options.boolean("detach").pipe(Options.withDescription("Run in a background process and return at once"))
  },
  (o) =>
    withRunner(o, true, (ctx) =>
      Effect.gen(function* () {
        const task = yield* definition(ctx, o.kind)
        const id = Option.getOrElse(o.id, () => TaskId.make())
        yield* TaskId.validate(id)
        const existing = Option.isSome(o.id) ? yield* Effect.option(ctx.store.get(id)) : Option.none()
        // Rerunning an id without --input resumes it with the input it was started with.
        const input =
          Option.isSome(existing) && Option.isNone(o.input) && existing.value.kind === task.name
            ? yield* task.codecs.input
                .decode(existing.value.input)
                .pipe(
                  Effect.mapError((e) => new InvalidInput({ kind: o.kind, detail: `the stored input: ${e.detail}` }))
                )
            : yield* parseInput(o.kind, task, o.input, ctx.config?.inputs?.[o.kind])
        if (o.detach) {
          // Everything is checked here, before the background process starts: it has no terminal to report to.
          if (Option.isNone(existing)) yield* ctx.runner.submit(task, input, { id })
          else yield* checkRerun(task, existing.value, input)
          const pid = yield* detach(ctx, o, id)
          return yield* print(`Started ${id} in the background (pid ${pid}). Follow it with \`vltask watch ${id}\`.`)
        }
        yield* foreground(ctx, task, id, ctx.runner.run(task, input, { id }))
      })
    )
).pipe(Command.withDescription("Run a task in the foreground with a live progress bar (Ctrl-C pauses it)"))

const list = Command.make(
  "list",
  {
    ...common,
    json,
    status: Options.choice("status", ["pending", "running", "paused", "completed", "failed", "cancelled"]).pipe(
      Options.repeated
    ),
    kind: Options.text("kind").pipe(Options.optional),
    limit: Options.integer("limit").pipe(Options.withDefault(50)),
    after: Options.text("after").pipe(Options.withDescription("Start after this id (paging)"), Options.optional)
  },
  (o) =>
    withRunner(o, false, (ctx) =>
      Effect.gen(function* () {
        const page = yield* ctx.runner.list({
          status: o.status.length === 0 ? undefined : o.status,
          kind: Option.getOrUndefined(o.kind),
          limit: o.limit,
          after: Option.getOrUndefined(o.after)
        })
        const now = Date.now()
        if (o.json) return yield* printJson(page.items.map((i) => toJson(ctx, i, now)))
        if (page.items.length === 0) return yield* print("No tasks.")
        const rows = page.items.map((i) => [
          i.id,
          i.kind,
          i.status === "running" && ctx.runner.isStale(i, now) ? "running (stale)" : i.status,
          describeProgress(i),
          ago(i.updatedAt)
        ])
        const header = ["ID", "KIND", "STATUS", "PROGRESS", "UPDATED"]
        const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)))
        const fmt = (r: ReadonlyArray<string>) =>
          r
            .map((cell, c) => cell.padEnd(widths[c]!))
            .join("  ")
            .trimEnd()
        yield* print([fmt(header), ...rows.map(fmt)].join("\n"))
        if (page.next !== undefined) yield* print(`… more: vltask list --after ${page.next}`)
      })
    )
).pipe(Command.withDescription("List tasks, optionally by status and kind"))

const show = Command.make("show", { ...common, json, id: taskId }, (o) =>
  withRunner(o, false, (ctx) =>
    Effect.gen(function* () {
      const info = yield* ctx.runner.status(o.id)
      const now = Date.now()
      if (o.json) return yield* printJson(toJson(ctx, info, now))
      const stale = ctx.runner.isStale(info, now)
      const when = (t: number | undefined) => (t === undefined ? "-" : `${new Date(t).toISOString()} (${ago(t)})`)
      const lines = [
        `id        ${info.id}`,
        `kind      ${info.kind}`,
        `status    ${info.status}${stale ? " (stale: its runner is gone; resumable)" : ""}${info.reason === undefined ? "" : ` — ${info.reason}`}`,
        `progress  ${describeProgress(info)}`,
        `attempts  ${info.attempts}`,
        `created   ${when(info.createdAt)}`,
        `updated   ${when(info.updatedAt)}`,
        `started   ${when(info.startedAt)}`,
        `finished  ${when(info.finishedAt)}`
      ]
      if (info.lease !== undefined) {
        const left = info.lease.expiresAt - now
        lines.push(
          `runner    ${Holder.describe(info.lease.holder)}, lease ${left > 0 ? `expires in ${clock(left)}` : "expired"}`
        )
      }
      if (info.interrupt !== undefined) lines.push(`requested ${info.interrupt}`)
      if (info.failure !== undefined) lines.push(`failure   ${info.failure.kind}: ${info.failure.message}`)
      yield* print(lines.join("\n"))
    })
  )
).pipe(Command.withDescription("Show one task"))

const watch = Command.make("watch", { ...common, id: taskId }, (o) =>
  withRunner(o, false, (ctx) =>
    Effect.gen(function* () {
      const until = Effect.gen(function* () {
        for (;;) {
          const info = yield* ctx.runner.poll(o.id)
          if (info.status !== "running" && info.status !== "pending") return info
          yield* Effect.sleep("250 millis")
        }
      })
      const end = yield* withLiveBar(ctx, o.id, until, true)
      if (end.status === "failed" || end.status === "cancelled") {
        return yield* new TaskEnded({
          id: o.id,
          status: end.status,
          detail: end.failure?.message ?? end.reason ?? end.status
        })
      }
      if (end.status === "paused")
        yield* print(`Task ${o.id} is paused${end.reason === undefined ? "" : ` (${end.reason})`}.`)
    })
  )
).pipe(Command.withDescription("Follow a task's progress live until it ends (from any terminal)"))

/** Waits (up to `timeout`) for a stop requested from this process to be carried out by the task's owner. */
const settle = (ctx: Context, id: string, timeout: Duration.DurationInput) =>
  Effect.gen(function* () {
    for (;;) {
      const info = yield* ctx.runner.status(id)
      if (info.interrupt === undefined || info.status !== "running") return info
      yield* Effect.sleep("100 millis")
    }
  }).pipe(Effect.timeoutTo({ duration: timeout, onSuccess: Option.some, onTimeout: Option.none }))

const stopCommand = (name: "pause" | "cancel") =>
  Command.make(
    name,
    {
      ...common,
      json,
      id: taskId,
      wait: Options.integer("wait").pipe(
        Options.withDescription("Seconds to wait for the task's runner to stop it (default 30)"),
        Options.withDefault(30)
      )
    },
    (o) =>
      withRunner(o, false, (ctx) =>
        Effect.gen(function* () {
          const requested = name === "pause" ? yield* ctx.runner.pause(o.id) : yield* ctx.runner.cancel(o.id)
          const settled = yield* settle(ctx, o.id, Duration.seconds(o.wait))
          const info = Option.getOrElse(settled, () => requested)
          if (o.json) return yield* printJson(toJson(ctx, info, Date.now()))
          if (Option.isNone(settled)) {
            return yield* print(
              `Asked the runner of ${o.id} to ${name} it; it has not done so within ${o.wait}s (status: ${info.status}).`
            )
          }
          yield* print(`${o.id} is ${info.status}.`)
        })
      )
  ).pipe(
    Command.withDescription(
      name === "pause" ? "Pause a task (resumable later), wherever it runs" : "Cancel a task for good, wherever it runs"
    )
  )

const resume = Command.make(
  "resume",
  {
    ...common,
    id: taskId,
    detach: Options.boolean("detach").pipe(Options.withDescription("Resume in a background process"))
  },
  (o) =>
    withRunner(o, true, (ctx) =>
      Effect.gen(function* () {
        const info = yield* ctx.store.getInfo(o.id)
        const task = yield* definition(ctx, info.kind)
        if (o.detach) {
          const pid = yield* detach(ctx, o, o.id)
          return yield* print(`Resuming ${o.id} in the background (pid ${pid}).`)
        }
        yield* foreground(ctx, task, o.id, Effect.zipRight(ctx.runner.resume(o.id), ctx.runner.await(task, o.id)))
      })
    )
).pipe(Command.withDescription("Resume a paused, failed or stale task from its last checkpoint"))

const logs = Command.make(
  "logs",
  {
    ...common,
    json,
    id: taskId,
    follow: Options.boolean("follow").pipe(Options.withAlias("f"), Options.withDescription("Keep printing new lines"))
  },
  (o) =>
    withRunner(o, false, (ctx) =>
      Effect.gen(function* () {
        yield* ctx.store.getInfo(o.id)
        const show = (lines: ReadonlyArray<TaskRecord.LogLine>) =>
          o.json && !o.follow
            ? printJson(lines)
            : Effect.forEach(
                lines,
                (l) =>
                  print(
                    o.json ? JSON.stringify(l) : `${new Date(l.time).toISOString()} ${l.level.padEnd(5)} ${l.message}`
                  ),
                { discard: true }
              )
        let lines = yield* ctx.runner.logs(o.id)
        yield* show(lines)
        if (!o.follow) return
        let last = lines[lines.length - 1]?.seq ?? 0
        for (;;) {
          yield* Effect.sleep("500 millis")
          lines = yield* ctx.runner.logs(o.id, { after: last })
          yield* show(lines)
          last = lines[lines.length - 1]?.seq ?? last
          const info = yield* ctx.runner.status(o.id)
          if (lines.length === 0 && info.status !== "running" && info.status !== "pending") return
        }
      })
    )
).pipe(Command.withDescription("Print a task's log lines"))

const result = Command.make("result", { ...common, id: taskId }, (o) =>
  withRunner(o, false, (ctx) =>
    Effect.gen(function* () {
      const info = yield* ctx.store.getInfo(o.id)
      const task = ctx.config?.tasks.find((t) => t.name === info.kind)
      if (task !== undefined) {
        const value = yield* ctx.runner.result(task, o.id).pipe(
          Effect.catchTag("TaskNotCompleted", (e) => Effect.fail(e)),
          Effect.catchAll(awaitEnd(o.id))
        )
        return yield* printJson(yield* encodeSuccess(task, value))
      }
      // Without the definition the stored JSON is printed as it is.
      if (info.status !== "completed") return yield* new TaskNotCompleted({ id: o.id, status: info.status })
      const record = yield* ctx.store.get(o.id)
      yield* print(Buffer.from(record.result ?? new Uint8Array()).toString("utf8"))
    })
  )
).pipe(Command.withDescription("Print the result of a completed task as JSON"))

const remove = Command.make("delete", { ...common, id: taskId }, (o) =>
  withRunner(o, false, (ctx) => Effect.zipRight(ctx.runner.forget(o.id), print(`Deleted ${o.id}.`)))
).pipe(Command.withDescription("Delete a task, its result and its logs"))

/**
 * `7d`, `12h`, `30m`, `90s`, or an Effect duration such as `2 hours`.
 *
 * @since 0.1.0
 * @category utils
 */
export const parseDuration = (text: string): Option.Option<Duration.Duration> => {
  const short = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/.exec(text.trim())
  if (short !== null) {
    const n = Number(short[1])
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[short[2] as "ms"]
    return Option.some(Duration.millis(n * unit))
  }
  return Duration.decodeUnknown(text)
}

const gc = Command.make(
  "gc",
  {
    ...common,
    olderThan: Options.text("older-than").pipe(Options.withDescription("Age by last update, e.g. 7d, 12h, 30m")),
    status: Options.choice("status", ["pending", "paused", "completed", "failed", "cancelled"]).pipe(Options.repeated),
    dryRun: Options.boolean("dry-run").pipe(Options.withDescription("Only print what would be deleted"))
  },
  (o) =>
    withRunner(o, false, (ctx) =>
      Effect.gen(function* () {
        const age = parseDuration(o.olderThan)
        if (Option.isNone(age)) {
          return yield* new InvalidInput({
            kind: "gc",
            detail: `--older-than ${JSON.stringify(o.olderThan)} is not a duration`
          })
        }
        const statuses: ReadonlyArray<TaskRecord.Status> = o.status.length === 0 ? ["completed", "cancelled"] : o.status
        const cutoff = Date.now() - Duration.toMillis(age.value)
        let after: string | undefined
        let deleted = 0
        for (;;) {
          const page = yield* ctx.runner.list({ status: statuses, limit: 500, after })
          for (const info of page.items) {
            if (info.updatedAt >= cutoff) continue
            if (!o.dryRun) yield* ctx.runner.forget(info.id).pipe(Effect.catchTag("TaskNotFound", () => Effect.void))
            yield* print(`${o.dryRun ? "would delete" : "deleted"} ${info.id} (${info.status}, ${ago(info.updatedAt)})`)
            deleted++
          }
          if (page.next === undefined) break
          after = page.next
        }
        yield* print(`${o.dryRun ? "Would delete" : "Deleted"} ${deleted} task(s).`)
      })
    )
).pipe(Command.withDescription("Delete finished tasks older than a given age"))

/**
 * The whole command tree.
 *
 * @since 0.1.0
 * @category constructors
 */
export const command = Command.make("vltask").pipe(
  Command.withDescription("Durable, resumable, observable long-running tasks"),
  Command.withSubcommands([
    run,
    list,
    show,
    watch,
    stopCommand("pause"),
    stopCommand("cancel"),
    resume,
    logs,
    result,
    remove,
    gc
  ])
)

/**
 * Parses `argv` (as `process.argv`) and runs the command.
 *
 * @since 0.1.0
 * @category constructors
 */
export const cli = Command.run(command, { name: "vltask", version })

/**
 * The exit code for an error that reached the top.
 *
 * @since 0.1.0
 * @category utils
 */
export const exitCodeOf = (error: { readonly _tag?: string }): number => {
  switch (error._tag) {
    case "ValidationError":
    case "InvalidTaskId":
    case "InvalidStoreUrl":
    case "InvalidInput":
    case "UnknownTaskKind":
    case "TaskKindMismatch":
    case "TaskInputMismatch":
    case "ConfigNotFound":
    case "ConfigInvalid":
      return exitCodes.usage
    case "TaskNotFound":
      return exitCodes.notFound
    case "TaskNotResumable":
    case "TaskNotCompleted":
    case "TaskStillRunning":
      return exitCodes.notResumable
    case "TaskEnded":
      return (error as { readonly status?: string }).status === "paused" ? exitCodes.paused : exitCodes.taskFailed
    default:
      return exitCodes.failure
  }
}

/** A hint printed under an error's one-line message, where the message alone does not say what to do. */
const hints: Record<string, (error: { readonly id?: string }) => string> = {
  TaskNotFound: () => "List the tasks of this store with `vltask list` (and check --store).",
  TaskNotResumable: (e) => `See the task with \`vltask show ${e.id ?? "<id>"}\`.`,
  TaskStoreError: () => "Run with --verbose for the cause.",
  TaskEnded: (e) => `See its logs with \`vltask logs ${e.id ?? "<id>"}\`.`
}

/**
 * Prints an error as one line (and a hint); with `verbose`, its cause too.
 *
 * @since 0.1.0
 * @category utils
 */
export const report = (error: unknown, verbose: boolean): Effect.Effect<void> =>
  Effect.sync(() => {
    // @effect/cli has already printed usage errors with the help text.
    if (ValidationError.isValidationError(error)) {
      process.exitCode = ValidationError.isHelpRequested(error) ? exitCodes.ok : exitCodes.usage
      return
    }
    const tagged = (typeof error === "object" && error !== null ? error : { message: String(error) }) as {
      readonly _tag?: string
      readonly message?: string
    }
    if (tagged._tag === "TaskEnded" && (error as TaskEnded).status === "paused") {
      // Paused by a request (another terminal, an interest timeout): information, with what to do next.
      const ended = error as TaskEnded
      process.stdout.write(`Paused ${ended.id} (${ended.detail}). Resume it with: vltask resume ${ended.id}\n`)
    } else {
      process.stderr.write(`vltask: ${tagged.message ?? String(error)}\n`)
      const hint = tagged._tag === undefined ? undefined : hints[tagged._tag]
      if (hint !== undefined) process.stderr.write(`hint: ${hint(tagged as { readonly id?: string })}\n`)
      if (verbose)
        process.stderr.write(`${error instanceof Error && error.stack !== undefined ? error.stack : String(error)}\n`)
    }
    process.exitCode = exitCodeOf(tagged)
  })

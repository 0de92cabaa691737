/**
 * The HTTP API's handlers: each endpoint as a call of the runner (or, for a stored result, a read of the store), and
 * the library's errors as the API's (`{ _tag, message, reason }` with its status). Inputs are decoded by the task's
 * own Schema before anything is stored.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { timingSafeEqual } from "node:crypto"
import type * as Task from "../../Task.js"
import * as TaskCodec from "../../TaskCodec.js"
import { TaskNotCompleted } from "../../TaskError.js"
import * as TaskHttp from "../../TaskHttp.js"
import type * as TaskRecord from "../../TaskRecord.js"
import { TaskRunner } from "../../TaskRunner.js"
import { TaskStore } from "../../TaskStore.js"
import { events, listEvents } from "./events.js"
import { view } from "./view.js"

/** How the API is run: the definitions it may start, and who may call it. */
export interface Options {
  readonly tasks: ReadonlyArray<Task.Any>
  /** Required as `Authorization: Bearer <token>` on every call (reads too unless `openReads`); none: no check. */
  readonly token?: Redacted.Redacted<string> | undefined
  readonly openReads?: boolean | undefined
}

/** The API's error for a library error: its status by what went wrong, its message as it is. */
const toHttp = (error: { readonly _tag: string; readonly message: string }) => {
  const fields = { message: error.message, reason: error._tag }
  switch (error._tag) {
    case "TaskNotFound":
      return new TaskHttp.NotFound(fields)
    case "InvalidTaskId":
    case "UnknownTaskKind":
    case "TaskEncodeError":
      return new TaskHttp.BadRequest(fields)
    case "TaskStoreError":
      return new TaskHttp.Unavailable(fields)
    default:
      return new TaskHttp.Conflict(fields)
  }
}

const orHttp = <A, R>(effect: Effect.Effect<A, { readonly _tag: string; readonly message: string }, R>) =>
  Effect.mapError(effect, toHttp)

/** True for `1` and `true`. */
const on = (flag: string | undefined) => flag === "1" || flag === "true"

/** Compares a presented token with the server's in constant time. */
const tokenMatches = (expected: Redacted.Redacted<string>, given: Redacted.Redacted<string>) => {
  const a = Buffer.from(Redacted.value(expected))
  const b = Buffer.from(Redacted.value(given))
  return a.length === b.length && timingSafeEqual(a, b)
}

const checkToken = (options: Options, open: boolean) => (given: Redacted.Redacted<string>) =>
  options.token === undefined || open || tokenMatches(options.token, given)
    ? Effect.void
    : Effect.fail(
        new TaskHttp.Unauthorized({
          message:
            Redacted.value(given) === ""
              ? "This server requires a token: send it as `Authorization: Bearer <token>`."
              : "The token is not this server's."
        })
      )

/** The security of the API: the token on writes, and on reads unless they are open. */
export const authorization = (options: Options) =>
  Layer.merge(
    Layer.succeed(TaskHttp.Authorization, { bearer: checkToken(options, false) }),
    Layer.succeed(TaskHttp.ReadAuthorization, { bearer: checkToken(options, options.openReads === true) })
  )

/** The handlers of the read endpoints. */
export const readHandlers = (options: Options) =>
  HttpApiBuilder.group(TaskHttp.Api, "read", (handlers) =>
    Effect.gen(function* () {
      const runner = yield* TaskRunner
      const store = yield* TaskStore
      const now = Clock.currentTimeMillis
      return handlers
        .handle("list", ({ urlParams }) =>
          Effect.gen(function* () {
            const page = yield* orHttp(runner.list(urlParams))
            const t = yield* now
            return { ...page, items: page.items.map((i) => view(runner, i, t)) }
          })
        )
        .handle("listEvents", ({ urlParams }) =>
          Effect.succeed(
            HttpServerResponse.stream(listEvents(runner, urlParams), {
              contentType: "text/event-stream",
              headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
            })
          )
        )
        .handle("kinds", () => Effect.succeed(options.tasks.map((t) => t.name)))
        .handle("status", ({ path, urlParams }) =>
          Effect.gen(function* () {
            const info = on(urlParams.poll)
              ? yield* orHttp(runner.poll(path.id, { resume: on(urlParams.resume) }))
              : yield* orHttp(runner.status(path.id))
            return view(runner, info, yield* now)
          })
        )
        .handle("logs", ({ path, urlParams }) =>
          Effect.gen(function* () {
            // A task that does not exist is a 404, not an empty log.
            yield* orHttp(store.getInfo(path.id))
            return yield* orHttp(runner.logs(path.id, urlParams))
          })
        )
        .handle("result", ({ path }) =>
          Effect.gen(function* () {
            const info = yield* orHttp(store.getInfo(path.id))
            if (info.status !== "completed") {
              const why = info.failure === undefined ? "" : ` (${info.failure.kind}: ${info.failure.message})`
              const notYet = new TaskNotCompleted({ id: path.id, status: info.status })
              return yield* new TaskHttp.Conflict({ message: `${notYet.message}${why}`, reason: notYet._tag })
            }
            const record = yield* orHttp(store.get(path.id))
            // The task's encoded success as stored, as JSON text (typed arrays as base64).
            return { result: JSON.parse(TaskCodec.text(record.result ?? new Uint8Array())) as unknown }
          })
        )
        .handle("events", ({ path }) =>
          Effect.gen(function* () {
            // Unknown ids are a 404 before the stream starts.
            yield* orHttp(runner.status(path.id))
            return HttpServerResponse.stream(events(runner, path.id), {
              contentType: "text/event-stream",
              headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
            })
          })
        )
    })
  )

/** The handlers of the endpoints that change tasks. */
export const writeHandlers = (options: Options) =>
  HttpApiBuilder.group(TaskHttp.Api, "write", (handlers) =>
    Effect.gen(function* () {
      const runner = yield* TaskRunner
      const now = Clock.currentTimeMillis
      const byKind = new Map(options.tasks.map((t) => [t.name, t]))
      const viewed = (info: Effect.Effect<TaskRecord.TaskInfo, { readonly _tag: string; readonly message: string }>) =>
        Effect.flatMap(orHttp(info), (i) => Effect.map(now, (t) => view(runner, i, t)))
      return handlers
        .handle("start", ({ payload }) =>
          Effect.gen(function* () {
            const task = byKind.get(payload.kind)
            if (task === undefined) {
              return yield* new TaskHttp.BadRequest({
                message: `Unknown task kind ${JSON.stringify(payload.kind)}; this server knows ${
                  Array.from(byKind.keys()).join(", ") || "none"
                }.`,
                reason: "UnknownTaskKind"
              })
            }
            // Validated by the task's own Schema before anything is stored.
            const input = yield* Schema.decodeUnknown(task.input as Schema.Schema<unknown, unknown, never>)(
              payload.input
            ).pipe(
              Effect.mapError(
                (e) =>
                  new TaskHttp.BadRequest({
                    message: `The input is not what task ${task.name} takes:\n${ParseResult.TreeFormatter.formatErrorSync(e)}`,
                    reason: "InvalidInput"
                  })
              )
            )
            const id = yield* orHttp(
              runner.start(task, input, payload.id === undefined ? {} : { id: payload.id }) as unknown as Effect.Effect<
                string,
                { readonly _tag: string; readonly message: string }
              >
            )
            return yield* viewed(runner.status(id))
          })
        )
        .handle("pause", ({ path }) => viewed(runner.pause(path.id)))
        .handle("cancel", ({ path }) => viewed(runner.cancel(path.id)))
        .handle("resume", ({ path }) => viewed(runner.resume(path.id)))
        .handle("poll", ({ path }) => viewed(runner.poll(path.id)))
        .handle("delete", ({ path }) => orHttp(runner.forget(path.id)))
    })
  )

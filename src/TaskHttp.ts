/**
 * Tasks over HTTP: a JSON API (built with `@effect/platform`'s `HttpApi`, its OpenAPI document at
 * `/api/openapi.json`) to list, start, pause, cancel, resume, poll and delete tasks, read their logs and results, and
 * follow one as Server-Sent Events. `layer` is the API over the runner in context, to mount in your own server;
 * `serve` runs it on a Node HTTP server (`vltask serve`). See docs/http.md.
 *
 * @since 0.1.0
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as OpenApi from "@effect/platform/OpenApi"
import type * as HttpServer from "@effect/platform/HttpServer"
import type { ServeError } from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { createServer } from "node:http"
import * as Dashboard from "./internal/http/dashboard.js"
import * as Handlers from "./internal/http/handlers.js"
import * as Lease from "./Lease.js"
import type * as Task from "./Task.js"
import * as TaskRecord from "./TaskRecord.js"
import type { TaskRunner } from "./TaskRunner.js"
import type { TaskStore } from "./TaskStore.js"

const errorFields = {
  message: Schema.String,
  /** The library's error behind it (`TaskNotFound`, `TaskInputMismatch`, …), where there is one. */
  reason: Schema.optional(Schema.String)
}

/**
 * The request is malformed: a bad id, an unknown kind, an input the task's Schema rejects, a bad parameter.
 *
 * @since 0.1.0
 * @category errors
 */
export class BadRequest extends Schema.TaggedError<BadRequest>()(
  "BadRequest",
  errorFields,
  HttpApiSchema.annotations({ status: 400 })
) {}

/**
 * A token is required and the request has none, or another one.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()(
  "Unauthorized",
  errorFields,
  HttpApiSchema.annotations({ status: 401 })
) {}

/**
 * No task has this id.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotFound extends Schema.TaggedError<NotFound>()(
  "NotFound",
  errorFields,
  HttpApiSchema.annotations({ status: 404 })
) {}

/**
 * The task is not in a state that allows it: not completed (for its result), running elsewhere (to delete it),
 * already there (to start it), final (to resume it).
 *
 * @since 0.1.0
 * @category errors
 */
export class Conflict extends Schema.TaggedError<Conflict>()(
  "Conflict",
  errorFields,
  HttpApiSchema.annotations({ status: 409 })
) {}

/**
 * The store cannot be reached or failed.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unavailable extends Schema.TaggedError<Unavailable>()(
  "Unavailable",
  errorFields,
  HttpApiSchema.annotations({ status: 503 })
) {}

/**
 * A task as the API shows it: its metadata (its lease without the fencing token, which stays with its runner),
 * whether it is stale (its runner is gone) and whether it can be resumed.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TaskView = Schema.extend(
  TaskRecord.TaskInfo.pipe(Schema.omit("lease")),
  Schema.Struct({
    lease: Schema.optional(Lease.Lease.pipe(Schema.omit("token"))),
    stale: Schema.Boolean,
    resumable: Schema.Boolean
  })
).annotations({ identifier: "Task" })

/**
 * A page of tasks; pass `next` as `after` for the following one.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TaskPage = Schema.Struct({ items: Schema.Array(TaskView), next: Schema.optional(Schema.String) })

const id = HttpApiSchema.param("id", Schema.String)

/** `1` or `true` as true. */
const Flag = Schema.optional(Schema.Literal("1", "0", "true", "false"))

/**
 * Requires `Authorization: Bearer <token>` (when the server has a token).
 *
 * @since 0.1.0
 * @category security
 */
export class Authorization extends HttpApiMiddleware.Tag<Authorization>()("@vectorlink/task/TaskHttp/Authorization", {
  failure: Unauthorized,
  security: { bearer: HttpApiSecurity.bearer }
}) {}

/**
 * Requires the token for reads too, unless the server opens reads.
 *
 * @since 0.1.0
 * @category security
 */
export class ReadAuthorization extends HttpApiMiddleware.Tag<ReadAuthorization>()(
  "@vectorlink/task/TaskHttp/ReadAuthorization",
  { failure: Unauthorized, security: { bearer: HttpApiSecurity.bearer } }
) {}

/** What a list selects: by status (repeat it for several), kind and parent, a page of `limit` after `after`. */
const ListParams = Schema.Struct({
  status: Schema.optional(Schema.Union(TaskRecord.Status, Schema.Array(TaskRecord.Status))),
  kind: Schema.optional(Schema.String),
  parent: Schema.optional(Schema.String),
  limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 1000))),
  after: Schema.optional(Schema.String)
})

/** A stream of Server-Sent Events. */
const EventStream = Schema.String.pipe(HttpApiSchema.withEncoding({ kind: "Text", contentType: "text/event-stream" }))

const read = HttpApiGroup.make("read")
  .add(HttpApiEndpoint.get("list", "/api/tasks").setUrlParams(ListParams).addSuccess(TaskPage))
  .add(HttpApiEndpoint.get("listEvents", "/api/events").setUrlParams(ListParams).addSuccess(EventStream))
  .add(HttpApiEndpoint.get("kinds", "/api/kinds").addSuccess(Schema.Array(Schema.String)))
  .add(
    HttpApiEndpoint.get("status")`/api/tasks/${id}`
      .setUrlParams(Schema.Struct({ poll: Flag, resume: Flag }))
      .addSuccess(TaskView)
  )
  .add(
    HttpApiEndpoint.get("logs")`/api/tasks/${id}/logs`
      .setUrlParams(
        Schema.Struct({
          after: Schema.optional(Schema.NumberFromString.pipe(Schema.int())),
          limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.positive()))
        })
      )
      .addSuccess(Schema.Array(TaskRecord.LogLine))
  )
  .add(HttpApiEndpoint.get("result")`/api/tasks/${id}/result`.addSuccess(Schema.Struct({ result: Schema.Unknown })))
  .add(HttpApiEndpoint.get("events")`/api/tasks/${id}/events`.addSuccess(EventStream))
  .addError(BadRequest)
  .addError(NotFound)
  .addError(Conflict)
  .addError(Unavailable)
  .middleware(ReadAuthorization)

const write = HttpApiGroup.make("write")
  .add(
    HttpApiEndpoint.post("start", "/api/tasks")
      .setPayload(Schema.Struct({ kind: Schema.String, input: Schema.Unknown, id: Schema.optional(Schema.String) }))
      .addSuccess(TaskView, { status: 201 })
  )
  .add(HttpApiEndpoint.post("pause")`/api/tasks/${id}/pause`.addSuccess(TaskView))
  .add(HttpApiEndpoint.post("cancel")`/api/tasks/${id}/cancel`.addSuccess(TaskView))
  .add(HttpApiEndpoint.post("resume")`/api/tasks/${id}/resume`.addSuccess(TaskView))
  .add(HttpApiEndpoint.post("poll")`/api/tasks/${id}/poll`.addSuccess(TaskView))
  .add(HttpApiEndpoint.del("delete")`/api/tasks/${id}`)
  .addError(BadRequest)
  .addError(NotFound)
  .addError(Conflict)
  .addError(Unavailable)
  .middleware(Authorization)

/**
 * The API's definition (for a client: `HttpApiClient.make(TaskHttp.Api)`).
 *
 * @since 0.1.0
 * @category api
 */
export class Api extends HttpApi.make("vltask")
  .add(read)
  .add(write)
  .annotate(OpenApi.Title, "@vectorlink/task")
  .annotate(
    OpenApi.Description,
    "Tasks: list, start, pause, cancel, resume, poll and delete them; logs, results, events."
  ) {}

/**
 * How the API is served.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The task definitions `POST /api/tasks` may start (by their kind). */
  readonly tasks: ReadonlyArray<Task.Any>
  /**
   * The token every call must carry as `Authorization: Bearer <token>` (reads too, unless `openReads`). Without one,
   * nothing is checked, and `serve` binds only to a loopback address.
   */
  readonly token?: string | Redacted.Redacted<string> | undefined
  /** Lets reads (lists, status, logs, results, events) through without the token. */
  readonly openReads?: boolean | undefined
  /** The largest request body accepted, in bytes (default 1 MiB); a larger one is refused with 413. */
  readonly maxBodyBytes?: number | undefined
  /** Serve the dashboard at `/` (default true). */
  readonly dashboard?: boolean | undefined
  /** Origins allowed to call the API from a browser (CORS); none by default. */
  readonly corsOrigins?: ReadonlyArray<string> | undefined
}

/** The options with the token redacted. */
const resolve = (options: Options): Handlers.Options => ({
  tasks: options.tasks,
  token:
    options.token === undefined || options.token === ""
      ? undefined
      : Redacted.isRedacted(options.token)
        ? options.token
        : Redacted.make(options.token),
  openReads: options.openReads
})

/**
 * The API over the runner and store in context, to serve with `HttpApiBuilder.serve` in your own server (or mount
 * with `HttpApiBuilder.toWebHandler`), with its OpenAPI document at `/api/openapi.json`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<HttpApi.Api, never, TaskRunner | TaskStore> => {
  const resolved = resolve(options)
  const api = HttpApiBuilder.api(Api).pipe(
    Layer.provide(Handlers.readHandlers(resolved)),
    Layer.provide(Handlers.writeHandlers(resolved)),
    Layer.provide(Handlers.authorization(resolved))
  )
  return Layer.mergeAll(
    api,
    HttpApiBuilder.middlewareOpenApi({ path: "/api/openapi.json" }).pipe(Layer.provide(api)),
    options.dashboard === false ? Layer.empty : dashboardRoute,
    options.corsOrigins === undefined || options.corsOrigins.length === 0
      ? Layer.empty
      : HttpApiBuilder.middlewareCors({ allowedOrigins: options.corsOrigins })
  ) as unknown as Layer.Layer<HttpApi.Api, never, TaskRunner | TaskStore>
}

/** The dashboard at `/`: a page with no data of its own (it reads the API), under a strict content security policy. */
const dashboardRoute = HttpApiBuilder.Router.use((router) =>
  router.get(
    "/",
    Effect.succeed(
      HttpServerResponse.text(Dashboard.page, {
        contentType: "text/html; charset=utf-8",
        headers: {
          "content-security-policy": Dashboard.contentSecurityPolicy,
          "x-content-type-options": "nosniff",
          "referrer-policy": "no-referrer"
        }
      })
    )
  )
)

/**
 * Whether `host` is a loopback address (or name).
 *
 * @since 0.1.0
 * @category utils
 */
export const isLoopback = (host: string): boolean =>
  host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host)

/**
 * The server would be reachable from other machines without a token.
 *
 * @since 0.1.0
 * @category errors
 */
export class Exposed extends Schema.TaggedError<Exposed>()("Exposed", { host: Schema.String }) {
  override get message(): string {
    return `Refusing to serve on ${this.host} without a token: anyone who can reach it could start, stop and delete tasks. Give a token (--token or VLTASK_TOKEN), or bind to 127.0.0.1.`
  }
}

/**
 * Refuses a body over `limit` bytes: by its `content-length` with a 413 before it is read; a body sent without one
 * (chunked) is cut off at the limit.
 */
const limitBodies = (limit: number) => (app: HttpApp.Default) =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
    const length = Number(request.headers["content-length"] ?? 0)
    return length > limit
      ? Effect.succeed(
          HttpServerResponse.unsafeJson(
            {
              _tag: "PayloadTooLarge",
              message: `The request body is ${length} bytes; this server takes at most ${limit}.`
            },
            { status: 413 }
          )
        )
      : HttpIncomingMessage.withMaxBodySize(app, Option.some(limit))
  })

/**
 * Serves the API on a Node HTTP server at `host:port` (port 0: any free one) for the life of the layer. Refuses a
 * non-loopback host without a token (`Exposed`).
 *
 * @since 0.1.0
 * @category layers
 */
export const serve = (
  options: Options & { readonly port?: number | undefined; readonly host?: string | undefined }
): Layer.Layer<HttpServer.HttpServer, Exposed | ServeError, TaskRunner | TaskStore> => {
  const host = options.host ?? "127.0.0.1"
  const resolved = resolve(options)
  if (resolved.token === undefined && !isLoopback(host)) return Layer.fail(new Exposed({ host }))
  const limit = options.maxBodyBytes ?? 1024 * 1024
  const server = NodeHttpServer.layer(() => createServer(), { port: options.port ?? 7420, host })
  return HttpApiBuilder.serve(limitBodies(limit)).pipe(
    Layer.provide(layer(options)),
    Layer.provideMerge(server)
  ) as unknown as Layer.Layer<HttpServer.HttpServer, Exposed | ServeError, TaskRunner | TaskStore>
}

/**
 * `vltask serve`: the HTTP API over the store, with the config's task kinds startable, until stopped. Binds to
 * loopback by default; refuses another address without a token.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { TaskRunner } from "../../../TaskRunner.js"
import { TaskStore } from "../../../TaskStore.js"
import { common, storeUrl, withRunner } from "../context.js"
import { described } from "../help.js"
import { print } from "../output.js"

export const serve = Command.make(
  "serve",
  {
    ...common,
    port: Options.integer("port").pipe(
      Options.withDescription("The port to listen on (default 7420; 0 for any free one)."),
      Options.withDefault(7420)
    ),
    host: Options.text("host").pipe(
      Options.withDescription("The address to bind to (default 127.0.0.1; another needs a token)."),
      Options.withDefault("127.0.0.1")
    ),
    token: Options.redacted("token").pipe(
      Options.withDescription("Require `Authorization: Bearer <token>` on every call (default: $VLTASK_TOKEN)."),
      Options.optional
    ),
    openReads: Options.boolean("open-reads").pipe(
      Options.withDescription("Let reads (list, status, logs, results, events) through without the token.")
    )
  },
  (o) =>
    withRunner(o, false, (ctx) =>
      Effect.gen(function* () {
        const token = Option.getOrUndefined(o.token) ?? process.env.VLTASK_TOKEN
        // Loaded here: the other commands do not pay for the HTTP server's modules at start-up.
        const [TaskHttp, HttpServer] = yield* Effect.promise(() =>
          Promise.all([import("../../../TaskHttp.js"), import("@effect/platform/HttpServer")])
        )
        const server = TaskHttp.serve({
          tasks: ctx.config?.tasks ?? [],
          port: o.port,
          host: o.host,
          token,
          openReads: o.openReads
        }).pipe(
          Layer.provide(Layer.succeed(TaskRunner, ctx.runner)),
          Layer.provide(Layer.succeed(TaskStore, ctx.store))
        )
        const http = yield* Layer.build(server)
        const address = HttpServer.formatAddress(Context.get(http, HttpServer.HttpServer).address)
        yield* print(
          `vltask serve ${process.pid}: ${storeUrl(o)} on ${address}/ (the dashboard) and ${address}/api/tasks (${
            token === undefined ? "no token" : "token required"
          }${o.openReads ? ", reads open" : ""}). Ctrl-C to stop.`
        )
        return yield* Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => (process.exitCode = 0))))
      })
    )
).pipe(
  Command.withDescription(
    described("Serve the HTTP API (see docs/http.md) over the store until stopped.", [
      "vltask serve",
      "VLTASK_TOKEN=s3cret vltask serve --host 0.0.0.0 --port 8080 --open-reads"
    ])
  )
)

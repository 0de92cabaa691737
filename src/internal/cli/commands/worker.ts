/**
 * `vltask worker`: claims queued (`pending`) tasks of the config's kinds and runs up to N at once, until stopped.
 * SIGINT/SIGTERM hands its running tasks back to the queue from their last checkpoints (another worker claims them at
 * once); a second signal a second later exits without waiting.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import { common, storeUrl, withRunner } from "../context.js"
import { InvalidOption } from "../errors.js"
import { described } from "../help.js"
import { print } from "../output.js"

export const worker = Command.make(
  "worker",
  {
    ...common,
    concurrency: Options.integer("concurrency").pipe(
      Options.withDescription("How many tasks it runs at once (default 4)."),
      Options.withDefault(4)
    ),
    kind: Options.text("kind").pipe(
      Options.withDescription("A kind of task it claims (repeat for several). Default: every kind in the config."),
      Options.repeated
    ),
    takeover: Options.boolean("takeover").pipe(
      Options.withDescription(
        "Also take over stale tasks of its kinds: at once when their holder on this host died, after their lease expired elsewhere."
      )
    )
  },
  (o) =>
    withRunner(o, true, (ctx) =>
      Effect.gen(function* () {
        if (o.concurrency < 1) {
          return yield* new InvalidOption({
            option: "--concurrency",
            detail: `it must be at least 1, not ${o.concurrency}`
          })
        }
        const kinds = o.kind.length === 0 ? (ctx.config?.tasks ?? []).map((t) => t.name) : o.kind
        yield* ctx.runner.work({ kinds, concurrency: o.concurrency, takeover: o.takeover })
        yield* print(
          `vltask worker ${process.pid}: running up to ${o.concurrency} of ${kinds.join(", ")} from ${storeUrl(o)}` +
            `${o.takeover ? " (taking over stale tasks)" : ""}. Ctrl-C or SIGTERM to stop: its tasks go back to the queue.`
        )
        // A signal is how a worker is meant to stop: exit 0 once its tasks are handed back (the scope's finalizers).
        return yield* Effect.never.pipe(
          Effect.onInterrupt(() =>
            Effect.zipRight(
              Effect.sync(() => (process.exitCode = 0)),
              print(`vltask worker ${process.pid}: stopping; its running tasks go back to the queue.`)
            )
          )
        )
      })
    )
).pipe(
  Command.withDescription(
    described(
      "Claim queued tasks (`submit`ted, or handed back by a stopping worker) and run them, until stopped. Run as many workers as you like, on as many hosts as share the store (Postgres for several hosts).",
      ["vltask worker --concurrency 8", "vltask worker --kind embed-corpus --takeover --store postgres://app@db/tasks"]
    )
  )
)

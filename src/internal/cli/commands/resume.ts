/** `vltask resume ID`: continues a paused, failed or stale task from its last checkpoint. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import { common, definition, json, taskId, withRunner } from "../context.js"
import { detach, foreground } from "../foreground.js"
import { described } from "../help.js"
import { print, printJson } from "../output.js"

export const resume = Command.make(
  "resume",
  {
    ...common,
    json,
    id: taskId,
    detach: Options.boolean("detach").pipe(
      Options.withDescription("Resume it in a background process and return at once.")
    )
  },
  (o) =>
    withRunner(o, true, (ctx) =>
      Effect.gen(function* () {
        const info = yield* ctx.store.getInfo(o.id)
        const task = yield* definition(ctx, info.kind)
        if (o.detach) {
          const started = yield* detach(ctx, o, o.id)
          if (o.json) return yield* printJson({ id: o.id, pid: started.pid, output: started.output })
          return yield* print(
            `Resuming ${o.id} in the background (pid ${started.pid}; its output goes to ${started.output}).`
          )
        }
        yield* foreground(ctx, task, o.id, Effect.zipRight(ctx.runner.resume(o.id), ctx.runner.await(task, o.id)), {
          json: o.json,
          rerunnable: true
        })
      })
    )
).pipe(
  Command.withDescription(
    described("Resume a paused, failed or stale task from its last checkpoint, with a live progress bar.", [
      "vltask resume 01JD3X8Q2N",
      "vltask resume 01JD3X8Q2N --detach"
    ])
  )
)

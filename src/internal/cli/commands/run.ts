/** `vltask run KIND`: runs a task in the foreground with a live progress bar, or in the background. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as TaskId from "../../../TaskId.js"
import { common, definition, inputOption, json, kindArg, withRunner } from "../context.js"
import { InvalidInput } from "../errors.js"
import { checkRerun, detach, foreground, parseInput } from "../foreground.js"
import { described } from "../help.js"
import { print, printJson } from "../output.js"

export const run = Command.make(
  "run",
  {
    ...common,
    json,
    kind: kindArg,
    input: inputOption,
    id: Options.text("id").pipe(
      Options.withDescription(
        "The task's id. Default: a new one. Run again with the same id (and input) to continue it."
      ),
      Options.optional
    ),
    detach: Options.boolean("detach").pipe(
      Options.withDescription("Run it in a background process and return at once; follow it with `vltask watch`.")
    )
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
          const started = yield* detach(ctx, o, id)
          if (o.json) return yield* printJson({ id, pid: started.pid, output: started.output })
          return yield* print(
            `Started ${id} in the background (pid ${started.pid}; its output goes to ${started.output}). Follow it with \`vltask watch ${id}\`.`
          )
        }
        yield* foreground(ctx, task, id, ctx.runner.run(task, input, { id }), {
          json: o.json,
          rerunnable: Option.isSome(o.id)
        })
      })
    )
).pipe(
  Command.withDescription(
    described("Run a task in the foreground with a live progress bar. Ctrl-C pauses it at its last checkpoint.", [
      "vltask run embed",
      `vltask run embed --id nightly --input '{"docs":5000}'`,
      "vltask run embed --detach"
    ])
  )
)

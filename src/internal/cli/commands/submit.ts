/** `vltask submit KIND`: queues a task for a worker (`vltask worker`), with a priority and a run-after time. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { common, definition, inputOption, json, kindArg, withRunner } from "../context.js"
import { InvalidOption } from "../errors.js"
import { parseInput } from "../foreground.js"
import { described } from "../help.js"
import { print, printJson } from "../output.js"
import { parseDuration } from "./gc.js"

export const submit = Command.make(
  "submit",
  {
    ...common,
    json,
    kind: kindArg,
    input: inputOption,
    id: Options.text("id").pipe(Options.withDescription("The task's id. Default: a new one."), Options.optional),
    priority: Options.integer("priority").pipe(
      Options.withDescription("Workers claim queued tasks of higher priority first (default 0)."),
      Options.withDefault(0)
    ),
    delay: Options.text("delay").pipe(
      Options.withDescription("Not before this long from now (30s, 10m, 2h, 1d)."),
      Options.optional
    )
  },
  (o) =>
    withRunner(o, true, (ctx) =>
      Effect.gen(function* () {
        const task = yield* definition(ctx, o.kind)
        const input = yield* parseInput(o.kind, task, o.input, ctx.config?.inputs?.[o.kind])
        const delay = Option.isSome(o.delay) ? parseDuration(o.delay.value) : Option.some(Duration.zero)
        if (Option.isNone(delay)) {
          return yield* new InvalidOption({
            option: "--delay",
            detail: `"${Option.getOrElse(o.delay, () => "")}" is not a duration like 30s, 10m, 2h or 1d`
          })
        }
        const delayMs = Duration.toMillis(delay.value)
        const id = yield* ctx.runner.submit(task, input, {
          id: Option.getOrUndefined(o.id),
          priority: o.priority,
          ...(delayMs > 0 ? { runAt: Date.now() + delayMs } : {})
        })
        if (o.json) return yield* printJson({ id })
        yield* print(
          `Queued ${id}. A worker of kind ${o.kind} runs it (\`vltask worker\`); follow it with \`vltask watch ${id}\`.`
        )
      })
    )
).pipe(
  Command.withDescription(
    described("Queue a task for the workers (`vltask worker`) to claim, by priority and age.", [
      "vltask submit embed",
      `vltask submit embed --input '{"docs":5000}' --priority 10`,
      "vltask submit embed --delay 10m"
    ])
  )
)

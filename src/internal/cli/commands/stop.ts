/** `vltask pause ID` and `vltask cancel ID`: ask a task's runner, wherever it is, to stop it; wait for it to. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { common, type Context, json, taskId, withRunner } from "../context.js"
import { described } from "../help.js"
import { print, printJson, toJson } from "../output.js"

/** Waits (up to `timeout`) for a stop requested from this process to be carried out by the task's owner. */
const settle = (ctx: Context, id: string, timeout: Duration.DurationInput) =>
  Effect.gen(function* () {
    for (;;) {
      const info = yield* ctx.runner.status(id)
      if (info.interrupt === undefined || info.status !== "running") return info
      yield* Effect.sleep("100 millis")
    }
  }).pipe(Effect.timeoutTo({ duration: timeout, onSuccess: Option.some, onTimeout: Option.none }))

export const stopCommand = (name: "pause" | "cancel") =>
  Command.make(
    name,
    {
      ...common,
      json,
      id: taskId,
      wait: Options.integer("wait").pipe(
        Options.withDescription("Seconds to wait for the task's runner to stop it."),
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
      name === "pause"
        ? described("Pause a task at its last checkpoint, wherever it runs; `vltask resume` continues it.", [
            "vltask pause 01JD3X8Q2N",
            "vltask pause 01JD3X8Q2N --wait 5 --json"
          ])
        : described("Cancel a task for good, wherever it runs (its clean-up runs; it cannot be resumed).", [
            "vltask cancel 01JD3X8Q2N"
          ])
    )
  )

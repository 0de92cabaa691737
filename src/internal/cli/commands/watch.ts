/** `vltask watch ID`: follows a task's progress live until it ends, from any terminal (and counts as interest). */
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import { common, json, taskId, withRunner } from "../context.js"
import { TaskEnded } from "../errors.js"
import { withLiveBar } from "../foreground.js"
import { described } from "../help.js"
import { print, printJson, toJson } from "../output.js"

export const watch = Command.make("watch", { ...common, json, id: taskId }, (o) =>
  withRunner(o, false, (ctx) =>
    Effect.gen(function* () {
      const until = Effect.gen(function* () {
        for (;;) {
          const info = yield* ctx.runner.poll(o.id)
          if (info.status !== "running" && info.status !== "pending") return info
          yield* Effect.sleep("250 millis")
        }
      })
      const end = o.json ? yield* until : yield* withLiveBar(ctx, o.id, until, { json: false, rerunnable: false }, true)
      if (o.json) yield* printJson(toJson(ctx, end, Date.now()))
      if (end.status === "failed" || end.status === "cancelled") {
        return yield* new TaskEnded({
          id: o.id,
          status: end.status,
          detail: end.failure?.message ?? end.reason ?? end.status
        })
      }
      if (end.status === "paused" && !o.json)
        yield* print(`Task ${o.id} is paused${end.reason === undefined ? "" : ` (${end.reason})`}.`)
    })
  )
).pipe(
  Command.withDescription(
    described("Follow a task's progress live until it ends, wherever it runs. Watching counts as interest in it.", [
      "vltask watch 01JD3X8Q2N"
    ])
  )
)

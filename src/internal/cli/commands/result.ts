/** `vltask result ID`: a completed task's result as JSON (kept until the task is deleted). */
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as TaskCodec from "../../../TaskCodec.js"
import { TaskNotCompleted } from "../../../TaskError.js"
import { common, json, taskId, withRunner } from "../context.js"
import { awaitEnd, encodeSuccess } from "../foreground.js"
import { described } from "../help.js"
import { print, printJson } from "../output.js"

export const result = Command.make("result", { ...common, json, id: taskId }, (o) =>
  withRunner(o, false, (ctx) =>
    Effect.gen(function* () {
      const info = yield* ctx.store.getInfo(o.id)
      const task = ctx.config?.tasks.find((t) => t.name === info.kind)
      if (task !== undefined) {
        const value = yield* ctx.runner.result(task, o.id).pipe(
          Effect.catchTag("TaskNotCompleted", (e) => Effect.fail(e)),
          Effect.catchAll(awaitEnd(ctx, o.id))
        )
        return yield* printJson(yield* encodeSuccess(task, value))
      }
      // Without the definition the stored JSON is printed as it is.
      if (info.status !== "completed") return yield* new TaskNotCompleted({ id: o.id, status: info.status })
      const record = yield* ctx.store.get(o.id)
      yield* print(TaskCodec.text(record.result ?? new Uint8Array()))
    })
  )
).pipe(
  Command.withDescription(
    described("Print the result of a completed task as JSON (the same with or without --json).", [
      "vltask result 01JD3X8Q2N",
      "vltask result 01JD3X8Q2N | jq .count"
    ])
  )
)

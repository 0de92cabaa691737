/** `vltask logs ID`: a task's log lines, kept in the store; `--follow` keeps printing new ones until it ends. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import type * as TaskRecord from "../../../TaskRecord.js"
import { common, json, taskId, withRunner } from "../context.js"
import { described } from "../help.js"
import { print, printJson } from "../output.js"

export const logs = Command.make(
  "logs",
  {
    ...common,
    json,
    id: taskId,
    follow: Options.boolean("follow").pipe(
      Options.withAlias("f"),
      Options.withDescription("Keep printing new lines until the task ends (with --json: one JSON object per line).")
    )
  },
  (o) =>
    withRunner(o, false, (ctx) =>
      Effect.gen(function* () {
        yield* ctx.store.getInfo(o.id)
        const show = (lines: ReadonlyArray<TaskRecord.LogLine>) =>
          o.json && !o.follow
            ? printJson(lines)
            : Effect.forEach(
                lines,
                (l) =>
                  print(
                    o.json ? JSON.stringify(l) : `${new Date(l.time).toISOString()} ${l.level.padEnd(5)} ${l.message}`
                  ),
                { discard: true }
              )
        let lines = yield* ctx.runner.logs(o.id)
        yield* show(lines)
        if (!o.follow) return
        let last = lines[lines.length - 1]?.seq ?? 0
        for (;;) {
          yield* Effect.sleep("500 millis")
          lines = yield* ctx.runner.logs(o.id, { after: last })
          yield* show(lines)
          last = lines[lines.length - 1]?.seq ?? last
          const info = yield* ctx.runner.status(o.id)
          if (lines.length === 0 && info.status !== "running" && info.status !== "pending") return
        }
      })
    )
).pipe(
  Command.withDescription(
    described("Print a task's log lines (kept in the store, from whichever process ran it).", [
      "vltask logs 01JD3X8Q2N",
      "vltask logs 01JD3X8Q2N --follow"
    ])
  )
)

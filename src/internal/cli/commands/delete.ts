/** `vltask delete ID`: forgets a task, its result and its logs; `--force` also forgets a record that cannot be read. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import { common, json, taskId, withRunner } from "../context.js"
import { described } from "../help.js"
import { print, printJson } from "../output.js"

export const remove = Command.make(
  "delete",
  {
    ...common,
    json,
    id: taskId,
    force: Options.boolean("force").pipe(
      Options.withDescription("Also delete a record that is corrupt (it cannot be read back), and its log.")
    )
  },
  (o) =>
    withRunner(o, false, (ctx) =>
      Effect.gen(function* () {
        yield* ctx.runner.forget(o.id).pipe(
          Effect.catchIf(
            (e) => o.force && e._tag === "TaskStoreError" && e.reason === "Corrupt",
            // Nothing can be known of a record that cannot be read: not even whether it runs. It is removed as is.
            () => ctx.store.delete(o.id)
          )
        )
        yield* o.json ? printJson({ id: o.id, deleted: true }) : print(`Deleted ${o.id}.`)
      })
    )
).pipe(
  Command.withDescription(
    described("Delete a task, its result and its logs (a running task: cancel it first).", [
      "vltask delete 01JD3X8Q2N",
      "vltask delete 01JD3X8Q2N --force"
    ])
  )
)

/** `vltask list`: a page of tasks in id order, optionally by status, kind and parent. */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { common, json, verify, withRunner } from "../context.js"
import { described } from "../help.js"
import { ago, print, printJson, toJson } from "../output.js"
import { describe as describeProgress } from "../progressBar.js"

export const list = Command.make(
  "list",
  {
    ...common,
    json,
    status: Options.choice("status", ["pending", "running", "paused", "completed", "failed", "cancelled"]).pipe(
      Options.withDescription("Only tasks with this status (repeat it for several)."),
      Options.repeated
    ),
    kind: Options.text("kind").pipe(Options.withDescription("Only tasks of this kind."), Options.optional),
    parent: Options.text("parent").pipe(
      Options.withDescription("Only the children of this task (started by it with `task.child`)."),
      Options.optional
    ),
    limit: Options.integer("limit").pipe(
      Options.withDescription("At most this many tasks (then a line says how to see more)."),
      Options.withDefault(50)
    ),
    after: Options.text("after").pipe(Options.withDescription("Start after this id (the next page)."), Options.optional)
  },
  (o) =>
    withRunner(o, false, (ctx) =>
      Effect.gen(function* () {
        const page = yield* ctx.runner.list({
          status: o.status.length === 0 ? undefined : o.status,
          kind: Option.getOrUndefined(o.kind),
          parent: Option.getOrUndefined(o.parent),
          limit: o.limit,
          after: Option.getOrUndefined(o.after)
        })
        // Each task shown is read whole (its checksum checked): a damaged one is left out, and a warning says so.
        const items: Array<(typeof page.items)[number]> = []
        for (const info of page.items) {
          const checked = yield* Effect.either(verify(ctx, info.id))
          if (checked._tag === "Right") items.push(info)
          else if (checked.left._tag !== "TaskNotFound")
            yield* Effect.logWarning(
              `skipping task ${info.id}: ${checked.left.message} (\`vltask delete ${info.id} --force\` forgets it)`
            )
        }
        const now = Date.now()
        if (o.json) return yield* printJson(items.map((i) => toJson(ctx, i, now)))
        if (items.length === 0) return yield* print("No tasks.")
        const rows = items.map((i) => [
          i.id,
          i.kind,
          i.status === "running" && ctx.runner.isStale(i, now) ? "running (stale)" : i.status,
          describeProgress(i),
          ago(i.updatedAt)
        ])
        const header = ["ID", "KIND", "STATUS", "PROGRESS", "UPDATED"]
        const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)))
        const fmt = (r: ReadonlyArray<string>) =>
          r
            .map((cell, c) => cell.padEnd(widths[c]!))
            .join("  ")
            .trimEnd()
        yield* print([fmt(header), ...rows.map(fmt)].join("\n"))
        if (page.next !== undefined) yield* print(`… more: vltask list --after ${page.next}`)
      })
    )
).pipe(
  Command.withDescription(
    described("List the store's tasks with their status and progress.", [
      "vltask list",
      "vltask list --status running --status paused --kind embed",
      "vltask list --parent 01JD3X8Q2N",
      "vltask list --json"
    ])
  )
)

/**
 * `vltask gc --older-than AGE`: deletes finished tasks last updated before a given age; a family together (a child
 * goes with its parent, never before it).
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as TaskRecord from "../../../TaskRecord.js"
import { common, json, withRunner } from "../context.js"
import { InvalidOption } from "../errors.js"
import { described } from "../help.js"
import { ago, print, printJson } from "../output.js"

/**
 * `7d`, `12h`, `30m`, `90s`, or an Effect duration such as `2 hours`.
 *
 * @since 0.1.0
 * @category utils
 */
export const parseDuration = (text: string): Option.Option<Duration.Duration> => {
  const short = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/.exec(text.trim())
  if (short !== null) {
    const n = Number(short[1])
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[short[2] as "ms"]
    return Option.some(Duration.millis(n * unit))
  }
  return Duration.decodeUnknown(text)
}

export const gc = Command.make(
  "gc",
  {
    ...common,
    json,
    olderThan: Options.text("older-than").pipe(
      Options.withDescription("Delete tasks last updated longer ago than this: 7d, 12h, 30m, 90s or `2 hours`.")
    ),
    status: Options.choice("status", ["pending", "paused", "completed", "failed", "cancelled"]).pipe(
      Options.withDescription("Only tasks with this status (repeat it for several). Default: completed and cancelled."),
      Options.repeated
    ),
    dryRun: Options.boolean("dry-run").pipe(
      Options.withDescription("Print what a real run would delete (and skip), and delete nothing.")
    )
  },
  (o) =>
    withRunner(o, false, (ctx) =>
      Effect.gen(function* () {
        const age = parseDuration(o.olderThan)
        if (Option.isNone(age)) {
          return yield* new InvalidOption({
            option: "--older-than",
            detail: `${JSON.stringify(o.olderThan)} is not an age; write it as 7d, 12h, 30m, 90s or "2 hours"`
          })
        }
        const statuses: ReadonlyArray<TaskRecord.Status> = o.status.length === 0 ? ["completed", "cancelled"] : o.status
        const cutoff = Date.now() - Duration.toMillis(age.value)
        const deleted: Array<{ id: string; status: string; updatedAt: number }> = []
        const skipped: Array<{ id: string; error: string }> = []
        let after: string | undefined
        for (;;) {
          // A record whose head cannot be read is left out of the page by the store, with a warning.
          const page = yield* ctx.runner.list({ status: statuses, limit: 500, after })
          for (const info of page.items) {
            if (info.updatedAt >= cutoff) continue
            // A child is deleted with its parent (its result may still be what the parent re-attaches to).
            if (info.parent !== undefined && (yield* Effect.either(ctx.store.getInfo(info.parent)))._tag === "Right") {
              continue
            }
            // The whole record is read (and its checksum checked) first, in a dry run too: both skip the same ones.
            const checked = yield* Effect.either(
              Effect.zipRight(ctx.store.get(info.id), o.dryRun ? Effect.void : ctx.runner.forget(info.id))
            )
            if (checked._tag === "Left") {
              if (checked.left._tag === "TaskNotFound") continue // deleted meanwhile
              skipped.push({ id: info.id, error: checked.left.message })
              if (!o.json) yield* print(`skipped ${info.id}: ${checked.left.message}`)
              continue
            }
            deleted.push({ id: info.id, status: info.status, updatedAt: info.updatedAt })
            if (!o.json)
              yield* print(
                `${o.dryRun ? "would delete" : "deleted"} ${info.id} (${info.status}, ${ago(info.updatedAt)})`
              )
          }
          if (page.next === undefined) break
          after = page.next
        }
        if (o.json) return yield* printJson({ dryRun: o.dryRun, deleted, skipped })
        yield* print(
          `${o.dryRun ? "Would delete" : "Deleted"} ${deleted.length} task(s)${skipped.length === 0 ? "" : `; skipped ${skipped.length} that could not be read or deleted`}.`
        )
      })
    )
).pipe(
  Command.withDescription(
    described(
      "Delete finished tasks last updated before a given age (completed and cancelled by default), each with its children.",
      ["vltask gc --older-than 7d --dry-run", "vltask gc --older-than 30d --status failed --status completed"]
    )
  )
)

/**
 * `vltask show ID`: one task in full: status, progress, times, its runner and lease, a request, its failure, its
 * parent and its children.
 */
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import type * as TaskRecord from "../../../TaskRecord.js"
import * as Holder from "../../../Holder.js"
import { common, json, taskId, verify, withRunner } from "../context.js"
import { described } from "../help.js"
import { ago, print, printJson, toJson } from "../output.js"
import { clock, describe as describeProgress } from "../progressBar.js"

/** How many children `show` lists. */
const shownChildren = 50

export const show = Command.make("show", { ...common, json, id: taskId }, (o) =>
  withRunner(o, false, (ctx) =>
    Effect.gen(function* () {
      const info = yield* ctx.runner.status(o.id)
      // The status comes from the record's head; the whole record is read too, so a damaged one is said to be.
      yield* verify(ctx, o.id)
      const now = Date.now()
      // Its children, a page at a time (a family of thousands is listed with `vltask list --parent`).
      const children: Array<TaskRecord.TaskInfo> = []
      let after: string | undefined = undefined
      do {
        const page: TaskRecord.Page = yield* ctx.runner.list({ parent: o.id, limit: 500, after })
        children.push(...page.items)
        after = page.next
      } while (after !== undefined && children.length < shownChildren)
      if (o.json) {
        return yield* printJson({ ...toJson(ctx, info, now), children: children.map((c) => toJson(ctx, c, now)) })
      }
      const stale = ctx.runner.isStale(info, now)
      const when = (t: number | undefined) => (t === undefined ? "-" : `${new Date(t).toISOString()} (${ago(t)})`)
      const lines = [
        `id        ${info.id}`,
        `kind      ${info.kind}`,
        `status    ${info.status}${stale ? " (stale: its runner is gone; resumable)" : ""}${info.reason === undefined ? "" : ` — ${info.reason}`}`,
        `progress  ${describeProgress(info)}`,
        `attempts  ${info.attempts}`,
        `created   ${when(info.createdAt)}`,
        `updated   ${when(info.updatedAt)}`,
        `started   ${when(info.startedAt)}`,
        `finished  ${when(info.finishedAt)}`
      ]
      if (info.lease !== undefined) {
        const left = info.lease.expiresAt - now
        lines.push(
          `runner    ${Holder.describe(info.lease.holder)}, lease ${left > 0 ? `expires in ${clock(left)}` : "expired"}`
        )
      }
      if (info.priority !== undefined) lines.push(`priority  ${info.priority}`)
      if (info.runAt !== undefined) {
        const left = info.runAt - now
        lines.push(
          `not before ${new Date(info.runAt).toISOString()} (${left > 0 ? `in ${clock(left)}` : "now: a worker may claim it"})`
        )
      }
      if (info.interrupt !== undefined) lines.push(`requested ${info.interrupt}`)
      if (info.failure !== undefined) lines.push(`failure   ${info.failure.kind}: ${info.failure.message}`)
      if (info.parent !== undefined) {
        lines.push(
          `parent    ${info.parent}${info.weight === undefined ? "" : ` (counts for ${info.weight} of its progress)`}`
        )
      }
      if (children.length > 0) {
        lines.push(`children  ${children.length}${after === undefined ? "" : "+"}`)
        const width = Math.max(...children.map((c) => c.id.length))
        for (const c of children.slice(0, shownChildren)) {
          const status = c.status === "running" && ctx.runner.isStale(c, now) ? "running (stale)" : c.status
          lines.push(`  ${c.id.padEnd(width)}  ${status.padEnd(9)}  ${describeProgress(c)}`)
        }
        if (after !== undefined || children.length > shownChildren) {
          lines.push(`  … all of them: vltask list --parent ${o.id}`)
        }
      }
      yield* print(lines.join("\n"))
    })
  )
).pipe(
  Command.withDescription(
    described("Show one task: status, progress, times, its runner and lease, why it stopped or failed, its children.", [
      "vltask show 01JD3X8Q2N",
      "vltask show 01JD3X8Q2N --json"
    ])
  )
)

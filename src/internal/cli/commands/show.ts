/** `vltask show ID`: one task in full: status, progress, times, its runner and lease, a request, its failure. */
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as Holder from "../../../Holder.js"
import { common, json, taskId, verify, withRunner } from "../context.js"
import { described } from "../help.js"
import { ago, print, printJson, toJson } from "../output.js"
import { clock, describe as describeProgress } from "../progressBar.js"

export const show = Command.make("show", { ...common, json, id: taskId }, (o) =>
  withRunner(o, false, (ctx) =>
    Effect.gen(function* () {
      const info = yield* ctx.runner.status(o.id)
      // The status comes from the record's head; the whole record is read too, so a damaged one is said to be.
      yield* verify(ctx, o.id)
      const now = Date.now()
      if (o.json) return yield* printJson(toJson(ctx, info, now))
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
      yield* print(lines.join("\n"))
    })
  )
).pipe(
  Command.withDescription(
    described("Show one task: status, progress, times, its runner and lease, and why it stopped or failed.", [
      "vltask show 01JD3X8Q2N",
      "vltask show 01JD3X8Q2N --json"
    ])
  )
)

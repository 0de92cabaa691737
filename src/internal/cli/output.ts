/** How commands print: lines and JSON on stdout, ages for people, a task as JSON, a typed failure in one line. */
import * as Effect from "effect/Effect"
import type * as TaskRecord from "../../TaskRecord.js"
import { withBinaryAsBase64 } from "../binary.js"
import { taskView } from "../taskView.js"
import type { Context } from "./context.js"

/** Writes `text` and a newline to stdout. */
export const print = (text: string) => Effect.sync(() => process.stdout.write(text.endsWith("\n") ? text : text + "\n"))

/** Writes `value` as indented JSON to stdout. */
/** JSON for people and scripts; typed arrays (a binary result) as base64 strings. */
export const printJson = (value: unknown) => print(JSON.stringify(value, withBinaryAsBase64, 2))

/** `12s ago`, `5m ago`, `3h ago`, `2d ago`. */
export const ago = (ms: number) => {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000))
  return s < 60
    ? `${s}s ago`
    : s < 3600
      ? `${Math.floor(s / 60)}m ago`
      : s < 86400
        ? `${Math.floor(s / 3600)}h ago`
        : `${Math.floor(s / 86400)}d ago`
}

/** The JSON shape of a task (`show --json`, `list --json` and the others' `--json`). */
export const toJson = (ctx: Context, info: TaskRecord.TaskInfo, now: number) => taskView(ctx.runner, info, now)

/** A task's typed failure in one line: its tag and its fields as JSON (`Timeout {"after":30}`). */
export const describeFailure = (error: unknown): string => {
  if (typeof error !== "object" || error === null) return JSON.stringify(error) ?? String(error)
  const { _tag, name: _name, message: _message, stack: _stack, ...fields } = error as Record<string, unknown>
  const json = JSON.stringify(fields)
  return typeof _tag === "string" ? (json === "{}" ? _tag : `${_tag} ${json}`) : JSON.stringify(error)
}

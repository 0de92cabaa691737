/**
 * A task's log file: one JSON line per log line, appended; rewritten atomically (temp file, rename) when it grows past
 * the lines to keep. A line torn by a crash mid-append is skipped when read.
 */
import * as Effect from "effect/Effect"
import type * as TaskRecord from "../../TaskRecord.js"
import type { TaskStoreError } from "../../TaskError.js"
import { isNotFound, type Layout } from "./layout.js"

const parseLog = (text: string): Array<TaskRecord.LogLine> => {
  const lines: Array<TaskRecord.LogLine> = []
  for (const line of text.split("\n")) {
    // An empty line (after the last newline) or a line torn by a crash mid-append does not parse: skipped.
    try {
      const parsed = JSON.parse(line) as TaskRecord.LogLine
      if (typeof parsed.seq === "number" && typeof parsed.message === "string") lines.push(parsed)
    } catch {
      // skipped
    }
  }
  return lines
}

/** The log files of a store. */
export interface LogFiles {
  /** The kept lines of task `id`, in order. */
  readonly read: (id: string) => Effect.Effect<Array<TaskRecord.LogLine>, TaskStoreError>
  /** Appends lines, numbering them on, and keeps the newest `keep` (the caller holds the task's lock). */
  readonly append: (
    id: string,
    lines: ReadonlyArray<TaskRecord.NewLogLine>,
    keep: number
  ) => Effect.Effect<void, TaskStoreError>
  /** Removes task `id`'s log, if it has one. */
  readonly remove: (id: string, operation: string) => Effect.Effect<void, TaskStoreError>
}

/** The log files of `layout`'s directory. */
export const make = (layout: Layout): LogFiles => {
  const { fs, io } = layout
  const readText = (id: string) =>
    fs.readFileString(layout.logPath(id)).pipe(
      // Stryker disable next-line StringLiteral: no log is no lines; any text that parses to none is the same.
      Effect.catchIf(isNotFound, () => Effect.succeed("")),
      Effect.mapError(io("readLogs", layout.logPath(id), id))
    )
  return {
    read: (id) => Effect.map(readText(id), parseLog),
    append: (id, lines, keep) =>
      Effect.gen(function* () {
        const text = yield* readText(id)
        const existing = parseLog(text)
        let seq = existing[existing.length - 1]?.seq ?? 0
        const added = lines.map((l) => ({ ...l, seq: ++seq }))
        const path = layout.logPath(id)
        // Stryker disable next-line ConditionalExpression,EqualityOperator: rewriting instead of appending gives the same lines.
        if (existing.length + added.length > keep) {
          // Over the bound: keep the newest `keep` lines, replacing the file atomically.
          const kept = [...existing, ...added].slice(-keep)
          const temp = layout.tempPath()
          yield* fs.writeFileString(temp, kept.map((l) => JSON.stringify(l)).join("\n") + "\n", { flag: "wx" }).pipe(
            Effect.zipRight(fs.rename(temp, path)),
            Effect.tapError(() => fs.remove(temp).pipe(Effect.catchAll(() => Effect.void))),
            Effect.mapError(io("appendLogs", path, id))
          )
        } else {
          // A line torn by a crash has no newline: start on a fresh line.
          // Stryker disable next-line all: an extra newline makes an empty line, which reads as none.
          const prefix = text.length > 0 && !text.endsWith("\n") ? "\n" : ""
          const body = prefix + added.map((l) => JSON.stringify(l)).join("\n") + "\n"
          yield* fs.writeFileString(path, body, { flag: "a" }).pipe(Effect.mapError(io("appendLogs", path, id)))
        }
      }),
    remove: (id, operation) =>
      fs.remove(layout.logPath(id)).pipe(
        Effect.catchIf(isNotFound, () => Effect.void),
        Effect.mapError(io(operation, layout.logPath(id), id))
      )
  }
}

/** A running task's log: what it logs is captured in memory and flushed to the store with its heartbeat. */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Inspectable from "effect/Inspectable"
import * as Logger from "effect/Logger"
import type { Engine } from "./engine.js"
import type { Running } from "./running.js"

/** One part of a log message as text: an `Error` as its name and message (`Inspectable.format` would give `{}`). */
const formatLogPart = (part: unknown): string =>
  typeof part === "string" ? part : part instanceof Error ? String(part) : Inspectable.format(part)

const formatLogMessage = (message: unknown): string =>
  Array.isArray(message) ? message.map(formatLogPart).join(" ") : formatLogPart(message)

/** A logger that keeps the task's lines (at most `keepLogs` unflushed) for the next flush. */
export const captureLogger = (engine: Engine, r: Running) =>
  Logger.make<unknown, void>(({ cause, date, logLevel, message }) => {
    let text = formatLogMessage(message)
    if (!Cause.isEmpty(cause)) text += ` ${Cause.pretty(cause, { renderErrorCause: true })}`
    r.logs.push({ time: date.getTime(), level: logLevel.label, message: text })
    // Stryker disable next-line all: a bound on memory only; the store keeps `keepLogs` lines whatever it is given.
    if (r.logs.length > engine.keepLogs) r.logs.shift()
  })

/** Appends the captured lines to the store; lines that could not be written are kept for the next flush. */
export const flushLogs = (engine: Engine, r: Running) =>
  Effect.suspend(() => {
    // Stryker disable next-line ConditionalExpression: appending no lines is a no-op; this only saves the call.
    if (r.logs.length === 0) return Effect.void
    const lines = r.logs.splice(0, r.logs.length)
    return engine.store.appendLogs(r.id, lines, { keep: engine.keepLogs }).pipe(
      Effect.catchAll((e) =>
        Effect.sync(() => {
          r.logs.unshift(...lines)
          // Stryker disable next-line all: a bound on memory only; the store keeps `keepLogs` lines whatever it is given.
          if (r.logs.length > engine.keepLogs) r.logs.splice(0, r.logs.length - engine.keepLogs)
        }).pipe(Effect.zipRight(Effect.logDebug(`Could not flush logs of task ${r.id}`, e)))
      )
    )
  })

/**
 * A running task's log: what it logs is captured in memory and flushed to the store with its heartbeat. One logger per
 * runner captures the lines of every task: it finds the task a line belongs to in the logging fiber (`CurrentRun`, set
 * when the task's fiber starts and inherited by the fibers the task forks).
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as FiberRefs from "effect/FiberRefs"
import * as HashMap from "effect/HashMap"
import * as HashSet from "effect/HashSet"
import * as Inspectable from "effect/Inspectable"
import * as Logger from "effect/Logger"
import type { Engine } from "./engine.js"
import type { Running } from "./running.js"

/** One part of a log message as text: an `Error` as its name and message (`Inspectable.format` would give `{}`). */
const formatLogPart = (part: unknown): string =>
  typeof part === "string" ? part : part instanceof Error ? String(part) : Inspectable.format(part)

const formatLogMessage = (message: unknown): string =>
  Array.isArray(message) ? message.map(formatLogPart).join(" ") : formatLogPart(message)

/** The task whose fiber this is (or whose fiber forked it), if any: whose log a line goes to. */
export const CurrentRun: FiberRef.FiberRef<Running | undefined> = FiberRef.unsafeMake<Running | undefined>(undefined)

/** A logger that keeps a task's lines (at most `keepLogs` unflushed) for the next flush, until its run ends. */
const captureLogger = (engine: Engine) =>
  Logger.make<unknown, void>(({ cause, context, date, logLevel, message }) => {
    const r = FiberRefs.getOrDefault(context, CurrentRun)
    // Lines logged once the task's fiber has exited (the runner recording its end) would never be flushed.
    if (r === undefined || r.ending) return
    let text = formatLogMessage(message)
    if (!Cause.isEmpty(cause)) text += ` ${Cause.pretty(cause, { renderErrorCause: true })}`
    r.logs.push({ time: date.getTime(), level: logLevel.label, message: text })
    // Stryker disable next-line all: a bound on memory only; the store keeps `keepLogs` lines whatever it is given.
    if (r.logs.length > engine.keepLogs) r.logs.shift()
  })

/**
 * Per runner: its capture logger, and the last set of loggers a task's fiber started with, with the capture logger
 * added (runs started by the same caller inherit the same set: adding to it again would build the same set anew).
 */
const capture = new WeakMap<
  Engine,
  {
    logger: Logger.Logger<unknown, void>
    from: HashSet.HashSet<Logger.Logger<unknown, any>>
    to: HashSet.HashSet<Logger.Logger<unknown, any>>
  }
>()

const withCapture = (engine: Engine, loggers: HashSet.HashSet<Logger.Logger<unknown, any>>) => {
  let c = capture.get(engine)
  if (c === undefined) {
    const logger = captureLogger(engine)
    c = { logger, from: loggers, to: HashSet.add(loggers, logger) }
    capture.set(engine, c)
  } else if (c.from !== loggers) {
    c.from = loggers
    c.to = HashSet.add(loggers, c.logger)
  }
  return c.to
}

/**
 * Makes the current fiber `r`'s: its lines are captured for `r`'s log and annotated with its id and kind. For the
 * start of the task's own fiber, which ends with the run: the refs are set, not set and restored.
 */
export const enterRun = (engine: Engine, r: Running): Effect.Effect<void> =>
  Effect.zipRight(
    FiberRef.set(CurrentRun, r),
    Effect.zipRight(
      FiberRef.update(FiberRef.currentLoggers, (loggers) => withCapture(engine, loggers)),
      FiberRef.update(FiberRef.currentLogAnnotations, (annotations) =>
        HashMap.set(HashMap.set(annotations, "taskId", r.id), "taskKind", r.task.name)
      )
    )
  )

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

/**
 * The `Task.Handle` a task's generator talks to: its state and checkpoints (fenced writes), and progress counters the
 * heartbeat flushes.
 */
import * as Effect from "effect/Effect"
import * as Progress from "../../Progress.js"
import type * as Task from "../../Task.js"
import { encodeField } from "./codecs.js"
import type { Engine } from "./engine.js"
import { child } from "./family.js"
import { onWriteError, renewal, writeThroughOutages } from "./fencedWrite.js"
import type { Running } from "./running.js"

/**
 * A checkpoint is a yield point for the whole event loop, not only for fibers: stores with synchronous I/O (SQLite,
 * the file store's direct system calls) never give timers a turn otherwise, and a task checkpointing back to back would
 * starve the runner's heartbeat. At most every 20 ms of real time, so it costs nothing measurable.
 */
let lastMacroYield = Date.now()
const yieldToEventLoop: Effect.Effect<void> = Effect.suspend(() => {
  const now = Date.now()
  // Stryker disable next-line EqualityOperator,ArithmeticOperator: how often it yields is timing only.
  if (now - lastMacroYield < 20) return Effect.void
  lastMacroYield = now
  return Effect.async<void>((resume) => {
    const handle = setImmediate(() => resume(Effect.void))
    return Effect.sync(() => clearImmediate(handle))
  })
})

/** The handle of one run of `r`, starting from `initial` state. */
export const makeHandle = <S>(engine: Engine, r: Running, initial: S, attempt: number): Task.Handle<S> => {
  let state = initial
  const tracker = r.tracker
  const progressOne = Progress.inlineSync(() => {
    tracker.done++
  })
  const codec = r.task.codecs.state as { readonly encode: (value: S) => Effect.Effect<Uint8Array, string> }
  return {
    id: r.id,
    get state() {
      return state
    },
    attempt,
    checkpoint: (next) =>
      Effect.flatMap(encodeField(codec, r.id, r.task.name, "state", next), (bytes) => {
        const version = tracker.version
        const done = tracker.done
        const written = writeThroughOutages(engine, r, (_, now) => ({ ...renewal(engine, r, now), state: bytes }))
        return Effect.flatMap(
          Effect.tapError(written, (e) => (e._tag === "LeaseLost" ? onWriteError(r)(e) : Effect.void)),
          () => {
            state = next
            r.flushedVersion = version
            r.flushedDone = done
            return yieldToEventLoop
          }
        )
      }),
    // `progress()` and `progress(1)` reuse one prebuilt effect: the hot path allocates nothing.
    progress: (n = 1) => (n === 1 ? progressOne : Effect.sync(() => tracker.advance(n))),
    total: (n) => Effect.sync(() => tracker.setTotal(n)),
    message: (text) => Effect.sync(() => tracker.setMessage(text)),
    advance: (n = 1) => {
      tracker.done += n
    },
    counter: tracker,
    setDone: (n) => tracker.set(n),
    child: (task, input, options) => child(engine, r, task, input, options)
  }
}

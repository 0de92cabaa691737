/**
 * The `Task.Handle` a task's generator talks to: its state and checkpoints (fenced writes), and progress counters the
 * heartbeat flushes.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Progress from "../../Progress.js"
import { TaskStoreError } from "../../TaskError.js"
import type * as Task from "../../Task.js"
import type * as TaskRecord from "../../TaskRecord.js"
import { encodeField } from "./codecs.js"
import type { Engine } from "./engine.js"
import { child } from "./family.js"
import {
  noticed,
  onWriteError,
  type Patch,
  renewal,
  writeAsync,
  writeAtOnce,
  writeThroughOutages
} from "./fencedWrite.js"
import type { Running } from "./running.js"

/**
 * A checkpoint is a yield point for the whole event loop, not only for fibers: stores with synchronous I/O (SQLite,
 * the file store's direct system calls) never give timers a turn otherwise, and a task checkpointing back to back would
 * starve the runner's heartbeat. At most every 20 ms of real time, so it costs nothing measurable.
 *
 * Two turns, not one: V8 does its garbage collector's incremental marking in tasks run from the event loop, and with
 * one turn between checkpoints that take longer than 20 ms (a large state's) the garbage of several rounds piled up
 * before a collection finished. Measured with `VLTASK_BENCH_BUILD=<build> npx tsx bench/largeState.ts file string 3`:
 * peak RSS growth 15.2–17.7 times a 16 MiB state with one turn, 11.4–11.8 with two, 11.4–11.5 with four, at the same
 * throughput. (A directory watch that heard every write of the record used to give the loop those turns.)
 */
let lastMacroYield = Date.now()
const yieldToEventLoop: Effect.Effect<void> = Effect.suspend(() => {
  const now = Date.now()
  // Stryker disable next-line EqualityOperator,ArithmeticOperator: how often it yields is timing only.
  if (now - lastMacroYield < 20) return Effect.void
  lastMacroYield = now
  return Effect.async<void>((resume) => {
    let handle = setImmediate(() => {
      handle = setImmediate(() => resume(Effect.void))
    })
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
  /** What a checkpoint writes: the state, with the lease renewed and progress flushed. */
  const patchOf =
    (bytes: Uint8Array): Patch =>
    (_, now) => ({ state: bytes, ...renewal(engine, r, now) })
  /** The checkpoint of `next` stored: the task's state from now on, and progress flushed as of `version`, `done`. */
  const stored = (next: S, version: number, done: number) => {
    state = next
    r.flushedVersion = version
    r.flushedDone = done
  }
  /** The checkpoint of `next` written the effect way (going on from a write at once that failed, if one did). */
  const written = (next: S, bytes: Uint8Array, failedAtOnce?: TaskStoreError) => {
    const version = tracker.version
    const done = tracker.done
    return Effect.flatMap(
      Effect.tapError(writeThroughOutages(engine, r, patchOf(bytes), failedAtOnce), (e) =>
        e._tag === "LeaseLost" ? onWriteError(r)(e) : Effect.void
      ),
      () => {
        stored(next, version, done)
        return yieldToEventLoop
      }
    )
  }
  return {
    id: r.id,
    get state() {
      return state
    },
    attempt,
    // At once where the codec and the store can (one step of the fiber), the effect way where they cannot.
    checkpoint: (next) =>
      Effect.clockWith((clock) => {
        const encoded = encodeField(codec, r.id, r.task.name, "state", next)
        // Encoded at once (an `Exit`) where the codec can; a failure is the effect path's to report.
        if (!Exit.isExit(encoded) || Exit.isFailure(encoded)) {
          return Effect.flatMap(encoded, (bytes) => written(next, bytes))
        }
        const bytes = (encoded as Exit.Success<Uint8Array, never>).value
        const version = tracker.version
        const done = tracker.done
        const now = clock.unsafeCurrentTimeMillis()
        /** What the checkpoint's write at once, or issued at once, gave: stored, else the effect way from there. */
        const after = (info: TaskRecord.TaskInfo | TaskStoreError | undefined) => {
          if (info === undefined || info instanceof TaskStoreError) return written(next, bytes, info)
          stored(next, version, done)
          return info.interrupt === undefined ? yieldToEventLoop : Effect.zipRight(noticed(r, info), yieldToEventLoop)
        }
        const info = writeAtOnce(engine, r, patchOf(bytes), now)
        if (info !== undefined) return after(info)
        const answer = writeAsync(engine, r, patchOf(bytes), now)
        return answer === undefined ? written(next, bytes) : Effect.flatMap(answer, after)
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

/**
 * A store's `changes` from a callback source (a listener, a directory watch), cheap per event: ids are gathered in a
 * set and handed to the stream once per turn of the event loop, so a task checkpointing back to back (each write an
 * event) costs its followers one pass over the ids that changed meanwhile, not a fiber and a promise per write.
 *
 * The runner follows a store's changes for as long as tasks run (`follow`): a stream made here is followed straight
 * from its source, without a stream's machinery per batch.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type * as TaskRecord from "../TaskRecord.js"

/**
 * Whether a write of `patch` is news another process must hear of at once, where a store announces writes rather
 * than hearing all of them (Postgres, the file store): a request for the task's runner (`interrupt`), wherever it
 * runs, or a task handed back to the queue (`pending`), for idle workers to claim. A task created `pending` is
 * announced too. Nothing else is: a runner's own checkpoints, heartbeats and end concern no other process at once,
 * and a takeover is found by the runner it fences off at its next write or look.
 */
export const announced = (patch: TaskRecord.TaskPatch): boolean =>
  patch.interrupt !== undefined || patch.status === "pending"

/** What a source is given: `changed(id)` for a record that changed (`undefined`: some record), `end()` if it stops. */
export interface Sink {
  readonly changed: (id: string | undefined) => void
  readonly end: () => void
}

/** Gathered ids beyond this are handed on as one `undefined` (look at everything): memory stays bounded. */
const maxPending = 1024

/** Ids that changed, gathered until taken as one batch: distinct, in order of first change, at most `maxPending`. */
const gathered = () => {
  let pending = new Set<string | undefined>()
  return {
    add: (id: string | undefined) => {
      pending.add(pending.size >= maxPending ? undefined : id)
    },
    get size() {
      return pending.size
    },
    take: (): Array<string | undefined> => {
      const ids = pending
      pending = new Set()
      return ids.has(undefined) ? [undefined] : Array.from(ids)
    }
  }
}

/**
 * The changes `subscribe` reports while the stream is consumed; `subscribe` returns its own unsubscribe. A source that
 * cannot start calls `end()` (readers then fall back to polling).
 */
export const fromSource = (subscribe: (sink: Sink) => () => void): Stream.Stream<string | undefined> => {
  const stream = asStream(subscribe)
  sources.set(stream, subscribe)
  return stream
}

/** The source of each stream `fromSource` made. */
const sources = new WeakMap<Stream.Stream<string | undefined>, (sink: Sink) => () => void>()

/** The stream of a source: what changed, handed on once per turn of the event loop. */
const asStream = (subscribe: (sink: Sink) => () => void): Stream.Stream<string | undefined> =>
  Stream.asyncPush<string | undefined>((emit) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        const pending = gathered()
        let scheduled = false
        const flush = () => {
          scheduled = false
          if (pending.size > 0) emit.array(pending.take())
        }
        return subscribe({
          changed: (id) => {
            pending.add(id)
            if (!scheduled) {
              scheduled = true
              queueMicrotask(flush)
            }
          },
          end: () => {
            // What was gathered is handed on first: the end must not swallow a change.
            if (scheduled) flush()
            emit.end()
          }
        })
      }),
      (unsubscribe) => Effect.sync(unsubscribe)
    )
  )

/**
 * Runs `f` for each id in `changes` (a batch at a time, `undefined` alone for "some record"), until the changes end.
 * A stream made by `fromSource` is followed from its source: one wake-up of this fiber per batch, and none for a
 * change `atOnce` deals with itself, in the source's callback (it returns `true`): a follower that has nothing to do
 * for most changes (a record not its own, a look already on its way) costs no fiber's turn for them.
 */
export const follow = (
  changes: Stream.Stream<string | undefined>,
  f: (id: string | undefined) => Effect.Effect<void>,
  atOnce?: (id: string | undefined) => boolean
): Effect.Effect<void> => {
  const subscribe = sources.get(changes)
  if (subscribe === undefined) return Stream.runForEach(changes, f)
  return Effect.suspend(() => {
    const pending = gathered()
    let ended = false
    let wake: (() => void) | undefined
    const sink: Sink = {
      changed: (id) => {
        if (atOnce?.(id) === true) return
        pending.add(id)
        wake?.()
      },
      end: () => {
        ended = true
        wake?.()
      }
    }
    /** Waits until there is a batch or the source has ended. */
    const next = Effect.async<void>((resume) => {
      if (pending.size > 0 || ended) return resume(Effect.void)
      wake = () => {
        wake = undefined
        resume(Effect.void)
      }
      return Effect.sync(() => {
        wake = undefined
      })
    })
    const loop: Effect.Effect<void> = Effect.flatMap(next, () => {
      // What was gathered is handed on first: the end must not swallow a change.
      if (pending.size === 0) return Effect.void
      return Effect.zipRight(
        Effect.forEach(pending.take(), f, { discard: true }),
        Effect.suspend(() => (ended && pending.size === 0 ? Effect.void : loop))
      )
    })
    return Effect.acquireUseRelease(
      Effect.sync(() => subscribe(sink)),
      () => loop,
      (unsubscribe) => Effect.sync(unsubscribe)
    )
  })
}

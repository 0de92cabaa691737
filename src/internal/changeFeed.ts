/**
 * A store's `changes` from a callback source (a listener, a directory watch), cheap per event: ids are gathered in a
 * set and handed to the stream once per turn of the event loop, so a task checkpointing back to back (each write an
 * event) costs its followers one pass over the ids that changed meanwhile, not a fiber and a promise per write.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"

/** What a source is given: `changed(id)` for a record that changed (`undefined`: some record), `end()` if it stops. */
export interface Sink {
  readonly changed: (id: string | undefined) => void
  readonly end: () => void
}

/** Gathered ids beyond this are handed on as one `undefined` (look at everything): memory stays bounded. */
const maxPending = 1024

/**
 * The changes `subscribe` reports while the stream is consumed; `subscribe` returns its own unsubscribe. A source that
 * cannot start calls `end()` (readers then fall back to polling).
 */
export const fromSource = (subscribe: (sink: Sink) => () => void): Stream.Stream<string | undefined> =>
  Stream.asyncPush<string | undefined>((emit) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        let pending = new Set<string | undefined>()
        let scheduled = false
        const flush = () => {
          scheduled = false
          const ids = pending
          if (ids.size === 0) return
          pending = new Set()
          emit.array(ids.has(undefined) ? [undefined] : Array.from(ids))
        }
        return subscribe({
          changed: (id) => {
            pending.add(pending.size >= maxPending ? undefined : id)
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

/**
 * SQLite's `changes` on a synchronous connection: its `PRAGMA data_version`, read every `intervalMs` by a plain timer.
 * Another connection's commit moves it; this connection's own commits do not. A move is reported as "some record"
 * (`undefined`): SQLite cannot tell which.
 *
 * A plain timer rather than a stream repeated on a schedule: the check runs forty times a second for as long as tasks
 * run in the process, and the stream's machinery around the statement made a process whose one task waits burn 35–43
 * ms of CPU a second here, against 11.6 ms with the timer (`npx tsx bench/neighbours.ts sqlite`, its quiet window).
 */
import type * as Stream from "effect/Stream"
import * as ChangeFeed from "../changeFeed.js"

/** The moves of the version `read` returns (`undefined` when it cannot be read) while the stream is consumed. */
export const changes = (read: () => number | undefined, intervalMs: number): Stream.Stream<string | undefined> =>
  ChangeFeed.fromSource(({ changed }) => {
    const safeRead = () => {
      try {
        return read()
      } catch {
        // A failed check (the database busy, closing) is only a later one.
        return undefined
      }
    }
    let last = safeRead()
    const timer = setInterval(() => {
      const version = safeRead()
      if (version === undefined) return
      if (last !== undefined && version !== last) changed(undefined)
      last = version
    }, intervalMs)
    // Checking must not keep a process alive that has nothing else to do.
    timer.unref()
    return () => clearInterval(timer)
  })

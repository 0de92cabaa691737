/**
 * Clearing what dead processes left in a store directory, when the store opens: temp files, locks being broken and
 * holder files (named by their process), locks whose holder is gone, want hints gone stale, and announcements left
 * by a crash (each lives for two system calls: one found now is either left over or already heard).
 */
import * as Effect from "effect/Effect"
import { join } from "node:path"
import * as Holder from "../../Holder.js"
import type { TaskStoreError } from "../../TaskError.js"
import { breakPrefix, holderPrefix, type Layout, lockSuffix, tempPrefix, wantSuffix } from "./layout.js"
import type { Locks } from "./locks.js"

/** Sweeps `layout`'s directory. */
export const sweep = (layout: Layout, locks: Locks): Effect.Effect<void, TaskStoreError> => {
  const { dir, fs, me } = layout
  /** Removes the file at `path`, named by the process that made it, if that process is gone. */
  const removeIfOrphan = (name: string, path: string) => {
    const [pid, start] = name.slice(name.indexOf("-") + 1).split("-")
    const holder = { host: me.host, pid: Number(pid), processStart: start ?? "" }
    return Holder.mayBeAlive(holder, me) ? Effect.void : fs.remove(path).pipe(Effect.catchAll(() => Effect.void))
  }
  const temps = Effect.flatMap(fs.readDirectory(layout.tempDir), (names) =>
    Effect.forEach(
      names,
      (name) => (name.startsWith(tempPrefix) ? removeIfOrphan(name, join(layout.tempDir, name)) : Effect.void),
      {
        discard: true
      }
    )
  ).pipe(Effect.mapError(layout.io("open", layout.tempDir)))
  const signals = Effect.flatMap(fs.readDirectory(layout.signalDir), (names) =>
    Effect.forEach(names, (name) => fs.remove(join(layout.signalDir, name)).pipe(Effect.catchAll(() => Effect.void)), {
      discard: true
    })
  ).pipe(Effect.mapError(layout.io("open", layout.signalDir)))
  const beside = Effect.gen(function* () {
    const names = yield* fs.readDirectory(dir)
    for (const name of names) {
      const path = join(dir, name)
      // Temp files beside the records are from versions before `.tmp/`.
      if (name.startsWith(tempPrefix) || name.startsWith(breakPrefix) || name.startsWith(holderPrefix)) {
        yield* removeIfOrphan(name, path)
      } else if (name.endsWith(wantSuffix)) {
        const text = yield* fs.readFileString(path).pipe(Effect.catchAll(() => Effect.succeed("")))
        const hint = locks.parseWant(text)
        // Stryker disable next-line EqualityOperator: the hint's last millisecond is timing only.
        if (hint === undefined || Date.now() - hint.time > 2000) {
          yield* fs.remove(path).pipe(Effect.catchAll(() => Effect.void))
        }
      } else if (name.endsWith(lockSuffix)) {
        const text = yield* locks.readLock(path)
        const owner = text === undefined ? undefined : locks.parseLock(text)
        if (text !== undefined && (owner === undefined || !Holder.mayBeAlive(owner.holder, me))) {
          yield* locks.breakLock(path, text)
        }
      }
    }
  }).pipe(Effect.mapError(layout.io("open", dir)))
  return Effect.zipRight(Effect.zipRight(temps, signals), beside)
}

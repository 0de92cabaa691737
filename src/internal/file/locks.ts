/**
 * Per-task locks between processes on one host: a hard link to the holder's own file (which names it), created in one
 * atomic step; broken when its holder is gone, waited for (fairly) when it is alive; released, and retried in the
 * background if the release fails. A link to a file that exists makes a directory entry and nothing else: no inode
 * is allocated and freed per write, as with the symbolic links of versions before (still read, and broken, the same
 * way), whose creation and removal the write's directory fsync had to commit too (`npx tsx bench/lockCost.ts`). A
 * write at once of a task running here keeps its lock until the event loop turns (`keep`), for the next write.
 */
import type * as PlatformError from "@effect/platform/Error"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import { join } from "node:path"
import * as Holder from "../../Holder.js"
import { TaskStoreError } from "../../TaskError.js"
import * as FileSystemSync from "./fileSystemSync.js"
import { breakPrefix, holderPrefix, isExists, isNotFound, type Layout } from "./layout.js"

/** The locks of one store instance. */
export interface Locks {
  /** Runs `effect` holding the lock of task `id`. */
  readonly withLock: <A, E>(id: string, effect: Effect.Effect<A, E>) => Effect.Effect<A, E | TaskStoreError>
  /**
   * Runs `f` holding the lock of task `id`, taken and dropped in direct system calls, when it can be had at once:
   * nobody here is on its way to it, no process waits for it, none holds it. `undefined` when it cannot: the caller
   * goes through `withLock`, which waits, breaks a dead holder's lock and lets waiters in. Only on `FileSystemSync`.
   */
  readonly tryWithLockSync:
    (<A>(id: string, f: (kept: boolean) => A) => Effect.Effect<A | undefined, TaskStoreError>) | undefined
  /**
   * `tryWithLockSync` without an effect, for a write made at once (`AtOnce`): `f`'s value; the store's failure, when
   * taking the lock failed or `f` threw one; or `undefined` when the lock cannot be had at once or `f` threw anything
   * else (the caller's effect path meets that again). A release that fails goes on in the background.
   */
  readonly withLockAtOnce: (<A>(id: string, f: (kept: boolean) => A) => A | TaskStoreError | undefined) | undefined
  /**
   * Called by `f` under `tryWithLockSync` or `withLockAtOnce`: the lock is kept once `f` returns, until the event loop
   * next turns (or sooner: another fiber here or another process wants it, the store closes). A task writing back to
   * back takes and drops it once per turn rather than once per write, and its next write there is told (`kept`) that
   * nobody can have written the record since its last one: all writers hold the lock.
   */
  readonly keep: () => void
  /** Removes the lock at `path` if it still reads `judged` (atomic: renamed aside, checked, put back if not). */
  readonly breakLock: (path: string, judged: string) => Effect.Effect<void, PlatformError.PlatformError>
  /** The holder a lock names, or `undefined` for a lock that is nobody's. */
  readonly parseLock: (text: string) => { readonly holder: Holder.Holder } | undefined
  /** The store instance and time a want hint names, or `undefined` for a malformed one. */
  readonly parseWant: (text: string) => { readonly store: string; readonly time: number } | undefined
  /** What a lock says of its holder (a hard link's content, an older symbolic link's target), or `undefined`. */
  readonly readLock: (path: string) => Effect.Effect<string | undefined>
  /** Makes this store's holder file, which its locks link to (when the store opens). */
  readonly open: Effect.Effect<void, TaskStoreError>
  /** Removes this store's holder file (when the store closes). */
  readonly close: Effect.Effect<void>
}

/** What `f` under a lock taken at once came to. */
type Locked<A> =
  /** The lock cannot be had at once: someone here or elsewhere is on their way to it, or holds it. */
  | { readonly _tag: "Busy" }
  /** Taking it failed. */
  | { readonly _tag: "Failed"; readonly error: TaskStoreError }
  /** `f` threw: the lock is still held, to be released. */
  | { readonly _tag: "Threw"; readonly thrown: unknown }
  /** `f` ran; the lock was dropped, or is still to be released. */
  | { readonly _tag: "Done"; readonly value: A; readonly released: boolean }

const busy: Locked<never> = { _tag: "Busy" }

/**
 * The locks of a store instance in `layout`'s directory; background retries of failed releases live in `scope`,
 * started from plain code by `background`.
 */
export const make = (
  layout: Layout,
  options: {
    readonly lockTimeoutMs: number
    readonly scope: Scope.Scope
    readonly background: (effect: Effect.Effect<void>) => void
    readonly syscalls?: FileSystemSync.Syscalls | undefined
  }
): Locks => {
  const { fs, me } = layout
  const lockTimeoutMs = options.lockTimeoutMs
  const scope = options.scope
  // One fiber per process and task goes for the file lock; the others queue here instead of spinning on the disk.
  // `queued` counts the fibers in or waiting for a stripe: the direct path goes only where nobody is.
  const stripes = Array.from({ length: 64 }, () => ({ semaphore: Effect.unsafeMakeSemaphore(1), queued: 0 }))
  // Stryker disable all: which stripe an id gets only spreads the queueing; any function of the id is correct.
  const stripe = (id: string) => {
    let h = 0
    for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) | 0
    return stripes[Math.abs(h) % stripes.length]!
  }
  // Stryker restore all

  interface LockOwner {
    readonly holder: Holder.Holder
    readonly nonce: string
    readonly store: string
  }
  // Tells this store instance's locks from those of another instance in the same process.
  const instance = randomBytes(6).toString("base64url").replace(/-/g, "_")
  // Every lock of this store instance is a link to this one file, which names the holder. The host is implied: this
  // store is one host's. (The last part was a per-lock number in the symbolic links of versions before.)
  const content = `L:${me.pid}:${me.processStart}:${instance}:h`
  const holderPath = join(layout.dir, `${holderPrefix}${me.pid}-${me.processStart}-${instance}`)
  /** The ids whose lock this instance holds now: a failed release retried in the background leaves these alone. */
  const held = new Set<string>()
  /** The ids whose lock a write at once kept (`keep`), and the turn of the event loop that drops them. */
  const kept = new Set<string>()
  let dropping: ReturnType<typeof setImmediate> | undefined
  const makeHolder = fs.writeFileString(holderPath, content)
  // A lock or hint with any part missing (or extra) is nobody's.
  const parseLock = (text: string): LockOwner | undefined => {
    const parts = text.split(":")
    if (parts.length !== 5 || parts[0] !== "L") return undefined
    const [, pid, processStart, store, nonce] = parts as [string, string, string, string, string]
    return { holder: { host: me.host, pid: Number(pid), processStart }, store, nonce }
  }
  const wantContent = () => `W:${instance}:${Date.now()}`
  const parseWant = (text: string): { readonly store: string; readonly time: number } | undefined => {
    const parts = text.split(":")
    if (parts.length !== 3 || parts[0] !== "W") return undefined
    const [, store, time] = parts as [string, string, string]
    return { store, time: Number(time) }
  }

  // A symbolic link (an older version's lock, or anything planted there) is read as such, never followed.
  const readLock = (path: string): Effect.Effect<string | undefined> =>
    fs.readLink(path).pipe(
      Effect.catchAll(() => fs.readFileString(path)),
      Effect.catchAll(() => Effect.succeed(undefined))
    )

  // Lock waits are in real time whatever clock the caller runs under: other processes do not share a TestClock.
  const pause = (ms: number) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, ms)))

  /**
   * Removes a lock whose holder is gone. It is renamed aside first (atomic), then checked: if what was moved is not
   * the stale lock that was judged (another process replaced it meanwhile), it is put back where it was.
   */
  const breakLock = (path: string, judged: string) =>
    Effect.gen(function* () {
      const aside = join(layout.dir, `${breakPrefix}${me.pid}-${me.processStart}-${randomBytes(6).toString("hex")}`)
      const putBackUnlessJudged = Effect.gen(function* () {
        const text = (yield* readLock(aside)) ?? ""
        if (text !== judged) yield* fs.link(aside, path).pipe(Effect.catchAll(() => Effect.void))
        yield* fs.remove(aside).pipe(Effect.catchAll(() => Effect.void))
      })
      // A lock gone before it could be moved was released meanwhile: nothing to break.
      yield* fs.rename(path, aside).pipe(
        Effect.flatMap(() => putBackUnlessJudged),
        Effect.catchIf(isNotFound, () => Effect.void)
      )
    })

  /**
   * Takes the task's lock: a hard link to this store's holder file, created in one atomic step (so a lock is never
   * seen half-written). A lock whose holder process is gone is broken; a live one is waited for.
   *
   * Fairness: a waiter leaves a `<id>.want` hint; a process about to take the lock again first gives a fresh hint
   * of another store a moment, so a task checkpointing back to back cannot starve a `pause` from elsewhere.
   */
  const acquireLock = (id: string): Effect.Effect<string, TaskStoreError> => {
    const path = layout.lockPath(id)
    const want = layout.wantPath(id)
    const started = Date.now()
    let announced = false
    // The hint is a small regular file, so looking for it is one `access` call and, usually, no error.
    const yieldToWaiter = fs.exists(want).pipe(
      Effect.flatMap((present) =>
        present
          ? Effect.flatMap(fs.readFileString(want), (text) => {
              const hint = parseWant(text)
              // Stryker disable next-line ConditionalExpression,EqualityOperator: which hints earn the 3 ms pause is timing only.
              const fresh = hint === undefined || (hint.store !== instance && Date.now() - hint.time < 2000)
              return fresh ? pause(3) : Effect.void
            })
          : Effect.void
      ),
      Effect.catchAll(() => Effect.void)
    )
    const link = fs.link(holderPath, path).pipe(
      // The holder file is gone (removed by hand): made again.
      Effect.catchIf(isNotFound, () => Effect.zipRight(makeHolder, fs.link(holderPath, path)))
    )
    const attempt = (delay: number): Effect.Effect<void, TaskStoreError> =>
      link.pipe(
        Effect.tap(() => Effect.sync(() => held.add(id))),
        Effect.catchIf(isExists, () =>
          Effect.gen(function* () {
            // Stryker disable next-line ConditionalExpression: announcing again fails (`wx`) and is ignored.
            if (!announced) {
              announced = true
              yield* fs.writeFileString(want, wantContent(), { flag: "wx" }).pipe(Effect.catchAll(() => Effect.void))
            }
            const text = yield* readLock(path)
            if (text === undefined) return yield* attempt(1) // released meanwhile
            const owner = parseLock(text)
            // This store instance holds no lock here except through the stripe semaphore, which this fiber has:
            // a lock of ours is a leftover of a failed release. A lock we cannot read is nobody's.
            const ours = owner !== undefined && owner.store === instance
            if (owner === undefined || ours || !Holder.mayBeAlive(owner.holder, me)) {
              yield* breakLock(path, text)
              // Stryker disable next-line EqualityOperator: the timeout's last millisecond is timing only.
            } else if (Date.now() - started > lockTimeoutMs) {
              return yield* new TaskStoreError({
                reason: "Io",
                operation: "lock",
                id,
                path,
                detail: `the task is locked by ${Holder.describe(owner.holder)} for over ${Duration.format(
                  Duration.millis(lockTimeoutMs)
                )}`
              })
            } else yield* pause(delay)
            // Stryker disable next-line MethodExpression,ArithmeticOperator: the back-off's shape is timing only.
            return yield* attempt(Math.min(delay * 2, 20))
          })
        ),
        Effect.catchIf(
          (e): e is PlatformError.PlatformError => e._tag !== "TaskStoreError",
          (e) => Effect.fail(layout.io("lock", path, id)(e))
        )
      )
    const clearWant = Effect.suspend(() =>
      announced
        ? fs.readFileString(want).pipe(
            Effect.flatMap((text) => (parseWant(text)?.store === instance ? fs.remove(want) : Effect.void)),
            Effect.catchAll(() => Effect.void)
          )
        : Effect.void
    )
    return yieldToWaiter.pipe(Effect.zipRight(attempt(1)), Effect.zipRight(clearWant), Effect.as(content))
  }

  /**
   * Removes our lock. If that fails, the lock would hold up other processes for as long as this one lives: keep
   * trying in the background (only while the lock is still this one) and tell the user.
   */
  const releaseLock = (id: string) => {
    const path = layout.lockPath(id)
    held.delete(id)
    const stillOurs = Effect.map(readLock(path), (text) => text === content)
    const retry = Effect.gen(function* () {
      for (let delay = 10; delay < 60_000; delay *= 2) {
        yield* pause(delay)
        // Taken again here meanwhile (the leftover broken and a new lock made, or one kept by a write at once): its
        // holder releases it. Asked again after the read, which another fiber here may have overtaken.
        const takenAgain = () => held.has(id) || kept.has(id)
        if (takenAgain() || !(yield* stillOurs) || takenAgain()) return
        const removed = yield* Effect.either(fs.remove(path))
        if (removed._tag === "Right") return
      }
    })
    return fs.remove(path).pipe(
      Effect.catchAll((e) =>
        Effect.zipRight(
          Effect.logWarning(`Could not remove the lock of task ${id}; retrying in the background`, e),
          Effect.forkIn(retry, scope)
        )
      ),
      Effect.asVoid
    )
  }

  const withLock = <A, E>(id: string, effect: Effect.Effect<A, E>): Effect.Effect<A, E | TaskStoreError> =>
    Effect.suspend(() => {
      // A lock kept here is dropped first: taking it again below, the wait would take it for a leftover to break.
      if (kept.has(id)) dropKept(id)
      const s = stripe(id)
      s.queued++
      return s.semaphore
        .withPermits(1)(
          Effect.acquireUseRelease(
            acquireLock(id),
            () => effect,
            () => releaseLock(id)
          )
        )
        .pipe(
          Effect.ensuring(
            Effect.sync(() => {
              s.queued--
            })
          )
        )
    })

  const sys = options.syscalls

  /** Drops the kept lock of `id` now; a removal that fails goes on in the background. */
  const dropKept = (id: string) => {
    kept.delete(id)
    try {
      sys!.unlinkSync(layout.lockPath(id))
    } catch (e) {
      // Gone already (removed by hand): nothing to release.
      if (FileSystemSync.codeOf(e) !== "ENOENT") options.background(releaseLock(id))
    }
  }
  const dropAllKept = () => {
    if (dropping !== undefined) clearImmediate(dropping)
    dropping = undefined
    for (const id of kept) dropKept(id)
  }

  /** Whether `f` is running under `lockedSync`, and whether it asked to keep the lock. */
  let inside = false
  let keepAsked = false
  const keep = () => {
    if (inside) keepAsked = true
  }

  /**
   * `f` under the lock of `id`, taken and dropped in direct system calls, if it can be had at once. Synchronous from
   * the first call to the last: no fiber of this process can come in between, so the only ones to respect are those
   * already queued for the stripe (they go first, through `withLock`). A lock kept by the write before (`keep`) is
   * used as it is, and `f` told so; one `f` asks to keep stays until the event loop turns.
   */
  const lockedSync = <A>(sys: FileSystemSync.Syscalls, id: string, f: (kept: boolean) => A): Locked<A> => {
    const wasKept = kept.has(id)
    if (stripe(id).queued > 0) {
      if (wasKept) dropKept(id)
      return busy
    }
    // A waiter's hint (or one we cannot read): `withLock` gives it its turn, once the lock kept for it is dropped.
    try {
      if (sys.statSync(layout.wantPath(id)) !== undefined) {
        if (wasKept) dropKept(id)
        return busy
      }
    } catch {
      if (wasKept) dropKept(id)
      return busy
    }
    const path = layout.lockPath(id)
    if (wasKept) {
      kept.delete(id)
    } else {
      try {
        sys.linkSync(holderPath, path)
      } catch (e) {
        const code = FileSystemSync.codeOf(e)
        // Taken (or the holder file gone, which `withLock` makes again): the effect path.
        return code === "EEXIST" || code === "ENOENT"
          ? busy
          : { _tag: "Failed", error: layout.io("lock", path, id)(FileSystemSync.systemError("link", path, e)) }
      }
    }
    let value: A
    inside = true
    keepAsked = false
    try {
      value = f(wasKept)
    } catch (e) {
      return { _tag: "Threw", thrown: e }
    } finally {
      inside = false
    }
    if (keepAsked) {
      kept.add(id)
      dropping ??= setImmediate(dropAllKept)
      return { _tag: "Done", value, released: true }
    }
    try {
      sys.unlinkSync(path)
    } catch {
      return { _tag: "Done", value, released: false }
    }
    return { _tag: "Done", value, released: true }
  }

  const tryWithLockSync =
    sys === undefined
      ? undefined
      : <A>(id: string, f: (kept: boolean) => A): Effect.Effect<A | undefined, TaskStoreError> =>
          Effect.suspend((): Effect.Effect<A | undefined, TaskStoreError> => {
            const locked = lockedSync(sys, id, f)
            switch (locked._tag) {
              case "Busy":
                return Effect.succeed(undefined)
              case "Failed":
                return Effect.fail(locked.error)
              case "Threw":
                // `f` returns its failures; what it throws is a defect. The lock goes all the same.
                return Effect.zipRight(releaseLock(id), Effect.die(locked.thrown))
              case "Done":
                // The write is done; a release that failed is tried again, and on in the background if it must.
                return locked.released ? Effect.succeed(locked.value) : Effect.as(releaseLock(id), locked.value)
            }
          })

  const withLockAtOnce =
    sys === undefined
      ? undefined
      : <A>(id: string, f: (kept: boolean) => A): A | TaskStoreError | undefined => {
          const locked = lockedSync(sys, id, f)
          switch (locked._tag) {
            case "Busy":
              return undefined
            case "Failed":
              return locked.error
            case "Threw":
              options.background(releaseLock(id))
              return locked.thrown instanceof TaskStoreError ? locked.thrown : undefined
            case "Done":
              if (!locked.released) options.background(releaseLock(id))
              return locked.value
          }
        }

  const close = Effect.zipRight(
    Effect.sync(dropAllKept),
    fs.remove(holderPath).pipe(Effect.catchAll(() => Effect.void))
  )

  const open = makeHolder.pipe(Effect.mapError(layout.io("open", holderPath)))

  return { withLock, tryWithLockSync, withLockAtOnce, keep, breakLock, parseLock, parseWant, readLock, open, close }
}

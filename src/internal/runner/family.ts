/**
 * Child tasks (`task.child`): starting a task's child or re-attaching to it on a resume, waiting for its end, rolling
 * its progress into the parent's, and carrying the parent's pause, cancel and release to it.
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import { createHash } from "node:crypto"
import type * as Progress from "../../Progress.js"
import type * as Task from "../../Task.js"
import { type ChildError, InvalidChildKey, TaskAlreadyExists, TaskPaused } from "../../TaskError.js"
import * as TaskId from "../../TaskId.js"
import type * as TaskRecord from "../../TaskRecord.js"
import { awaitTask } from "./await.js"
import { resume } from "./claim.js"
import { encodeField } from "./codecs.js"
import * as Control from "./control.js"
import { checkKind, type Engine, isStale, register } from "./engine.js"
import type { Running } from "./running.js"
import { callerContext, checkSameInput, start, submit } from "./start.js"

/** The id of `parent`'s child named `key`. */
export const childId = (parent: string, key: string): string => `${parent}.${key}`

/** Why `key` cannot name a child, or `undefined` when it can. */
const invalidKey = (key: string): string | undefined =>
  key.length === 0
    ? "it is empty"
    : key.includes(".")
      ? "it contains '.' (which separates a child's key from its parent's id)"
      : /^[A-Za-z0-9_:@+=-]+$/.test(key)
        ? undefined
        : "it contains characters outside [A-Za-z0-9_:@+=-]"

/** The key of a child nobody named: its kind and a hash of its encoded input (the same input is the same child). */
export const defaultKey = (kind: string, input: Uint8Array): string =>
  `${kind.replace(/[^A-Za-z0-9_:@+=-]/g, "_")}-${createHash("sha256").update(input).digest("hex").slice(0, 12)}`

/** What a parent knows of one child: as last read, or as it ended. */
interface Member {
  readonly weight: number | undefined
  readonly status: TaskRecord.Status
  readonly progress: Progress.Progress
}

/** How much of its parent's progress one child makes, and of what total. */
const contribution = (member: Member, progress: Progress.Progress): Progress.Rollup => {
  const fraction =
    member.status === "completed"
      ? 1
      : progress.total !== undefined && progress.total > 0
        ? Math.min(1, progress.done / progress.total)
        : 0
  if (member.weight !== undefined) return { done: member.weight * fraction, total: member.weight }
  // In the child's own units: its total if it has one, else what it has done so far.
  const total = progress.total ?? progress.done
  return { done: member.status === "completed" ? total : Math.min(progress.done, total), total }
}

/** The children of one running task: their progress, as it rolls up into the parent's. */
export class Family {
  private readonly members = new Map<string, Member>()

  constructor(
    private readonly engine: Engine,
    /**
     * The parent had children before this run (its stored progress says so): all of them are read from the store at
     * the next beat, so children this run does not revisit still count.
     */
    private unread: boolean
  ) {}

  /** Records what is known of a child. */
  note(info: TaskRecord.TaskInfo): void {
    this.members.set(info.id, { weight: info.weight, status: info.status, progress: info.progress })
  }

  /** The children's progress in the parent's units: a child running here is read live. */
  rollup(): Progress.Rollup {
    let done = 0
    let total = 0
    for (const [id, member] of this.members) {
      const here = this.engine.running.get(id)
      const part =
        here === undefined ? contribution(member, member.progress) : contribution(member, here.live().progress)
      done += part.done
      total += part.total
    }
    return { done, total }
  }

  /**
   * Reads the children from the store where that tells more than this runner knows: on the first beat of a resumed
   * parent, and while a child runs in another runner (its progress is what its runner last flushed).
   */
  refresh(parent: string): Effect.Effect<void> {
    return Effect.suspend(() => {
      // A child not here that has not ended may be moving elsewhere (queued, claimed by a worker, running there).
      const elsewhere = Array.from(this.members).some(
        ([id, m]) => m.status !== "completed" && m.status !== "cancelled" && !this.engine.running.has(id)
      )
      if (!this.unread && !elsewhere) return Effect.void
      const store = this.engine.store
      return Effect.gen({ self: this }, function* () {
        let after: string | undefined = undefined
        do {
          const page: TaskRecord.Page = yield* store.list({ parent, limit: 500, after })
          for (const info of page.items) this.self.note(info)
          after = page.next
        } while (after !== undefined)
        this.self.unread = false
      }).pipe(Effect.catchAll((e) => Effect.logDebug(`Could not read the children of task ${parent}`, e)))
    })
  }
}

/** The family of a running task, made on its first child. */
export const familyOf = (engine: Engine, r: Running, unread = false): Family => {
  if (r.family === undefined) {
    const family = new Family(engine, unread)
    r.family = family
    r.tracker.rollup = () => family.rollup()
  }
  return r.family
}

/**
 * Makes sure the child runs (or has ended): started here if it does not exist, resumed here if it was paused, failed,
 * queued, or stopped with its runner; left alone if it runs (here or in another live runner) or has ended. A queued
 * child (`queue`) is submitted instead, and put back in the queue where another would be resumed here.
 */
const attach = <T extends Task.Any>(
  engine: Engine,
  parent: Running,
  task: T,
  id: string,
  input: Task.Input<T>,
  options: Task.ChildOptions | undefined
) =>
  Effect.gen(function* () {
    const family = familyOf(engine, parent)
    const context = yield* callerContext<Task.Services<T>>(engine)
    while (true) {
      const existing = yield* engine.store.getInfo(id).pipe(
        Effect.map((info) => info as TaskRecord.TaskInfo | undefined),
        Effect.catchTag("TaskNotFound", () => Effect.succeed(undefined))
      )
      if (existing === undefined) {
        const membership = { parent: parent.id, weight: options?.weight }
        const created =
          options?.queue === true
            ? submit(engine, task, input, { id }, membership)
            : start(engine, task, input, { id }, membership)
        const started = yield* created.pipe(
          Effect.as(true),
          // Created meanwhile (the same child asked for twice at once): attach to it.
          Effect.catchTag("TaskAlreadyExists", () => Effect.succeed(false))
        )
        if (!started) continue
        family.note(engine.running.get(id)?.info ?? (yield* engine.store.getInfo(id)))
        return
      }
      // The id is taken by a task that is not this parent's child.
      if (existing.parent !== parent.id) return yield* new TaskAlreadyExists({ id })
      yield* checkKind(task, existing)
      yield* checkSameInput(task, yield* engine.store.get(id), input)
      family.note(existing)
      const now = yield* Clock.currentTimeMillis
      switch (existing.status) {
        case "completed":
        case "cancelled":
          return
        case "running":
          if (engine.running.has(id) || !isStale(engine, existing, now)) return
          break
        case "pending":
          // Queued: a worker will claim it.
          if (options?.queue === true) return
          // A retry waiting out its delay: its runner here resumes it then; so does this loop, if nobody does.
          if (existing.runAt !== undefined && existing.runAt > now) {
            yield* Effect.sleep(existing.runAt - now)
            continue
          }
          break
      }
      if (options?.queue === true) {
        // Paused, failed, or stopped with its worker: back in the queue, from its last checkpoint.
        const queued = yield* engine.store
          .update(id, existing.revision, {
            status: "pending",
            lease: undefined,
            interrupt: undefined,
            runAt: undefined,
            reason: `queued again by its parent ${parent.id}`,
            updatedAt: now
          })
          .pipe(
            Effect.as(true),
            // Changed meanwhile (claimed, resumed, deleted): look again.
            Effect.catchTags({
              RevisionConflict: () => Effect.succeed(false),
              TaskNotFound: () => Effect.succeed(false)
            })
          )
        if (queued) {
          yield* Effect.forEach(engine.wakers, (wake) => wake, { discard: true })
          return
        }
        continue
      }
      const resumed = yield* resume(engine, id, context).pipe(
        Effect.as(true),
        // Claimed by someone else meanwhile: look again.
        Effect.catchTag("TaskNotResumable", () => Effect.succeed(false)),
        Effect.catchTag("UnknownTaskKind", Effect.die)
      )
      if (resumed) return
    }
  })

/** Carries the parent's stop to its child: a pause or cancel (or, for a worker's release, a release of a child here). */
const stopChild = (engine: Engine, parent: Running, id: string) =>
  Effect.suspend(() => {
    const stop = parent.stop
    // A parent that lost its lease leaves its children to whoever took it over.
    if (stop?.kind === "lost") return Effect.void
    const kind = stop?.kind ?? "pause"
    const reason =
      stop === undefined
        ? // Only this effect was interrupted (a timeout, a race, a sibling's failure): the parent goes on.
          `its parent ${parent.id} stopped waiting for it`
        : `its parent ${parent.id} was ${kind === "cancel" ? "cancelled" : kind === "release" ? "released" : "paused"}`
    const here = engine.running.get(id)
    if (here !== undefined) return Effect.zipRight(here.requestStop({ kind, reason }), Deferred.await(here.done))
    // Not here: its owner is asked through the store, a task nobody runs is changed directly.
    return kind === "release" ? Effect.void : Control.stop(engine, id, kind, reason)
  }).pipe(Effect.catchAllCause((cause) => Effect.logWarning(`Could not stop child task ${id}`, cause)))

/** `task.child`: the child's typed success or failure; on a resume of the parent, the same child re-attached. */
export const child = <T extends Task.Any>(
  engine: Engine,
  parent: Running,
  task: T,
  input: Task.Input<T>,
  options?: Task.ChildOptions
): Effect.Effect<Task.Success<T>, Task.Error<T> | ChildError, Task.Services<T>> =>
  Effect.gen(function* () {
    const bytes = yield* encodeField(task.codecs.input, parent.id, task.name, "input", input)
    const key = options?.key ?? defaultKey(task.name, bytes)
    const why = invalidKey(key)
    if (why !== undefined) return yield* new InvalidChildKey({ parent: parent.id, key, reason: why })
    const id = yield* TaskId.validate(childId(parent.id, key))
    register(engine, task)
    return yield* Effect.gen(function* () {
      yield* attach(engine, parent, task, id, input, options)
      while (true) {
        const ended = yield* Effect.either(awaitTask(engine, task, id))
        const info = yield* Effect.option(engine.store.getInfo(id))
        if (info._tag === "Some") familyOf(engine, parent).note(info.value)
        if (ended._tag === "Right") return ended.right
        const error = ended.left
        if (!(error instanceof TaskPaused)) return yield* Effect.fail(error)
        if (info._tag === "Some" && info.value.status === "paused") {
          // Paused on its own (by someone, or by a store failure): the family waits for a resume, paused as a whole.
          yield* parent.requestStop({ kind: "pause", reason: `its child ${id} was paused` })
          return yield* Effect.interrupt
        }
        // Its runner stopped without pausing it: resume it here (or queue it again).
        yield* attach(engine, parent, task, id, input, options)
      }
    }).pipe(Effect.onInterrupt(() => stopChild(engine, parent, id)))
  }) as any

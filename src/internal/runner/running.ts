/**
 * One task this runner executes now: its fiber, its lease token, its stop request, and the counters its heartbeat
 * compares. The only place that interrupts a task's fiber.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import type * as Progress from "../../Progress.js"
import type * as Task from "../../Task.js"
import type { TaskStoreError } from "../../TaskError.js"
import type * as TaskRecord from "../../TaskRecord.js"
import type { Family } from "./family.js"
import { WriteLock } from "./writeLock.js"

/**
 * Why a running task is being stopped: a pause or cancel (its reason is recorded), a release (a worker shutting down
 * hands it back as `pending`, from its last checkpoint, for another worker to claim at once), or the lease lost
 * (nothing may be written any more, so there is nothing to record).
 */
export type Stop =
  { readonly kind: "pause" | "cancel" | "release"; readonly reason: string } | { readonly kind: "lost" }

/**
 * The lease tokens the runners of this process hold now. A lease signed by this process whose token is not here was
 * abandoned (its run ended without clearing it): no runner here will renew it, so it is stale at once.
 */
const heldHere = new Set<string>()

/** Marks a lease token as held by a runner of this process, from before its claim is written until its end. */
export const hold = (token: string): void => {
  heldHere.add(token)
}

/** Lets a lease token go. */
export const release = (token: string): void => {
  heldHere.delete(token)
}

/** Whether a runner of this process holds the lease with this token. */
export const isHeldHere = (token: string): boolean => heldHere.has(token)

/** A pause asked by a person outranks a worker's release; cancel outranks both; losing the lease outranks all. */
const rank = { release: 0, pause: 1, cancel: 2, lost: 3 } as const

/** The end of a run as written: its metadata, and its encoded result or error. */
export interface RecordedEnd {
  readonly info: TaskRecord.TaskInfo
  readonly result: Uint8Array | undefined
  readonly error: Uint8Array | undefined
}

/** What a `Running` is made from. */
export type RunningOptions = Pick<
  Running,
  "id" | "task" | "token" | "leaseMs" | "interestMs" | "startedAt" | "tracker" | "info" | "byWorker"
>

/** A task running here, from its claim until its end is recorded. */
export class Running {
  readonly id: string
  readonly task: Task.Any
  /** The token of the lease this runner took; every write is fenced by it. */
  readonly token: string
  readonly leaseMs: number
  readonly interestMs: number | undefined
  readonly startedAt: number
  readonly tracker: Progress.Tracker
  /** Captured log lines not yet flushed. */
  readonly logs: Array<TaskRecord.NewLogLine> = []
  /** The last metadata this runner wrote or read: the revision its next compare-and-swap expects. */
  info: TaskRecord.TaskInfo
  /** The tracker's version and count as last written. */
  flushedVersion = 0
  flushedDone: number
  /** When the lease was last renewed, and when a caller here last polled the task. */
  renewedAt: number
  polledAt: number
  /** How long the last write of a heartbeat took, in ms: what a write of this record costs (`heartbeat.ts`). */
  beatWriteMs = 0
  /**
   * The store failure that ended this run, if one did (a checkpoint that failed and ended the task, or a heartbeat
   * that could not write): whoever awaits the task here gets it, with its path or server, rather than a bare status.
   */
  storeError: TaskStoreError | undefined = undefined
  /**
   * A look at the record, prompted by the store's changes, is under way or waiting its turn; another change came in
   * meanwhile; when the last look began.
   */
  looking = false
  lookAgain = false
  lastLookAt = Number.NEGATIVE_INFINITY
  /** The task's fiber has exited and its end is being recorded: its own writes are no news, and it beats no more. */
  ending = false
  /** When its last heartbeat began (its start, before the first); the beat under way, if one is. */
  lastBeatAt: number
  beat: Fiber.RuntimeFiber<void> | undefined = undefined
  /**
   * A worker claimed this run and counts it in its slots: a retry goes back to the workers, not to this runner. Known
   * from the claim on (a task that fails at once must not be retried beside the worker's next one).
   */
  readonly byWorker: boolean
  /**
   * The end this run recorded: the metadata the store returned and the bytes written with it. Whoever awaits the task
   * here reads its end from this (it is what a read of the store would give just after) instead of the store.
   */
  end: RecordedEnd | undefined = undefined
  /** The task's children, once it has any (`task.child`): their progress rolls up into its own. */
  family: Family | undefined = undefined
  private stopRequest: Stop | undefined = undefined
  private fiber: Fiber.RuntimeFiber<void> | undefined = undefined

  private constructor(
    options: RunningOptions,
    /** Serializes this task's writes: a checkpoint and a heartbeat never race for one revision. */
    readonly lock: WriteLock,
    /** Completed once the task's end is recorded (or could not be). */
    readonly done: Deferred.Deferred<void>
  ) {
    this.id = options.id
    this.task = options.task
    this.token = options.token
    this.leaseMs = options.leaseMs
    this.interestMs = options.interestMs
    this.startedAt = options.startedAt
    this.tracker = options.tracker
    this.info = options.info
    this.byWorker = options.byWorker
    this.flushedDone = options.tracker.done
    this.renewedAt = options.startedAt
    this.polledAt = options.startedAt
    this.lastBeatAt = options.startedAt
  }

  /** A running task with its lock and completion signal. */
  static make(options: RunningOptions): Running {
    // The signal is awaited by whoever waits for the task, not by the fiber that made it: it names no fiber.
    return new Running(options, new WriteLock(), Deferred.unsafeMake<void>(FiberId.none))
  }

  /** The stop requested so far, if any. */
  get stop(): Stop | undefined {
    return this.stopRequest
  }

  /** Whether this runner may still write the task. */
  get holdsLease(): boolean {
    return this.stopRequest?.kind !== "lost"
  }

  /**
   * Asks the task to stop. The strongest request wins; the first one interrupts the fiber, now or, if the fiber is
   * not attached yet, the moment it is.
   */
  requestStop(stop: Stop): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.stopRequest !== undefined && rank[this.stopRequest.kind] >= rank[stop.kind]) return Effect.void
      // Stryker disable next-line ConditionalExpression: interrupting a fiber twice is interrupting it once.
      const first = this.stopRequest === undefined
      this.stopRequest = stop
      return first && this.fiber !== undefined ? Fiber.interruptFork(this.fiber) : Effect.void
    })
  }

  /** Records that the lease is gone without interrupting anything (the fiber has already ended). */
  recordLost(): void {
    this.stopRequest = { kind: "lost" }
  }

  /** Gives the task its fiber; a stop requested before is delivered now. */
  attach(fiber: Fiber.RuntimeFiber<void>): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.fiber = fiber
      return this.stopRequest === undefined ? Effect.void : Fiber.interruptFork(fiber)
    })
  }

  /** Acts on a pause or cancel request another process left in the record. */
  notice(): Effect.Effect<void> {
    return Effect.suspend(() => {
      const request = this.info.interrupt
      if (request === undefined) return Effect.void
      return this.requestStop({
        kind: request,
        reason: request === "cancel" ? "cancelled on request" : "paused on request"
      })
    })
  }

  /** The task's metadata with its live progress. */
  live(): TaskRecord.TaskInfo {
    return { ...this.info, progress: this.tracker.snapshot() }
  }
}

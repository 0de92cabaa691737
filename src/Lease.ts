/**
 * Leases: the right to run a task until a deadline, held by one process. Every write the holder makes is checked
 * against the lease's token, so a runner that lost its lease cannot overwrite the one that took the task over.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import * as Holder from "./Holder.js"
import * as TaskId from "./TaskId.js"
import type * as TaskRecord from "./TaskRecord.js"

/**
 * The right to run a task until `expiresAt`; every write the holder makes is checked against `token`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Lease = Schema.Struct({
  token: Schema.String,
  holder: Holder.Holder,
  expiresAt: Schema.Number
})
/**
 * @since 0.1.0
 * @category models
 */
export type Lease = typeof Lease.Type

/**
 * A fresh lease for `holder` until `now + durationMs`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (holder: Holder.Holder, now: number, durationMs: number): Lease => ({
  token: TaskId.make(now),
  holder,
  expiresAt: now + durationMs
})

/**
 * True when a running task's lease can be taken over by `me`: expired, or held by a dead process on `me`'s host.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isStale = (info: TaskRecord.TaskInfo, now: number, me: Holder.Holder): boolean =>
  info.status === "running" &&
  (info.lease === undefined || info.lease.expiresAt <= now || !Holder.mayBeAlive(info.lease.holder, me))

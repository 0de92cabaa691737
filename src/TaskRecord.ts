/**
 * The stored shape of a task: metadata the system reads in the clear, and the task's own data as opaque bytes.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import * as Lease from "./Lease.js"
import * as Progress from "./Progress.js"

/**
 * The life cycle of a task. `running` with an expired lease is *stale*: its process died, and it is resumable.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Status = Schema.Literal("pending", "running", "paused", "completed", "failed", "cancelled")
/**
 * @since 0.1.0
 *
 * @category models
 */
export type Status = typeof Status.Type

/**
 * A request from anyone (another process, the CLI) to the task's owner.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Interrupt = Schema.Literal("pause", "cancel")
/**
 * @since 0.1.0
 *
 * @category models
 */
export type Interrupt = typeof Interrupt.Type

/**
 * Why a task failed, readable without the task's Schemas.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Failure = Schema.Struct({
  kind: Schema.Literal("error", "defect", "store"),
  message: Schema.String
})
/**
 * @since 0.1.0
 *
 * @category models
 */
export type Failure = typeof Failure.Type

/**
 * Everything about a task except its data: what `list` returns and what the runner tracks. Times are ms since epoch.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TaskInfo = Schema.Struct({
  id: Schema.String,
  kind: Schema.String,
  status: Status,
  revision: Schema.Number,
  progress: Progress.Progress,
  lease: Schema.optional(Lease.Lease),
  interrupt: Schema.optional(Interrupt),
  /** A short human explanation of the current status ("paused: nobody polled for 5m", "cancelled by pid 123"). */
  reason: Schema.optional(Schema.String),
  failure: Schema.optional(Failure),
  /** How many times the task was started or resumed. */
  attempts: Schema.Number,
  createdAt: Schema.Number,
  updatedAt: Schema.Number,
  startedAt: Schema.optional(Schema.Number),
  finishedAt: Schema.optional(Schema.Number),
  polledAt: Schema.optional(Schema.Number),
  /** Workers claim pending tasks of higher priority first (absent: 0). */
  priority: Schema.optional(Schema.Int),
  /** A pending task is not claimed before this time (`submit`'s `runAt`, or a retry's backoff). */
  runAt: Schema.optional(Schema.Number),
  /** The task that started this one as its child (`task.child`): the family is paused, cancelled and deleted together. */
  parent: Schema.optional(Schema.String),
  /** How many units of its parent's progress this child counts for (absent: its own total). */
  weight: Schema.optional(Schema.Number)
})
/**
 * @since 0.1.0
 *
 * @category models
 */
export type TaskInfo = typeof TaskInfo.Type

/**
 * The task's own data, encoded by its Schemas. The store never looks inside.
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskData {
  readonly input: Uint8Array
  readonly state?: Uint8Array | undefined
  readonly result?: Uint8Array | undefined
  readonly error?: Uint8Array | undefined
}

/**
 * A whole stored task.
 *
 * @since 0.1.0
 * @category models
 */
export type TaskRecord = TaskInfo & TaskData

/**
 * The byte fields of a record, in the order stores lay them out.
 *
 * @since 0.1.0
 * @category utils
 */
export const dataFields = ["input", "state", "result", "error"] as const

/**
 * Fields a write may change. A key that is present with the value `undefined` clears that field. What identifies a
 * task (its id, kind, input, creation time, parent and weight) is set once, by `create`.
 *
 * @since 0.1.0
 * @category models
 */
export type TaskPatch = {
  readonly [
    K in Exclude<
      keyof TaskRecord,
      "id" | "kind" | "revision" | "createdAt" | "input" | "parent" | "weight" | RequiredField
    >
  ]?: TaskRecord[K] | undefined
} & { readonly [K in RequiredField]?: TaskRecord[K] }

/** Fields every record has: a patch may change them, not clear them. */
type RequiredField = "status" | "progress" | "attempts" | "updatedAt"

/**
 * Applies `patch` to `record` (a present key with `undefined` removes the field) and sets the next revision.
 *
 * @since 0.1.0
 * @category utils
 */
export const applyPatch = <R extends TaskInfo>(record: R, patch: TaskPatch): R => {
  const changes = patch as Record<string, unknown>
  let clears = false
  for (const key in changes) {
    if (changes[key] === undefined) {
      clears = true
      break
    }
  }
  // `delete` would turn the copy into a slow dictionary object, and every later read of it (`info`, a store's
  // encoding) with it: a patch that clears a field (a task's end does) builds the record without that field instead.
  // Not `{ ...record, ...changes }`: V8 (Node 20) builds that slowly when the patch adds a field the record lacks, as
  // a checkpoint's state does to the metadata a store knows (`npx tsx bench/objects.ts`).
  const next: Record<string, unknown> = clears ? {} : Object.assign({}, record, changes)
  if (clears) {
    for (const key in record) {
      const value = Object.hasOwn(changes, key) ? changes[key] : (record as Record<string, unknown>)[key]
      if (value !== undefined) next[key] = value
    }
    for (const key in changes) {
      const value = changes[key]
      if (value !== undefined && !Object.hasOwn(record, key)) next[key] = value
    }
  }
  next.revision = record.revision + 1
  return next as R
}

/**
 * The metadata of a record, without its byte fields.
 *
 * @since 0.1.0
 * @category utils
 */
export const info = (record: TaskRecord): TaskInfo => {
  // A loop rather than object rest (`{ input, state, result, error, ...rest }`), which V8 (Node 20) makes slowly; every
  // write of every task passes here.
  const out: Record<string, unknown> = {}
  for (const key in record) {
    if (key !== "input" && key !== "state" && key !== "result" && key !== "error") {
      out[key] = (record as unknown as Record<string, unknown>)[key]
    }
  }
  return out as unknown as TaskInfo
}

/**
 * A page of `list` results; pass `next` as `after` to get the following page.
 *
 * @since 0.1.0
 * @category models
 */
export interface Page {
  readonly items: ReadonlyArray<TaskInfo>
  readonly next?: string | undefined
}

/**
 * Cuts a page from up to `limit + 1` candidates in id order: the extra one only tells that there is a next page.
 *
 * @since 0.1.0
 * @category utils
 */
export const cutPage = (candidates: ReadonlyArray<TaskInfo>, limit: number): Page => {
  const items = candidates.slice(0, limit)
  return candidates.length > limit ? { items, next: items[items.length - 1]!.id } : { items }
}

/**
 * What `list` selects: by status, kind and parent, `limit` records (default 50) after the id `after`, in id order.
 *
 * @since 0.1.0
 * @category models
 */
export interface ListFilter {
  readonly status?: Status | ReadonlyArray<Status> | undefined
  readonly kind?: string | undefined
  /** Only the children of this task. */
  readonly parent?: string | undefined
  readonly limit?: number | undefined
  readonly after?: string | undefined
}

/**
 * Normalizes a filter's status to a set, or undefined for any.
 *
 * @since 0.1.0
 * @category utils
 */
export const statusSet = (filter: ListFilter): ReadonlySet<Status> | undefined =>
  filter.status === undefined
    ? undefined
    : new Set(typeof filter.status === "string" ? [filter.status as Status] : (filter.status as ReadonlyArray<Status>))

/**
 * One captured log line. `seq` is assigned by the store, increasing per task.
 *
 * @since 0.1.0
 * @category schemas
 */
export const LogLine = Schema.Struct({
  seq: Schema.Number,
  time: Schema.Number,
  level: Schema.String,
  message: Schema.String
})
/**
 * @since 0.1.0
 *
 * @category models
 */
export type LogLine = typeof LogLine.Type

/**
 * A log line before the store numbered it.
 *
 * @since 0.1.0
 * @category models
 */
export type NewLogLine = Omit<LogLine, "seq">

/**
 * The storage service behind tasks: records with metadata in the clear and data as opaque bytes, every write a
 * compare-and-swap on `revision`. Backends are layers: `layerMemory` here, files, SQLite and Postgres beside it.
 *
 * @since 0.1.0
 */
import * as Arr from "effect/Array"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Order from "effect/Order"
import * as Stream from "effect/Stream"
import { IllegalArgumentException } from "effect/Cause"
import { InvalidTaskId, RevisionConflict, TaskAlreadyExists, TaskNotFound, type TaskStoreError } from "./TaskError.js"
import * as TaskId from "./TaskId.js"
import * as TaskRecord from "./TaskRecord.js"
import * as AtOnce from "./internal/atOnce.js"
import * as ChangeFeed from "./internal/changeFeed.js"
import type * as Lease from "./Lease.js"

/**
 * Options for `appendLogs`.
 *
 * @since 0.1.0
 * @category models
 */
export interface AppendLogsOptions {
  /** Keep at most this many of the task's most recent lines (default 1,000). */
  readonly keep?: number | undefined
}

/**
 * Options for `readLogs`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReadLogsOptions {
  /** Only lines with `seq` greater than this. */
  readonly after?: number | undefined
  /** At most this many lines (default: all kept). */
  readonly limit?: number | undefined
}

/**
 * The default number of log lines kept per task.
 *
 * @since 0.1.0
 * @category defaults
 */
export const defaultKeepLogs = 1000

/**
 * The task store service.
 *
 * @example
 * const info = yield* TaskStore.pipe(Effect.flatMap((store) => store.get("my-task")))
 * @since 0.1.0
 * @category tags
 */
export class TaskStore extends Context.Tag("@vectorlink/task/TaskStore")<
  TaskStore,
  {
    /** Creates a record with revision 1; fails if the id is taken. */
    readonly create: (
      record: Omit<TaskRecord.TaskRecord, "revision">
    ) => Effect.Effect<TaskRecord.TaskInfo, TaskAlreadyExists | InvalidTaskId | TaskStoreError>
    /** Reads a whole record, data included. */
    readonly get: (id: string) => Effect.Effect<TaskRecord.TaskRecord, TaskNotFound | InvalidTaskId | TaskStoreError>
    /** Reads a record's metadata only (cheaper where the data is large). */
    readonly getInfo: (id: string) => Effect.Effect<TaskRecord.TaskInfo, TaskNotFound | InvalidTaskId | TaskStoreError>
    /** Applies `patch` if the stored revision is `expected`, and returns the new metadata (revision + 1). */
    readonly update: (
      id: string,
      expected: number,
      patch: TaskRecord.TaskPatch
    ) => Effect.Effect<TaskRecord.TaskInfo, RevisionConflict | TaskNotFound | InvalidTaskId | TaskStoreError>
    /** Lists metadata by status, kind and parent, `limit` (default 50) at a time in id order. */
    readonly list: (filter?: TaskRecord.ListFilter) => Effect.Effect<TaskRecord.Page, TaskStoreError>
    /** Deletes a record and its logs; with `expected`, only if the revision still matches. */
    readonly delete: (
      id: string,
      expected?: number
    ) => Effect.Effect<void, RevisionConflict | TaskNotFound | InvalidTaskId | TaskStoreError>
    /** Appends log lines, numbering them, and drops the oldest beyond `keep`. */
    readonly appendLogs: (
      id: string,
      lines: ReadonlyArray<TaskRecord.NewLogLine>,
      options?: AppendLogsOptions
    ) => Effect.Effect<void, InvalidTaskId | TaskStoreError>
    /** Reads kept log lines in order. */
    readonly readLogs: (
      id: string,
      options?: ReadLogsOptions
    ) => Effect.Effect<ReadonlyArray<TaskRecord.LogLine>, InvalidTaskId | TaskStoreError>
    /**
     * While consumed, the ids of records that may have changed (written by anyone, this process included), as soon as
     * the store notices: a hint to look again, never a promise. `undefined` means "some record, which one is not
     * known". A store reports at least the writes another process must hear of at once — a request (pause, cancel)
     * stored, a task queued (created or handed back `pending`) — and may report more (the memory store every write,
     * SQLite any other connection's commit). A store that cannot notice changes gives a stream that ends at once;
     * readers then fall back to polling.
     */
    readonly changes: Stream.Stream<string | undefined>
    /**
     * Claims a `pending` task of one of `kinds` for a runner, in one atomic step: of those whose `runAt` has come
     * (at `now`), the one of highest `priority`, oldest first. Stores it `running` with `lease` (attempts counted, what
     * an earlier run left cleared) and returns the whole record as stored, or `undefined` when none is ready. Two
     * claimers never get the same task.
     */
    readonly claimNext: (query: ClaimQuery) => Effect.Effect<TaskRecord.TaskRecord | undefined, TaskStoreError>
  }
>() {}

/**
 * What `claimNext` asks for.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClaimQuery {
  /** The kinds to claim from. */
  readonly kinds: ReadonlyArray<string>
  /** The lease the claimed task is stored with. */
  readonly lease: Lease.Lease
  /** The time of the claim. */
  readonly now: number
}

/**
 * The patch that claims a stored task for a new run: `running` under `lease`, one more attempt, and what an earlier
 * run left (a request, a reason, a failure and its error, an end time, a retry's run-after time) cleared.
 *
 * @since 0.1.0
 * @category utils
 */
export const claimPatch = (record: TaskRecord.TaskInfo, lease: Lease.Lease, now: number): TaskRecord.TaskPatch => ({
  status: "running",
  lease,
  interrupt: undefined,
  reason: undefined,
  failure: undefined,
  error: undefined,
  finishedAt: undefined,
  runAt: undefined,
  attempts: record.attempts + 1,
  startedAt: record.startedAt ?? now,
  updatedAt: now
})

/**
 * The service's shape.
 *
 * @since 0.1.0
 * @category models
 */
export type Service = Context.Tag.Service<TaskStore>

/**
 * What `list` asks a driver for: records of these statuses (any when `undefined`) and kind, with ids after `after`,
 * in id order, at most `take` of them (one more than the page, to tell whether there is a next one).
 *
 * @since 0.1.0
 * @category models
 */
export interface ListQuery {
  readonly statuses: ReadonlyArray<TaskRecord.Status> | undefined
  readonly kind: string | undefined
  /** Only children of this task (`undefined`: any task). */
  readonly parent: string | undefined
  readonly after: string | undefined
  readonly take: number
}

/**
 * What a backend supplies: the primitives only it can do. `make` turns a driver into the service; it validates ids
 * (a driver only sees valid ones), applies defaults, cuts pages, and enforces the patch rules, so every backend
 * behaves the same there.
 *
 * @since 0.1.0
 * @category models
 */
export interface Driver {
  /** Stores a new record (its revision is 1) and drops any log lines left under its id; fails if the id is taken. */
  readonly create: (record: TaskRecord.TaskRecord) => Effect.Effect<void, TaskAlreadyExists | TaskStoreError>
  readonly get: (id: string) => Effect.Effect<TaskRecord.TaskRecord, TaskNotFound | TaskStoreError>
  readonly getInfo: (id: string) => Effect.Effect<TaskRecord.TaskInfo, TaskNotFound | TaskStoreError>
  /** Compare-and-swap: applies `patch` (as `TaskRecord.applyPatch` does) only if the revision is still `expected`. */
  readonly update: (
    id: string,
    expected: number,
    patch: TaskRecord.TaskPatch
  ) => Effect.Effect<TaskRecord.TaskInfo, RevisionConflict | TaskNotFound | TaskStoreError>
  readonly list: (query: ListQuery) => Effect.Effect<ReadonlyArray<TaskRecord.TaskInfo>, TaskStoreError>
  /** Deletes a record and its logs; with `expected`, only if the revision still matches. */
  readonly delete: (
    id: string,
    expected: number | undefined
  ) => Effect.Effect<void, RevisionConflict | TaskNotFound | TaskStoreError>
  /** Appends lines (never none), numbering them on from the last `seq`, and keeps only the newest `keep`. */
  readonly appendLogs: (
    id: string,
    lines: ReadonlyArray<TaskRecord.NewLogLine>,
    keep: number
  ) => Effect.Effect<void, TaskStoreError>
  /** Kept lines with `seq > after`, in order, at most `limit` (all when `undefined`). */
  readonly readLogs: (
    id: string,
    after: number,
    limit: number | undefined
  ) => Effect.Effect<ReadonlyArray<TaskRecord.LogLine>, TaskStoreError>
  /** The ids of records that may have changed, while consumed (see `TaskStore.changes`); none when absent. */
  readonly changes?: Stream.Stream<string | undefined> | undefined
  /**
   * `TaskStore.claimNext` in one statement, where the backend has one (Postgres: `FOR UPDATE SKIP LOCKED`). Without
   * it, claims are compare-and-swaps on a page of pending records, tried in random order.
   */
  readonly claimNext?:
    ((query: ClaimQuery) => Effect.Effect<TaskRecord.TaskRecord | undefined, TaskStoreError>) | undefined
}

/** The default and the floor of a `list` page. */
const defaultPageSize = 50

/** Fields no patch may carry: what identifies a task is set once, by `create`. */
const fixedFields: ReadonlySet<string> = new Set(["id", "kind", "revision", "createdAt", "input", "parent", "weight"])
/** Fields every record has: a patch may change them, not clear them. */
const requiredFields: ReadonlySet<string> = new Set(["status", "progress", "attempts", "updatedAt"])

/** Why `patch` breaks the patch rules, or `undefined` when it keeps them. */
const patchViolation = (patch: TaskRecord.TaskPatch): string | undefined => {
  // Over the patch's own few keys rather than every rule's field: this runs at every write of every task.
  for (const key in patch) {
    if (fixedFields.has(key)) return `"${key}" is set once, by create, and cannot be patched`
    if (requiredFields.has(key) && (patch as Record<string, unknown>)[key] === undefined) {
      return `"${key}" can be changed but not cleared`
    }
  }
  return undefined
}

/**
 * The store service over a driver. Ids are validated here, once, for every backend; a patch that breaks the patch
 * rules (a fixed field, a required field cleared) is a defect: the types do not allow it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (driver: Driver): Service => {
  // Checked when the effect runs, in one step: every read and write of every task passes here.
  const withId = <A, E>(id: string, f: (id: string) => Effect.Effect<A, E>): Effect.Effect<A, E | InvalidTaskId> =>
    Effect.suspend((): Effect.Effect<A, E | InvalidTaskId> => {
      const reason = TaskId.invalidReason(id)
      return reason === undefined ? f(id) : Effect.fail(new InvalidTaskId({ id, reason }))
    })
  return {
    create: (record) =>
      withId(record.id, () => {
        // Not `{ ...record, revision: 1 }`: V8 builds a literal that starts with a spread slowly (0.8 µs against 0.2).
        const stored = Object.assign({}, record, { revision: 1 }) as TaskRecord.TaskRecord
        return Effect.as(driver.create(stored), TaskRecord.info(stored))
      }),
    get: (id) => withId(id, driver.get),
    getInfo: (id) => withId(id, driver.getInfo),
    update: (id, expected, patch) =>
      withId(id, () => {
        const violation = patchViolation(patch)
        return violation === undefined
          ? driver.update(id, expected, patch)
          : Effect.die(new IllegalArgumentException(`TaskStore.update of task ${JSON.stringify(id)}: ${violation}`))
      }),
    list: (filter = {}) => {
      const limit = Math.max(1, filter.limit ?? defaultPageSize)
      const statuses = TaskRecord.statusSet(filter)
      return Effect.map(
        driver.list({
          statuses: statuses === undefined ? undefined : Array.from(statuses),
          kind: filter.kind,
          parent: filter.parent,
          after: filter.after,
          take: limit + 1
        }),
        (infos) => TaskRecord.cutPage(infos, limit)
      )
    },
    delete: (id, expected) => withId(id, () => driver.delete(id, expected)),
    appendLogs: (id, lines, options) =>
      // Stryker disable next-line ConditionalExpression: appending no lines changes nothing; this only saves the call.
      withId(id, () =>
        lines.length === 0 ? Effect.void : driver.appendLogs(id, lines, options?.keep ?? defaultKeepLogs)
      ),
    readLogs: (id, options) => withId(id, () => driver.readLogs(id, options?.after ?? 0, options?.limit)),
    changes: driver.changes ?? Stream.empty,
    claimNext: (query) =>
      query.kinds.length === 0 ? Effect.succeed(undefined) : (driver.claimNext ?? claimByCompareAndSwap(driver))(query)
  }
}

/** How many pending records a compare-and-swap claim reads at a time. */
const claimPage = 32

/**
 * `claimNext` from the primitives every driver has: pages of pending records in id order (UUIDv7 ids are in order of
 * creation), each page's ready records of the wanted kinds tried by priority, then age, each claimed by a
 * compare-and-swap from the revision just read. A claimer that loses a race moves on to another record. (Priorities
 * order the tasks of a page, not of the whole queue: the SQL stores order the whole queue.)
 */
const claimByCompareAndSwap =
  (driver: Driver) =>
  (query: ClaimQuery): Effect.Effect<TaskRecord.TaskRecord | undefined, TaskStoreError> =>
    Effect.gen(function* () {
      const kinds = new Set(query.kinds)
      let after: string | undefined = undefined
      while (true) {
        const infos: ReadonlyArray<TaskRecord.TaskInfo> = yield* driver.list({
          statuses: ["pending"],
          kind: query.kinds.length === 1 ? query.kinds[0] : undefined,
          parent: undefined,
          after,
          take: claimPage
        })
        const ready = (i: TaskRecord.TaskInfo) => (i.runAt ?? 0) <= query.now
        // As the SQL stores order the queue: higher priorities first, then the oldest (a claimer that loses the race
        // for one moves on to the next).
        const candidates = infos
          .filter((i) => kinds.has(i.kind) && ready(i))
          .sort((a, b) => (b.priority ?? 0) - (a.priority ?? 0) || a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1))
        for (const info of candidates) {
          const record = yield* Effect.catchTag(driver.get(info.id), "TaskNotFound", () => Effect.succeed(undefined))
          if (record?.status !== "pending" || !ready(record)) continue
          const patch = claimPatch(record, query.lease, query.now)
          const claimed = yield* Effect.either(driver.update(record.id, record.revision, patch))
          if (claimed._tag === "Right") return { ...TaskRecord.applyPatch(record, patch), ...claimed.right }
          if (claimed.left._tag === "TaskStoreError") return yield* claimed.left
        }
        if (infos.length < claimPage) return undefined
        after = infos[infos.length - 1]!.id
      }
    })

/** Ids in code-unit order, as the SQL stores (`COLLATE "C"`) and the file store sort them. */
const byId = Order.mapInput(Order.string, (info: TaskRecord.TaskInfo) => info.id)

/**
 * The records of `infos` that `query` selects, in id order, at most `query.take`: for drivers that filter in memory.
 *
 * @since 0.1.0
 * @category utils
 */
export const select = (infos: Iterable<TaskRecord.TaskInfo>, query: ListQuery): Array<TaskRecord.TaskInfo> => {
  const selected: Array<TaskRecord.TaskInfo> = []
  for (const info of infos) if (matches(info, query)) selected.push(info)
  return Arr.sort(selected, byId).slice(0, query.take)
}

/**
 * Whether `query` selects `info` (paging aside from `after`).
 *
 * @since 0.1.0
 * @category utils
 */
export const matches = (info: TaskRecord.TaskInfo, query: ListQuery): boolean =>
  (query.after === undefined || info.id > query.after) &&
  (query.statuses === undefined || query.statuses.includes(info.status)) &&
  (query.kind === undefined || info.kind === query.kind) &&
  (query.parent === undefined || info.parent === query.parent)

/**
 * Builds an in-memory store. Records live as long as the layer; byte fields are kept by reference, never copied.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<Service> = Effect.sync(() => {
  const records = new Map<string, TaskRecord.TaskRecord>()
  const logs = new Map<string, { seq: number; lines: Array<TaskRecord.LogLine> }>()
  const listeners = new Set<(id: string) => void>()
  const changed = (id: string) => {
    for (const listener of listeners) listener(id)
  }
  // Each check-and-write runs inside one synchronous callback, so fibers cannot interleave inside a CAS.
  const current = (id: string) =>
    Effect.suspend(() => {
      const record = records.get(id)
      return record === undefined ? Effect.fail(new TaskNotFound({ id })) : Effect.succeed(record)
    })
  const expect = (id: string, record: TaskRecord.TaskRecord, expected: number | undefined) =>
    expected === undefined || record.revision === expected
      ? Effect.void
      : Effect.fail(new RevisionConflict({ id, expected, found: record.revision }))
  const write = (record: TaskRecord.TaskRecord, patch: TaskRecord.TaskPatch) => {
    const next = TaskRecord.applyPatch(record, patch)
    records.set(record.id, next)
    changed(record.id)
    return TaskRecord.info(next)
  }
  const service = make({
    create: (record) =>
      Effect.suspend(() => {
        if (records.has(record.id)) return Effect.fail(new TaskAlreadyExists({ id: record.id }))
        records.set(record.id, record)
        // Lines left under this id (by a deleted task, or appended before it existed) must not show in the new one.
        logs.delete(record.id)
        changed(record.id)
        return Effect.void
      }),
    get: current,
    getInfo: (id) => Effect.map(current(id), TaskRecord.info),
    update: (id, expected, patch) =>
      Effect.flatMap(current(id), (record) =>
        Effect.zipRight(
          expect(id, record, expected),
          Effect.sync(() => write(record, patch))
        )
      ),
    list: (query) => Effect.sync(() => select(Array.from(records.values(), TaskRecord.info), query)),
    delete: (id, expected) =>
      Effect.flatMap(current(id), (record) =>
        Effect.zipRight(
          expect(id, record, expected),
          Effect.sync(() => {
            records.delete(id)
            logs.delete(id)
          })
        )
      ),
    appendLogs: (id, lines, keep) =>
      Effect.sync(() => {
        let log = logs.get(id)
        if (log === undefined) {
          log = { seq: 0, lines: [] }
          logs.set(id, log)
        }
        for (const line of lines) log.lines.push({ ...line, seq: ++log.seq })
        log.lines.splice(0, Math.max(0, log.lines.length - keep))
      }),
    readLogs: (id, after, limit) =>
      Effect.sync(() => {
        const selected = (logs.get(id)?.lines ?? []).filter((l) => l.seq > after)
        return limit === undefined ? selected : selected.slice(0, limit)
      }),
    changes: ChangeFeed.fromSource(({ changed }) => {
      listeners.add(changed)
      return () => listeners.delete(changed)
    })
  })
  return AtOnce.registerWrite(service, (id, expected, patch) => {
    const record = records.get(id)
    return record?.revision === expected ? write(record, patch) : undefined
  })
})

/**
 * A store in memory: for tests, examples and tasks that need progress and pausing but not durability.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<TaskStore> = Layer.effect(TaskStore, makeMemory)

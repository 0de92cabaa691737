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
import * as TaskId from "./TaskId.js"
import type { InvalidTaskId } from "./TaskError.js"
import { RevisionConflict, TaskAlreadyExists, TaskNotFound, type TaskStoreError } from "./TaskError.js"
import * as TaskRecord from "./TaskRecord.js"

/** Options for `appendLogs`. */
export interface AppendLogsOptions {
  /** Keep at most this many of the task's most recent lines (default 1,000). */
  readonly keep?: number | undefined
}

/** Options for `readLogs`. */
export interface ReadLogsOptions {
  /** Only lines with `seq` greater than this. */
  readonly after?: number | undefined
  /** At most this many lines (default: all kept). */
  readonly limit?: number | undefined
}

/** The default number of log lines kept per task. */
export const defaultKeepLogs = 1000

/**
 * The task store service.
 *
 * @example
 * const info = yield* TaskStore.pipe(Effect.flatMap((store) => store.get("my-task")))
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
    /** Lists metadata by status and kind, `limit` (default 50) at a time in id order. */
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
  }
>() {}

/** The service's shape, for backends that build one. */
export type Service = Context.Tag.Service<TaskStore>

/** Ids in code-unit order, as the SQL stores (`COLLATE "C"`) and the file store sort them. */
const byId = Order.mapInput(Order.string, (info: TaskRecord.TaskInfo) => info.id)

/** Sorts ids and cuts one page out of `infos` (already filtered). Shared by backends that filter in memory. */
export const page = (infos: Iterable<TaskRecord.TaskInfo>, filter: TaskRecord.ListFilter): TaskRecord.Page => {
  const limit = Math.max(1, filter.limit ?? 50)
  const after = filter.after
  const statuses = TaskRecord.statusSet(filter)
  const selected: Array<TaskRecord.TaskInfo> = []
  for (const info of infos) {
    if ((after === undefined || info.id > after) && TaskRecord.matches(info, filter, statuses)) selected.push(info)
  }
  return TaskRecord.cutPage(Arr.sort(selected, byId), limit)
}

interface MemoryState {
  readonly records: Map<string, TaskRecord.TaskRecord>
  readonly logs: Map<string, { seq: number; lines: Array<TaskRecord.LogLine> }>
}

/** Builds an in-memory store. Records live as long as the layer; byte fields are kept by reference, never copied. */
export const makeMemory: Effect.Effect<Service> = Effect.gen(function* () {
  const state: MemoryState = yield* Effect.sync(() => ({ records: new Map(), logs: new Map() }))
  // Each check-and-write runs inside one synchronous callback, so fibers cannot interleave inside a CAS.
  const withState = <A, E = never>(f: (state: MemoryState) => Effect.Effect<A, E>) => Effect.suspend(() => f(state))

  const get = (id: string) =>
    Effect.flatMap(TaskId.validate(id), () =>
      withState<TaskRecord.TaskRecord, TaskNotFound>((s) => {
        const record = s.records.get(id)
        return record === undefined ? Effect.fail(new TaskNotFound({ id })) : Effect.succeed(record)
      })
    )

  const service: Service = {
    create: (record) =>
      Effect.flatMap(TaskId.validate(record.id), () =>
        withState<TaskRecord.TaskInfo, TaskAlreadyExists>((s) => {
          if (s.records.has(record.id)) return Effect.fail(new TaskAlreadyExists({ id: record.id }))
          const stored = { ...record, revision: 1 } as TaskRecord.TaskRecord
          s.records.set(record.id, stored)
          // Lines left under this id (by a deleted task, or appended before it existed) must not show in the new one.
          s.logs.delete(record.id)
          return Effect.succeed(TaskRecord.info(stored))
        })
      ),
    get,
    getInfo: (id) => Effect.map(get(id), TaskRecord.info),
    update: (id, expected, patch) =>
      Effect.flatMap(TaskId.validate(id), () =>
        withState<TaskRecord.TaskInfo, TaskNotFound | RevisionConflict>((s) => {
          const current = s.records.get(id)
          if (current === undefined) return Effect.fail(new TaskNotFound({ id }))
          if (current.revision !== expected) {
            return Effect.fail(new RevisionConflict({ id, expected, found: current.revision }))
          }
          const next = TaskRecord.applyPatch(current, patch)
          s.records.set(id, next)
          return Effect.succeed(TaskRecord.info(next))
        })
      ),
    list: (filter = {}) =>
      withState((s) => Effect.succeed(page(Array.from(s.records.values(), TaskRecord.info), filter))),
    delete: (id, expected) =>
      Effect.flatMap(TaskId.validate(id), () =>
        withState<void, TaskNotFound | RevisionConflict>((s) => {
          const current = s.records.get(id)
          if (current === undefined) return Effect.fail(new TaskNotFound({ id }))
          if (expected !== undefined && current.revision !== expected) {
            return Effect.fail(new RevisionConflict({ id, expected, found: current.revision }))
          }
          s.records.delete(id)
          s.logs.delete(id)
          return Effect.void
        })
      ),
    appendLogs: (id, lines, options) =>
      Effect.flatMap(TaskId.validate(id), () =>
        withState((s) => {
          const keep = options?.keep ?? defaultKeepLogs
          let log = s.logs.get(id)
          if (log === undefined) {
            log = { seq: 0, lines: [] }
            s.logs.set(id, log)
          }
          for (const line of lines) log.lines.push({ ...line, seq: ++log.seq })
          log.lines.splice(0, Math.max(0, log.lines.length - keep))
          return Effect.void
        })
      ),
    readLogs: (id, options) =>
      Effect.flatMap(TaskId.validate(id), () =>
        withState((s) => {
          const lines = s.logs.get(id)?.lines ?? []
          const after = options?.after
          const selected = after === undefined ? lines.slice() : lines.filter((l) => l.seq > after)
          return Effect.succeed(options?.limit === undefined ? selected : selected.slice(0, options.limit))
        })
      )
  }
  return service
})

/** A store in memory: for tests, examples and tasks that need progress and pausing but not durability. */
export const layerMemory: Layer.Layer<TaskStore> = Layer.effect(TaskStore, makeMemory)

/**
 * Every error a user of @vectorlink/task can meet, each with a message that says what happened and what to do.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/** A value as shown in a message: at most 80 characters, and how long it was when cut. */
const cut = (text: string): string => (text.length <= 80 ? text : `${text.slice(0, 64)}… (${text.length} characters)`)

/**
 * The task id is not acceptable: empty, too long, or containing path or control characters.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidTaskId extends Schema.TaggedError<InvalidTaskId>()("InvalidTaskId", {
  id: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Invalid task id ${JSON.stringify(cut(this.id))}: ${this.reason}. Use letters, digits, '-', '_', '.' or ':' (1-200 bytes), or omit the id to get a generated one.`
  }
}

/**
 * No record exists under this id.
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskNotFound extends Schema.TaggedError<TaskNotFound>()("TaskNotFound", {
  id: Schema.String
}) {
  override get message(): string {
    return `No task with id ${JSON.stringify(this.id)} in this store. Check the id and the store (list tasks with \`vltask list\`).`
  }
}

/**
 * `create` was called with an id that is already taken.
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskAlreadyExists extends Schema.TaggedError<TaskAlreadyExists>()("TaskAlreadyExists", {
  id: Schema.String
}) {
  override get message(): string {
    return `A task with id ${JSON.stringify(this.id)} already exists. Resume it, forget it first, or choose another id.`
  }
}

/**
 * A compare-and-swap write found another revision than it expected: someone else wrote the record first.
 *
 * @since 0.1.0
 * @category errors
 */
export class RevisionConflict extends Schema.TaggedError<RevisionConflict>()("RevisionConflict", {
  id: Schema.String,
  expected: Schema.Number,
  found: Schema.Number
}) {
  override get message(): string {
    return `Task ${JSON.stringify(this.id)} was changed concurrently (expected revision ${this.expected}, found ${this.found}). Re-read the record and retry.`
  }
}

/**
 * The record's kind is not one of the task definitions this runner was built with.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownTaskKind extends Schema.TaggedError<UnknownTaskKind>()("UnknownTaskKind", {
  id: Schema.optional(Schema.String),
  kind: Schema.String,
  known: Schema.Array(Schema.String)
}) {
  override get message(): string {
    const where = this.id === undefined ? "" : ` (task ${JSON.stringify(this.id)})`
    const known = this.known.length === 0 ? "none" : this.known.map((k) => JSON.stringify(k)).join(", ")
    return `Unknown task kind ${JSON.stringify(this.kind)}${where}. Registered kinds: ${known}. Add its definition to the runner's tasks (TaskRunner.layer({ tasks }), or vltask.config.ts for the CLI).`
  }
}

/**
 * The record belongs to another kind than the task definition it was accessed with.
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskKindMismatch extends Schema.TaggedError<TaskKindMismatch>()("TaskKindMismatch", {
  id: Schema.String,
  expected: Schema.String,
  found: Schema.String
}) {
  override get message(): string {
    return `Task ${JSON.stringify(this.id)} is a ${JSON.stringify(this.found)} task, not ${JSON.stringify(this.expected)}. Use the matching task definition.`
  }
}

/**
 * `run` with the id of an existing task and another input than the one it was started with: running it would ignore
 * the new input, so it is refused.
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskInputMismatch extends Schema.TaggedError<TaskInputMismatch>()("TaskInputMismatch", {
  id: Schema.String,
  stored: Schema.String,
  given: Schema.String
}) {
  override get message(): string {
    return `Task ${JSON.stringify(this.id)} exists with another input (stored: ${this.stored}; given: ${this.given}). Run it with the same input (or none) to resume it, or use another id for the new input.`
  }
}

/**
 * The task cannot be resumed in its current status.
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskNotResumable extends Schema.TaggedError<TaskNotResumable>()("TaskNotResumable", {
  id: Schema.String,
  status: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Task ${JSON.stringify(this.id)} cannot be resumed: ${this.reason}.`
  }
}

/**
 * The operation needs the task stopped, but a live runner holds it.
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskStillRunning extends Schema.TaggedError<TaskStillRunning>()("TaskStillRunning", {
  id: Schema.String,
  holder: Schema.String
}) {
  override get message(): string {
    return `Task ${JSON.stringify(this.id)} is running (${this.holder}). Pause or cancel it first.`
  }
}

/**
 * The result was asked for, but the task has not completed (yet).
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskNotCompleted extends Schema.TaggedError<TaskNotCompleted>()("TaskNotCompleted", {
  id: Schema.String,
  status: Schema.String
}) {
  override get message(): string {
    return `Task ${JSON.stringify(this.id)} has no result: it is ${this.status}. Await it, or resume it if it is paused.`
  }
}

/**
 * The awaited task was paused (or its runner died) before it finished.
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskPaused extends Schema.TaggedError<TaskPaused>()("TaskPaused", {
  id: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Task ${JSON.stringify(this.id)} stopped before finishing (${this.reason}). Resume it to continue from its last checkpoint.`
  }
}

/**
 * The awaited task was cancelled. Cancelled tasks are final.
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskCancelled extends Schema.TaggedError<TaskCancelled>()("TaskCancelled", {
  id: Schema.String
}) {
  override get message(): string {
    return `Task ${JSON.stringify(this.id)} was cancelled; cancelled tasks are final. Start a new task to run the work again.`
  }
}

/**
 * The task died with a defect (a bug or an unexpected exception), not a typed error.
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskDefect extends Schema.TaggedError<TaskDefect>()("TaskDefect", {
  id: Schema.String,
  description: Schema.String
}) {
  override get message(): string {
    return `Task ${JSON.stringify(this.id)} died: ${this.description}. Fix the cause, then resume it to continue from its last checkpoint.`
  }
}

/**
 * Stored bytes (input, state, result or error) no longer decode with the task definition's Schema.
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskDecodeError extends Schema.TaggedError<TaskDecodeError>()("TaskDecodeError", {
  id: Schema.String,
  kind: Schema.String,
  field: Schema.Literal("input", "state", "result", "error"),
  found: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `The stored ${this.field} of task ${JSON.stringify(this.id)} (kind ${JSON.stringify(this.kind)}) does not decode with the current Schema: ${this.detail}. Found: ${this.found}. Nothing was changed; restore a compatible Schema or add a transformation from the old shape.`
  }
}

/**
 * A value could not be encoded with the task definition's Schema (a refinement failed, for example).
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskEncodeError extends Schema.TaggedError<TaskEncodeError>()("TaskEncodeError", {
  id: Schema.String,
  kind: Schema.String,
  field: Schema.Literal("input", "state", "result", "error"),
  detail: Schema.String
}) {
  override get message(): string {
    return `The ${this.field} of task ${JSON.stringify(this.id)} (kind ${JSON.stringify(this.kind)}) does not encode with its Schema: ${this.detail}.`
  }
}

/**
 * This runner's lease on the task was taken over by another runner; it must stop and write nothing more.
 *
 * @since 0.1.0
 * @category errors
 */
export class LeaseLost extends Schema.TaggedError<LeaseLost>()("LeaseLost", {
  id: Schema.String,
  holder: Schema.optional(Schema.String)
}) {
  override get message(): string {
    const by = this.holder === undefined ? "" : ` by ${this.holder}`
    return `This runner lost its lease on task ${JSON.stringify(this.id)}${by}; its writes are rejected and it has stopped the task here. If this happens without a crash, the event loop was blocked longer than the lease: make CPU work yield, or raise leaseDuration.`
  }
}

/**
 * The storage backend failed: I/O error, corrupt record, unreachable database.
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskStoreError extends Schema.TaggedError<TaskStoreError>()("TaskStoreError", {
  reason: Schema.Literal("Io", "Corrupt", "Unavailable", "Unknown"),
  operation: Schema.String,
  id: Schema.optional(Schema.String),
  path: Schema.optional(Schema.String),
  errno: Schema.optional(Schema.String),
  detail: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  override get message(): string {
    const what = [
      this.id === undefined ? undefined : `task ${JSON.stringify(this.id)}`,
      this.path === undefined ? undefined : `file ${this.path}`,
      this.errno === undefined ? undefined : this.errno
    ]
      .filter((s) => s !== undefined)
      .join(", ")
    const hint =
      this.reason === "Corrupt"
        ? "The record is damaged; nothing was overwritten. Restore it from a backup or forget the task."
        : this.reason === "Unavailable"
          ? "Check that the store is reachable and retry."
          : this.operation === "open"
            ? "Check that the store's location is right and usable (permissions, space, the kind of file)."
            : this.errno === "ENOSPC"
              ? "The disk is full; free space and retry. The last checkpoint is intact."
              : "Check the storage (permissions, space, health) and retry. The last checkpoint is intact."
    return `Task store ${this.operation} failed (${this.reason}${what === "" ? "" : `; ${what}`}): ${this.detail}. ${hint}`
  }
}

/**
 * A child task's key (`task.child(…, { key })`) cannot name a child.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidChildKey extends Schema.TaggedError<InvalidChildKey>()("InvalidChildKey", {
  parent: Schema.String,
  key: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Invalid key ${JSON.stringify(cut(this.key))} for a child of task ${this.parent}: ${this.reason}. Use letters, digits, '-', '_', ':', '@', '+' or '=' (no '.'), or omit the key to derive one from the child's kind and input.`
  }
}

/**
 * What `task.child` can fail with besides the child's own typed error: the child was cancelled or died, it cannot be
 * started or re-attached (a bad key, an id taken by another task, another input than it was started with), its
 * result cannot be read, or the store failed.
 *
 * @since 0.1.0
 * @category models
 */
export type ChildError =
  | InvalidChildKey
  | InvalidTaskId
  | TaskAlreadyExists
  | TaskKindMismatch
  | TaskInputMismatch
  | TaskEncodeError
  | TaskDecodeError
  | TaskCancelled
  | TaskDefect
  | TaskNotFound
  | TaskStoreError

/**
 * The errors a `checkpoint` can fail with. Task code may catch them (to retry on a full disk, say) or let them end the run.
 *
 * @since 0.1.0
 * @category models
 */
export type CheckpointError = TaskEncodeError | TaskStoreError | LeaseLost

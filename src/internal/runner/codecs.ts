/** A task's Schemas applied to stored bytes, with errors that name the task, its kind and the field. */
import * as Effect from "effect/Effect"
import { TaskDecodeError, TaskEncodeError } from "../../TaskError.js"
import type * as TaskRecord from "../../TaskRecord.js"

/** The byte fields of a record. */
export type Field = "input" | "state" | "result" | "error"

/** Decodes one byte field of `record`. */
export const decodeField = <A>(
  codec: { readonly decode: (bytes: Uint8Array) => Effect.Effect<A, { detail: string; found: string }> },
  record: TaskRecord.TaskInfo,
  field: Field,
  bytes: Uint8Array
) =>
  Effect.mapError(
    codec.decode(bytes),
    (e) => new TaskDecodeError({ id: record.id, kind: record.kind, field, found: e.found, detail: e.detail })
  )

/** Encodes one value for a byte field of task `id`. */
export const encodeField = <A>(
  codec: { readonly encode: (value: A) => Effect.Effect<Uint8Array, string> },
  id: string,
  kind: string,
  field: Field,
  value: A
) => Effect.mapError(codec.encode(value), (detail) => new TaskEncodeError({ id, kind, field, detail }))

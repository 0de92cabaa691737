/**
 * A task's Schemas applied to stored bytes, with errors that name the task, its kind and the field. Where the codec
 * encodes and decodes at once (`AtOnce`), the effect returned has already run: an `Exit`, which a generator yields
 * without a step of the fiber.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import { TaskDecodeError, TaskEncodeError } from "../../TaskError.js"
import type * as TaskRecord from "../../TaskRecord.js"
import * as AtOnce from "../atOnce.js"

/** The byte fields of a record. */
export type Field = "input" | "state" | "result" | "error"

/** Decodes one byte field of the task `record` (its id and kind name the task in an error). */
export const decodeField = <A>(
  codec: { readonly decode: (bytes: Uint8Array) => Effect.Effect<A, { detail: string; found: string }> },
  record: Pick<TaskRecord.TaskInfo, "id" | "kind">,
  field: Field,
  bytes: Uint8Array
): Effect.Effect<A, TaskDecodeError> => {
  const decodeError = (e: { detail: string; found: string }) =>
    new TaskDecodeError({ id: record.id, kind: record.kind, field, found: e.found, detail: e.detail })
  const now = AtOnce.codecOf<A>(codec)
  if (now === undefined) return Effect.mapError(codec.decode(bytes), decodeError)
  const decoded = now.decode(bytes)
  return Either.isRight(decoded) ? Exit.succeed(decoded.right) : Exit.fail(decodeError(decoded.left))
}

/** Encodes one value for a byte field of task `id`. */
export const encodeField = <A>(
  codec: { readonly encode: (value: A) => Effect.Effect<Uint8Array, string> },
  id: string,
  kind: string,
  field: Field,
  value: A
): Effect.Effect<Uint8Array, TaskEncodeError> => {
  const encodeError = (detail: string) => new TaskEncodeError({ id, kind, field, detail })
  const now = AtOnce.codecOf<A>(codec)
  if (now === undefined) return Effect.mapError(codec.encode(value), encodeError)
  const encoded = now.encode(value)
  return Either.isRight(encoded) ? Exit.succeed(encoded.right) : Exit.fail(encodeError(encoded.left))
}

/** The effect's failure or success as an `Either`, like `Effect.either`: at once (an `Exit`) when it has already run. */
export const either = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<Either.Either<A, E>> => {
  if (Exit.isExit(effect)) {
    const exit = effect as Exit.Exit<A, E>
    if (Exit.isSuccess(exit)) return Exit.succeed(Either.right(exit.value))
    if (exit.cause._tag === "Fail") return Exit.succeed(Either.left(exit.cause.error))
  }
  return Effect.either(effect)
}

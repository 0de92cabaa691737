/**
 * What can be done at once, in plain synchronous code: a codec's encoding and decoding, a store's write of one record
 * (or, on a connection that answers later, its issue). The codecs and stores that can register it here; the runner's
 * runs, checkpoints and ends use it where it is registered, and take the effect path where it is not (a codec or
 * store of the user's, a store wrapped in another layer) or where it declines. A checkpoint then costs a few steps of
 * the fiber rather than the dozens of its effect path, and on a disk that counts: a write gets slower with the work
 * done since the last one.
 */
import type * as Either from "effect/Either"
import type { TaskStoreError } from "../TaskError.js"
import type * as TaskRecord from "../TaskRecord.js"

/**
 * A codec's encoding and decoding made now: what its effects would give, as `Either`. A task's input, state, result
 * and error then cost no step of a fiber to encode or decode.
 */
export interface Codec<A> {
  readonly encode: (value: A) => Either.Either<Uint8Array, string>
  readonly decode: (bytes: Uint8Array) => Either.Either<A, { readonly detail: string; readonly found: string }>
}

/**
 * A compare-and-swap of record `id` from revision `expected`, made now: its new metadata; the store's failure, as
 * `update` would have failed with it (the write made or not, as there); or `undefined` when it was not made and
 * nothing changed (it cannot be made synchronously just now, or the record is not at `expected`: the effect path
 * goes again and reports what it meets). The id and patch are the runner's own, of a task the store accepted: they
 * are not checked again.
 */
export type Write = (
  id: string,
  expected: number,
  patch: TaskRecord.TaskPatch
) => TaskRecord.TaskInfo | TaskStoreError | undefined

/**
 * The same write on a connection that answers later (Postgres's): issued now, in one synchronous call, its outcome
 * what `Write` gives, once the database has answered (the promise never rejects); `undefined` when it cannot be issued
 * now. The runner awaits it in one step, instead of the effects of `update` around the same statement.
 */
export type WriteAsync = (
  id: string,
  expected: number,
  patch: TaskRecord.TaskPatch
) => Promise<TaskRecord.TaskInfo | TaskStoreError | undefined> | undefined

const codecs = new WeakMap<object, Codec<any>>()
const writers = new WeakMap<object, Write>()
const asyncWriters = new WeakMap<object, WriteAsync>()

/** Registers `now` as what `codec` does at once. */
export const registerCodec = <C extends object>(codec: C, now: Codec<any>): C => {
  codecs.set(codec, now)
  return codec
}

/** What `codec` does at once, if it was registered. */
export const codecOf = <A>(codec: object): Codec<A> | undefined => codecs.get(codec)

/** Registers `write` as what `store` writes at once. */
export const registerWrite = <S extends object>(store: S, write: Write): S => {
  writers.set(store, write)
  return store
}

/** What `store` writes at once, if it was registered. */
export const writeOf = (store: object): Write | undefined => writers.get(store)

/** Registers `write` as what `store` issues at once and hears of later. */
export const registerWriteAsync = <S extends object>(store: S, write: WriteAsync): S => {
  asyncWriters.set(store, write)
  return store
}

/** What `store` issues at once and hears of later, if it was registered. */
export const writeAsyncOf = (store: object): WriteAsync | undefined => asyncWriters.get(store)

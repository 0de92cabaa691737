/**
 * What can be done at once, in plain synchronous code: a codec's encoding, a store's write of one record. The codecs
 * and stores that can register it here; the runner's checkpoints and ends use it where it is registered, and take
 * the effect path where it is not (a codec or store of the user's, a store wrapped in another layer) or where it
 * declines. A checkpoint then costs a few steps of the fiber rather than the dozens of its effect path, and on a disk
 * that counts: a write gets slower with the work done since the last one.
 */
import type { TaskStoreError } from "../TaskError.js"
import type * as TaskRecord from "../TaskRecord.js"

/** A value's bytes, or `undefined` when it cannot be encoded (the effect path reports why). */
export type Encode<A> = (value: A) => Uint8Array | undefined

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

const encoders = new WeakMap<object, Encode<any>>()
const writers = new WeakMap<object, Write>()

/** Registers `encode` as what `codec` does at once. */
export const registerEncode = <C extends object>(codec: C, encode: Encode<any>): C => {
  encoders.set(codec, encode)
  return codec
}

/** What `codec` does at once, if it was registered. */
export const encodeOf = <A>(codec: object): Encode<A> | undefined => encoders.get(codec)

/** Registers `write` as what `store` writes at once. */
export const registerWrite = <S extends object>(store: S, write: Write): S => {
  writers.set(store, write)
  return store
}

/** What `store` writes at once, if it was registered. */
export const writeOf = (store: object): Write | undefined => writers.get(store)

/** Typed arrays in values that are stored or printed as JSON. */
/**
 * Typed arrays a Schema's encoded form may hold (a `Uint8ArrayFromSelf` field, a declared `Float32Array`): stored as
 * bytes, restored as the same type.
 */
export const binaryTypes = {
  Uint8Array,
  Int8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array
} as const
export type BinaryType = keyof typeof binaryTypes
export type Binary = InstanceType<(typeof binaryTypes)[BinaryType]>

/** The type a typed array is stored as (a `Buffer` is a `Uint8Array`), or `undefined` for any other value. */
export const binaryType = (value: unknown): BinaryType | undefined => {
  if (!ArrayBuffer.isView(value) || value instanceof DataView) return undefined
  if (value instanceof Uint8Array && !(value instanceof Uint8ClampedArray)) return "Uint8Array"
  const name = value.constructor.name
  return name in binaryTypes ? (name as BinaryType) : undefined
}

/**
 * A `JSON.stringify` replacer that writes typed arrays (and Buffers) as base64 strings instead of `{"0": …}` objects.
 */
export function withBinaryAsBase64(this: unknown, key: string, value: unknown): unknown {
  // `this[key]` is the value before `toJSON` (a Buffer's would have turned it into an object).
  const original = (this as Record<string, unknown>)[key]
  if (binaryType(original) === undefined) return value
  const b = original as Binary
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64")
}

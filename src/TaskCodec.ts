/**
 * Turns a task's values into the opaque bytes a store keeps, and back, through the task's Schemas (JSON in UTF-8).
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as AtOnce from "./internal/atOnce.js"
import { type Binary, type BinaryType, binaryType, binaryTypes, withBinaryAsBase64 } from "./internal/binary.js"

/**
 * Why bytes did not decode: the Schema's explanation and a preview of what was stored.
 *
 * @since 0.1.0
 * @category models
 */
export interface DecodeFailure {
  readonly detail: string
  readonly found: string
}

/**
 * Encodes values of `A` to bytes and decodes them back.
 *
 * @since 0.1.0
 * @category models
 */
export interface Codec<A> {
  encode(value: A): Effect.Effect<Uint8Array, string>
  decode(bytes: Uint8Array): Effect.Effect<A, DecodeFailure>
}

const encoder = new TextEncoder()
const decoder = new TextDecoder("utf-8", { fatal: true })

/** How much of undecodable bytes an error shows. */
const previewLength = 200

/**
 * A preview of stored bytes for error messages: the text if it is UTF-8, else a hex dump, cut to 200 characters.
 *
 * @since 0.1.0
 * @category utils
 */
export const preview = (bytes: Uint8Array): string => {
  let text: string
  try {
    text = isBinaryForm(bytes) ? toText(bytes) : decoder.decode(bytes)
  } catch {
    text = `<${bytes.length} bytes, not UTF-8: ${Buffer.from(bytes.subarray(0, 32)).toString("hex")}…>`
  }
  return text.length > previewLength ? `${text.slice(0, previewLength)}… (${bytes.length} bytes)` : text
}

/**
 * Where a binary value sits in the encoded value: the keys from the root, its type (a typed array's, or `"utf8"` for a
 * long string) and its length in bytes.
 */
type Slot = readonly [path: ReadonlyArray<string | number>, type: BinaryType | "utf8", bytes: number]

/**
 * Strings from this many characters on are stored like binaries, as their UTF-8 bytes beside the JSON: written
 * straight into the encoded bytes, without a quoted, escaped copy of the string as JSON text first (a 16 MiB string
 * state would otherwise make two more 16 MiB copies at each checkpoint).
 */
const longString = 64 * 1024

/**
 * Whether a value is a string stored beside the JSON. Only a well-formed one: UTF-8 cannot hold a lone surrogate,
 * which JSON text keeps as an escape.
 */
const isLongString = (v: unknown): v is string =>
  typeof v === "string" && v.length >= longString && (v as unknown as { isWellFormed(): boolean }).isWellFormed()

/** The binary values (and long strings) of `value`, depth first, in the order `JSON.stringify` meets them. */
const findBinaries = (value: unknown): Array<{ slot: Slot; data: Binary | string }> => {
  const found: Array<{ slot: Slot; data: Binary | string }> = []
  const walk = (v: unknown, path: Array<string | number>) => {
    if (isLongString(v)) {
      found.push({ slot: [[...path], "utf8", Buffer.byteLength(v, "utf8")], data: v })
      return
    }
    if (typeof v !== "object" || v === null) return
    const type = binaryType(v)
    if (type !== undefined) {
      const data = v as Binary
      found.push({ slot: [[...path], type, data.byteLength], data })
      return
    }
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        path.push(i)
        walk(v[i], path)
        path.pop()
      }
      return
    }
    for (const key of Object.keys(v)) {
      path.push(key)
      walk((v as Record<string, unknown>)[key], path)
      path.pop()
    }
  }
  walk(value, [])
  return found
}

/**
 * The binary form: `\0VLB` and a version byte, the header's length (u32, little-endian), the header (JSON:
 * `{"v": the value with each binary as null, "b": its slots}`), zero padding to 8 bytes, then each binary's bytes,
 * each padded to 8. JSON text never starts with a NUL byte, so the two forms never mix up.
 */
const magic = [0, 0x56, 0x4c, 0x42, 1] as const
const align = (n: number) => (n + 7) & ~7

const isBinaryForm = (bytes: Uint8Array): boolean => bytes.length >= 9 && magic.every((b, i) => bytes[i] === b)

const encodeBinaryForm = (
  value: unknown,
  binaries: ReadonlyArray<{ slot: Slot; data: Binary | string }>
): Uint8Array => {
  const slots = binaries.map((b) => b.slot)
  const header = encoder.encode(
    JSON.stringify({ v: value, b: slots }, function (this: unknown, key, v: unknown) {
      // `this[key]` is the value before `toJSON` (a Buffer's would turn it into an object first). The slots' own
      // paths are short strings, never long ones.
      const original = (this as Record<string, unknown>)[key]
      return binaryType(original) !== undefined || isLongString(original) ? null : v
    })
  )
  let size = align(9 + header.length)
  for (const b of binaries) size += align(b.slot[2])
  const out = new Uint8Array(size)
  const view = Buffer.from(out.buffer, out.byteOffset, out.byteLength)
  out.set(magic, 0)
  view.writeUInt32LE(header.length, 5)
  out.set(header, 9)
  let offset = align(9 + header.length)
  for (const { slot, data } of binaries) {
    if (typeof data === "string") view.write(data, offset, slot[2], "utf8")
    else out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), offset)
    offset += align(slot[2])
  }
  return out
}

/** A copy in an ArrayBuffer of its own (a Buffer's `slice` would be a view of a shared pool). */
const copyOf = (bytes: Uint8Array): Uint8Array => {
  const copy = new Uint8Array(bytes.length)
  copy.set(bytes)
  return copy
}

/** The encoded value of the binary form, its binaries restored (copied out of `bytes`). */
const decodeBinaryForm = (bytes: Uint8Array): unknown => {
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(5, true)
  const header = JSON.parse(decoder.decode(bytes.subarray(9, 9 + headerLength))) as {
    v: unknown
    b: ReadonlyArray<Slot>
  }
  let offset = align(9 + headerLength)
  let root = header.v
  for (const [path, type, length] of header.b) {
    if (!(type === "utf8" || type in binaryTypes) || offset + length > bytes.length) {
      throw new Error("its binary part is damaged")
    }
    const data =
      type === "utf8"
        ? decoder.decode(bytes.subarray(offset, offset + length))
        : // A copy, never a view: a task that changes its state's array in place must not change the bytes a store keeps.
          new binaryTypes[type](copyOf(bytes.subarray(offset, offset + length)).buffer as ArrayBuffer)
    offset += align(length)
    if (path.length === 0) root = data
    else {
      let holder = root as Record<string | number, unknown>
      for (const key of path.slice(0, -1)) holder = holder[key] as Record<string | number, unknown>
      // Defined, not assigned: a key named `__proto__` must stay a key.
      Object.defineProperty(holder, path[path.length - 1]!, {
        value: data,
        writable: true,
        enumerable: true,
        configurable: true
      })
    }
  }
  return root
}

/**
 * Stored bytes as text for people: JSON as it is stored, or the binary form's JSON with each binary value as a
 * base64 string.
 *
 * @since 0.1.0
 * @category utils
 */
export const text = (bytes: Uint8Array): string => toText(bytes)

const lenient = new TextDecoder("utf-8")

const toText = (bytes: Uint8Array): string => {
  if (!isBinaryForm(bytes)) return lenient.decode(bytes)
  return JSON.stringify(decodeBinaryForm(bytes), withBinaryAsBase64)
}

/** An `Either` as the effect that has run to it. */
const fromEither = <A, E>(either: Either.Either<A, E>): Effect.Effect<A, E> =>
  Either.isRight(either) ? Effect.succeed(either.right) : Effect.fail(either.left)

/**
 * The default codec: the Schema's encoded form as JSON text in UTF-8. Typed arrays in the encoded form (a
 * `Schema.Uint8ArrayFromSelf` field, say) are kept as bytes next to the JSON, not as text: a value that holds any is
 * stored in a binary form (see `text` to show it), and comes back as the same typed array.
 *
 * @since 0.1.0
 * @category constructors
 */
export const json = <A, I>(schema: Schema.Schema<A, I, never>): Codec<A> => {
  const encodeValue = ParseResult.encodeEither(schema)
  const decodeValue = ParseResult.decodeUnknownEither(schema)
  const decodeJson = ParseResult.decodeUnknownEither(Schema.parseJson(schema))
  const encode = (value: A): Either.Either<Uint8Array, string> => {
    const result = encodeValue(value)
    if (Either.isLeft(result)) return Either.left(ParseResult.TreeFormatter.formatIssueSync(result.left))
    const binaries = findBinaries(result.right)
    try {
      return Either.right(
        binaries.length === 0 ? encoder.encode(JSON.stringify(result.right)) : encodeBinaryForm(result.right, binaries)
      )
    } catch (e) {
      // A value JSON cannot hold (a cycle, a bigint) that the Schema let through.
      return Either.left(`it cannot be stored as JSON: ${e instanceof Error ? e.message : String(e)}`)
    }
  }
  const decode = (bytes: Uint8Array): Either.Either<A, DecodeFailure> => {
    if (isBinaryForm(bytes)) {
      let encoded: unknown
      try {
        encoded = decodeBinaryForm(bytes)
      } catch (e) {
        return Either.left({
          detail: `the stored binary form is damaged: ${e instanceof Error ? e.message : String(e)}`,
          found: preview(bytes)
        })
      }
      const result = decodeValue(encoded)
      return Either.isRight(result)
        ? Either.right(result.right)
        : Either.left({ detail: ParseResult.TreeFormatter.formatIssueSync(result.left), found: preview(bytes) })
    }
    let text: string
    try {
      text = decoder.decode(bytes)
    } catch {
      return Either.left({ detail: "the bytes are not valid UTF-8", found: preview(bytes) })
    }
    const result = decodeJson(text)
    return Either.isRight(result)
      ? Either.right(result.right)
      : Either.left({ detail: ParseResult.TreeFormatter.formatIssueSync(result.left), found: preview(bytes) })
  }
  const codec: Codec<A> = {
    encode: (value) => Effect.suspend(() => fromEither(encode(value))),
    decode: (bytes) => Effect.suspend(() => fromEither(decode(bytes)))
  }
  // The runner encodes and decodes at once with the same functions (`AtOnce`): no step of a fiber each.
  return AtOnce.registerCodec(codec, { encode, decode })
}

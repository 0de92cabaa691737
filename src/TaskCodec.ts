/**
 * Turns a task's values into the opaque bytes a store keeps, and back, through the task's Schemas (JSON in UTF-8).
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

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
    text = decoder.decode(bytes)
  } catch {
    text = `<${bytes.length} bytes, not UTF-8: ${Buffer.from(bytes.subarray(0, 32)).toString("hex")}…>`
  }
  return text.length > previewLength ? `${text.slice(0, previewLength)}… (${bytes.length} bytes)` : text
}

/**
 * The default codec: the Schema's encoded form as JSON text in UTF-8.
 *
 * @since 0.1.0
 * @category constructors
 */
export const json = <A, I>(schema: Schema.Schema<A, I, never>): Codec<A> => {
  const encodeJson = ParseResult.encodeEither(Schema.parseJson(schema))
  const decodeJson = ParseResult.decodeUnknownEither(Schema.parseJson(schema))
  return {
    encode: (value) =>
      Effect.suspend(() => {
        const result = encodeJson(value)
        return Either.isRight(result)
          ? Effect.succeed(encoder.encode(result.right))
          : Effect.fail(ParseResult.TreeFormatter.formatIssueSync(result.left))
      }),
    decode: (bytes) =>
      Effect.suspend(() => {
        let text: string
        try {
          text = decoder.decode(bytes)
        } catch {
          return Effect.fail({ detail: "the bytes are not valid UTF-8", found: preview(bytes) })
        }
        const result = decodeJson(text)
        return Either.isRight(result)
          ? Effect.succeed(result.right)
          : Effect.fail({ detail: ParseResult.TreeFormatter.formatIssueSync(result.left), found: preview(bytes) })
      })
  }
}

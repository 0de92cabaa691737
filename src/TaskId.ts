/**
 * Task ids: validation (safe as a file name, a SQL key and a CLI argument) and generation (sortable, unguessable).
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import { randomFillSync } from "node:crypto"
import { InvalidTaskId } from "./TaskError.js"

/**
 * The longest id accepted, in UTF-8 bytes.
 *
 * @since 0.1.0
 * @category utils
 */
export const maxBytes = 200

const allowed = /^[A-Za-z0-9._:@+=-]+$/

/**
 * Returns why `id` is not an acceptable task id, or `undefined` when it is.
 *
 * @since 0.1.0
 * @category validation
 */
export const invalidReason = (id: string): string | undefined => {
  // The common case in one scan: allowed characters only (all ASCII, one byte each), short enough, no leading '.'.
  if (id.length <= maxBytes && id.charCodeAt(0) !== 46 && allowed.test(id)) return undefined
  if (id.length === 0) return "it is empty"
  if (Buffer.byteLength(id, "utf8") > maxBytes) return `it is longer than ${maxBytes} bytes`
  if (id.includes("\0")) return "it contains a NUL byte"
  if (id.includes("/") || id.includes("\\")) return "it contains a path separator"
  if (/[\u0000-\u001f\u007f]/.test(id)) return "it contains a control character"
  if (id === "." || id === ".." || id.startsWith(".")) return "it starts with '.'"
  if (!allowed.test(id)) return "it contains characters outside [A-Za-z0-9._:@+=-]"
  return undefined
}

/**
 * Fails with `InvalidTaskId` unless `id` is acceptable; stores call it before touching anything.
 *
 * @since 0.1.0
 * @category validation
 */
export const validate = (id: string): Effect.Effect<string, InvalidTaskId> => {
  const reason = invalidReason(id)
  return reason === undefined ? Effect.succeed(id) : Effect.fail(new InvalidTaskId({ id, reason }))
}

/**
 * Random bytes drawn a page at a time (one system call per 409 ids instead of one each), each byte used once: ids
 * stay as unguessable as the CSPRNG they come from.
 */
const pool = Buffer.alloc(4096)
let poolAt = pool.length

/** Fills `b[from..]` with random bytes from the pool. */
const fillRandom = (b: Buffer, from: number): void => {
  const n = b.length - from
  if (poolAt + n > pool.length) {
    randomFillSync(pool)
    poolAt = 0
  }
  pool.copy(b, from, poolAt, poolAt + n)
  poolAt += n
}

/**
 * A new UUIDv7 (RFC 9562): 48 bits of milliseconds then 74 random bits, so ids sort by creation time and cannot be
 * guessed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (now: number = Date.now()): string => {
  const b = Buffer.allocUnsafe(16)
  fillRandom(b, 6)
  let ms = Math.max(0, Math.floor(now))
  for (let i = 5; i >= 0; i--) {
    b[i] = ms % 256
    ms = Math.floor(ms / 256)
  }
  b[6] = (b[6]! & 0x0f) | 0x70
  b[8] = (b[8]! & 0x3f) | 0x80
  const h = b.toString("hex")
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/**
 * The on-disk format of one task record: a fixed preamble, the metadata as JSON, the data fields as raw bytes, and a
 * CRC-32 over everything, so that truncation and corruption are always detected.
 *
 * ```
 * offset  size  field
 * 0       8     magic "VLTASK\r\n"
 * 8       4     format version (u32 LE), currently 1
 * 12      4     presence bits of input, state, result, error (bit 0..3)
 * 16      4     metadata length H (u32 LE)
 * 20      32    lengths of input, state, result, error (u64 LE each)
 * 52      16    write nonce (random; tells one write from another without reading the rest)
 * 68      H     metadata: TaskInfo as JSON in UTF-8
 * 68+H    ...   input, state, result, error bytes, back to back
 * end-4   4     CRC-32 of every byte before it (u32 LE)
 * ```
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { randomBytes } from "node:crypto"
import { crc32 } from "node:zlib"
import * as TaskRecord from "../../TaskRecord.js"

/** The magic number every record file starts with. */
export const magic = Buffer.from("VLTASK\r\n", "latin1")
/** The format version this code writes and reads. */
export const version = 1
/** Size of the fixed preamble. */
export const preambleSize = 68
const trailerSize = 4

const noncePrefix = randomBytes(8)
let nonceCounter = 0

const decodeInfo = ParseResult.decodeUnknownEither(Schema.parseJson(TaskRecord.TaskInfo))

/** An encoded record: the chunks to write in order, their total size, and the write nonce. */
export interface Encoded {
  readonly chunks: ReadonlyArray<Uint8Array>
  readonly size: number
  readonly nonce: string
}

/**
 * Records up to this size are laid out in one buffer, to go down in one write; larger ones as chunks, their data fields
 * not copied. Either way the same bytes are written: the threshold trades a copy for fewer system calls.
 */
const oneBufferMaxBytes = 4 * 1024 * 1024

/** Writes `n` (a length, at most 2^53) at `offset` as a u64 LE without a BigInt. */
const writeU64 = (buffer: Buffer, n: number, offset: number) => {
  buffer.writeUInt32LE(n % 0x1_0000_0000, offset)
  buffer.writeUInt32LE(Math.floor(n / 0x1_0000_0000), offset + 4)
}

/**
 * Lays a record out: in one buffer when it is small (`oneBufferMaxBytes`), else as chunks whose data fields are the
 * record's own (not copied), the checksum computed over them in turn.
 */
export const encode = (record: TaskRecord.TaskRecord): Encoded => {
  const fields = [record.input, record.state, record.result, record.error] as const
  const meta = JSON.stringify(TaskRecord.info(record))
  const metaLength = Buffer.byteLength(meta, "utf8")
  let size = preambleSize + metaLength + trailerSize
  for (const f of fields) if (f !== undefined) size += f.length
  // Stryker disable next-line EqualityOperator: one byte either side of the bound, the same bytes are written.
  const oneBuffer = size <= oneBufferMaxBytes
  // Every byte of it is written below: nothing of the pool's earlier contents is left in it.
  const head = Buffer.allocUnsafe(oneBuffer ? size : preambleSize + metaLength)
  magic.copy(head, 0)
  head.writeUInt32LE(version, 8)
  let present = 0
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]
    if (f !== undefined) present |= 1 << i
    writeU64(head, f?.length ?? 0, 20 + i * 8)
  }
  head.writeUInt32LE(present, 12)
  head.writeUInt32LE(metaLength, 16)
  // Unique per write: a random per-process prefix and a counter (the nonce tells writes apart; it need not be secret).
  noncePrefix.copy(head, 52)
  writeU64(head, ++nonceCounter, 60)
  head.write(meta, preambleSize, metaLength, "utf8")
  const nonce = head.toString("hex", 52, 68)
  if (oneBuffer) {
    let offset = preambleSize + metaLength
    for (const f of fields) {
      if (f === undefined) continue
      head.set(f, offset)
      offset += f.length
    }
    head.writeUInt32LE(crc32(head.subarray(0, offset)) >>> 0, offset)
    return { chunks: [head], size, nonce }
  }
  const chunks: Array<Uint8Array> = [head]
  let crc = crc32(head)
  for (const f of fields) {
    if (f === undefined) continue
    chunks.push(f)
    crc = crc32(f, crc)
  }
  const trailer = Buffer.allocUnsafe(trailerSize)
  trailer.writeUInt32LE(crc >>> 0, 0)
  chunks.push(trailer)
  return { chunks, size, nonce }
}

/** The preamble's fields, once checked. */
export interface Preamble {
  readonly present: number
  readonly metaLength: number
  readonly lengths: ReadonlyArray<number>
  readonly nonce: string
  /** The size the whole file must have. */
  readonly size: number
}

/** Reads and checks the preamble; a string explains what is wrong. */
export const readPreamble = (bytes: Uint8Array): Either.Either<Preamble, string> => {
  if (bytes.length < preambleSize) return Either.left(`it is ${bytes.length} bytes, shorter than the preamble`)
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (!buf.subarray(0, 8).equals(magic)) return Either.left("it does not start with the record magic number")
  const v = buf.readUInt32LE(8)
  if (v !== version) return Either.left(`it has format version ${v}; this code reads version ${version}`)
  const present = buf.readUInt32LE(12)
  if (present > 0b1111) return Either.left("its presence bits are invalid")
  const metaLength = buf.readUInt32LE(16)
  const lengths: Array<number> = []
  let size = preambleSize + metaLength + trailerSize
  for (let i = 0; i < 4; i++) {
    const n = buf.readBigUInt64LE(20 + i * 8)
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) return Either.left("a field length is out of range")
    if ((present & (1 << i)) === 0 && n !== 0n) return Either.left("an absent field has a length")
    lengths.push(Number(n))
    size += Number(n)
  }
  return Either.right({ present, metaLength, lengths, nonce: buf.subarray(52, 68).toString("hex"), size })
}

/** Decodes the metadata that follows a preamble. */
export const readInfo = (preamble: Preamble, bytes: Uint8Array): Either.Either<TaskRecord.TaskInfo, string> => {
  if (bytes.length < preambleSize + preamble.metaLength) return Either.left("it is cut inside the metadata")
  const text = Buffer.from(bytes.buffer, bytes.byteOffset + preambleSize, preamble.metaLength).toString("utf8")
  const info = decodeInfo(text)
  return Either.isRight(info)
    ? Either.right(info.right)
    : Either.left(`its metadata is invalid: ${ParseResult.TreeFormatter.formatIssueSync(info.left)}`)
}

/** Decodes a whole record file, checking its size and checksum; a string explains what is wrong. */
export const decode = (bytes: Uint8Array): Either.Either<{ record: TaskRecord.TaskRecord; nonce: string }, string> => {
  const preamble = readPreamble(bytes)
  if (Either.isLeft(preamble)) return Either.left(preamble.left)
  const p = preamble.right
  if (bytes.length !== p.size) return Either.left(`it is ${bytes.length} bytes but its preamble says ${p.size}`)
  const stored = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readUInt32LE(bytes.length - 4)
  const actual = crc32(bytes.subarray(0, bytes.length - 4)) >>> 0
  if (stored !== actual) return Either.left("its checksum does not match its contents")
  const info = readInfo(p, bytes)
  if (Either.isLeft(info)) return Either.left(info.left)
  let offset = preambleSize + p.metaLength
  const data: Record<string, Uint8Array> = {}
  TaskRecord.dataFields.forEach((name, i) => {
    const length = p.lengths[i]!
    if ((p.present & (1 << i)) !== 0) data[name] = bytes.subarray(offset, offset + length)
    offset += length
  })
  if (data.input === undefined) return Either.left("it has no input")
  return Either.right({ record: { ...info.right, ...data } as TaskRecord.TaskRecord, nonce: p.nonce })
}

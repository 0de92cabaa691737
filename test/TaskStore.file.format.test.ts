/**
 * The record file format (`RecordFile.ts`): every inconsistency a damaged or foreign file can have is reported by
 * name, even when its checksum was recomputed to match (a bug in a writer, a file of another version): the checks
 * do not lean on the CRC alone.
 */
import { assert, describe, it } from "vitest"
import { Either } from "effect"
import { crc32 } from "node:zlib"
import * as RecordFile from "../src/internal/file/recordFile.js"
import type * as TaskRecord from "../src/TaskRecord.js"
import { bytes } from "./helpers/store.js"

const full: TaskRecord.TaskRecord = {
  id: "t",
  kind: "k",
  status: "running",
  revision: 3,
  progress: { done: 1 },
  attempts: 1,
  createdAt: 1,
  updatedAt: 2,
  input: bytes("input"),
  state: bytes("state"),
  result: new Uint8Array(0)
}

const encoded = (record: TaskRecord.TaskRecord = full) => Buffer.concat(RecordFile.encode(record).chunks)

/** `edit` applied to a copy of the encoded record, with its checksum recomputed to match. */
const forged = (edit: (b: Buffer) => Buffer | void, record?: TaskRecord.TaskRecord) => {
  const copy = Buffer.from(encoded(record))
  const edited = edit(copy) ?? copy
  edited.writeUInt32LE(crc32(edited.subarray(0, edited.length - 4)) >>> 0, edited.length - 4)
  return edited
}

const problem = (file: Uint8Array) => {
  const decoded = RecordFile.decode(file)
  return Either.isLeft(decoded) ? decoded.left : "decoded"
}

const metaLength = encoded().readUInt32LE(16)

describe("record file format", () => {
  it("the encoded size is the file's size; fields round-trip, an empty one distinct from an absent one", () => {
    const e = RecordFile.encode(full)
    const file = Buffer.concat(e.chunks)
    assert.strictEqual(e.size, file.length)
    const decoded = RecordFile.decode(file)
    assert.isTrue(Either.isRight(decoded))
    if (Either.isLeft(decoded)) return
    const { record, nonce } = decoded.right
    assert.strictEqual(nonce, e.nonce)
    assert.deepStrictEqual(
      [record.input, record.state, record.result].map((b) => Buffer.from(b!).toString()),
      ["input", "state", ""]
    )
    assert.isFalse("error" in record)
    assert.deepStrictEqual({ ...record, input: 0, state: 0, result: 0 }, { ...full, input: 0, state: 0, result: 0 })
    assert.notStrictEqual(RecordFile.encode(full).nonce, e.nonce, "each write has its own nonce")
  })

  it("the preamble alone is enough to read it; one byte less is not", () => {
    const file = encoded()
    assert.isTrue(Either.isRight(RecordFile.readPreamble(file.subarray(0, RecordFile.preambleSize))))
    assert.strictEqual(
      Either.getLeft(RecordFile.readPreamble(file.subarray(0, RecordFile.preambleSize - 1))).pipe((o) =>
        o._tag === "Some" ? o.value : ""
      ),
      `it is ${RecordFile.preambleSize - 1} bytes, shorter than the preamble`
    )
  })

  it("each inconsistency is named, with the checksum made to match", () => {
    const cases: ReadonlyArray<readonly [string, (b: Buffer) => Buffer | void]> = [
      ["it does not start with the record magic number", (b) => void b.write("X", 0, "latin1")],
      ["it has format version 2; this code reads version 1", (b) => void b.writeUInt32LE(2, 8)],
      ["its presence bits are invalid", (b) => void b.writeUInt32LE(0b10000, 12)],
      ["a field length is out of range", (b) => void b.writeBigUInt64LE(2n ** 60n, 28)],
      ["an absent field has a length", (b) => void b.writeBigUInt64LE(3n, 44)],
      [
        `it is ${encoded().length + 1} bytes but its preamble says ${encoded().length}`,
        (b) => Buffer.concat([b, Buffer.from([0])])
      ],
      [
        "its metadata is invalid",
        (b) => void b.write("!", RecordFile.preambleSize + metaLength - 1, "latin1") // the JSON's closing brace
      ],
      [
        "it has no input",
        (b) => {
          // Input marked absent, its length 0, and its bytes taken out.
          b.writeUInt32LE(b.readUInt32LE(12) & ~1, 12)
          b.writeBigUInt64LE(0n, 20)
          const start = RecordFile.preambleSize + metaLength
          return Buffer.concat([b.subarray(0, start), b.subarray(start + 5)])
        }
      ]
    ]
    for (const [expected, edit] of cases) {
      const found = problem(forged(edit))
      assert.isTrue(found.startsWith(expected), `${expected}: got ${found}`)
    }
    const flipped = Buffer.from(encoded())
    flipped[flipped.length - 6]! ^= 1
    assert.strictEqual(problem(flipped), "its checksum does not match its contents")
    // The largest length a number can hold exactly is in range (the file is then simply too short for it).
    const atLimit = problem(forged((b) => void b.writeBigUInt64LE(BigInt(Number.MAX_SAFE_INTEGER), 28)))
    assert.include(atLimit, "but its preamble says")
  })

  it("metadata cut short is named as such", () => {
    const file = encoded()
    const preamble = RecordFile.readPreamble(file)
    assert.isTrue(Either.isRight(preamble))
    if (Either.isLeft(preamble)) return
    const cut = RecordFile.readInfo(preamble.right, file.subarray(0, RecordFile.preambleSize + metaLength - 1))
    assert.deepStrictEqual(cut, Either.left("it is cut inside the metadata"))
    const whole = RecordFile.readInfo(preamble.right, file.subarray(0, RecordFile.preambleSize + metaLength))
    assert.isTrue(Either.isRight(whole))
  })

  it("small records in one buffer and large ones in chunks are laid out as documented, metadata in any script", () => {
    /** The layout of `recordFile.ts`'s header comment, built here byte by byte with the write's own nonce. */
    const documented = (record: TaskRecord.TaskRecord, nonce: Uint8Array) => {
      const { input, state, result, error, ...info } = record
      const fields = [input, state, result, error]
      const meta = Buffer.from(JSON.stringify(info), "utf8")
      const head = Buffer.alloc(68)
      head.write("VLTASK\r\n", 0, "latin1")
      head.writeUInt32LE(1, 8)
      head.writeUInt32LE(
        fields.reduce((bits, f, i) => (f === undefined ? bits : bits | (1 << i)), 0),
        12
      )
      head.writeUInt32LE(meta.length, 16)
      fields.forEach((f, i) => head.writeBigUInt64LE(BigInt(f?.length ?? 0), 20 + i * 8))
      head.set(nonce, 52)
      const body = Buffer.concat([head, meta, ...fields.filter((f) => f !== undefined)])
      const trailer = Buffer.alloc(4)
      trailer.writeUInt32LE(crc32(body) >>> 0)
      return Buffer.concat([body, trailer])
    }
    const large = new Uint8Array(5 * 1024 * 1024).map((_, i) => i % 251)
    for (const [state, chunks] of [
      [bytes("state"), 1],
      // Above the one-buffer size: the preamble and metadata, each data field as it is, the checksum.
      [large, 5]
    ] as const) {
      const record = { ...full, reason: "paused — 一時停止 🚀", state }
      const e = RecordFile.encode(record)
      assert.strictEqual(e.chunks.length, chunks)
      if (chunks > 1) assert.strictEqual(e.chunks[2], large, "a large field is written from the record, not copied")
      const file = Buffer.concat(e.chunks)
      assert.strictEqual(e.size, file.length)
      assert.strictEqual(e.nonce, file.subarray(52, 68).toString("hex"))
      assert.isTrue(file.equals(documented(record, file.subarray(52, 68))))
      const decoded = RecordFile.decode(file)
      assert.isTrue(Either.isRight(decoded))
      if (Either.isRight(decoded)) assert.strictEqual(decoded.right.record.reason, record.reason)
    }
  })
})

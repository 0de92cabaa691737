/**
 * The default codec: the Schema's encoded form as JSON, with typed arrays kept as bytes beside it (a
 * `Uint8ArrayFromSelf` field used to be stored as `{"0": …}` and could never be read back). Values without typed
 * arrays are stored exactly as before, so records written by earlier versions read the same.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Deferred, Effect, Either, Layer, Schema } from "effect"
import { Task, TaskCodec, TaskRunner } from "../src/index.js"
import * as AtOnce from "../src/internal/atOnce.js"
import * as File from "../src/TaskStore/File.js"
import { tempDir } from "./helpers/tempDir.js"

/** A `Float32Array` field, as a user declares one (Schema has no built-in). */
const Float32 = Schema.declare((u): u is Float32Array => u instanceof Float32Array, { identifier: "Float32Array" })

const State = Schema.Struct({
  round: Schema.Int,
  bytes: Schema.Uint8ArrayFromSelf,
  vectors: Schema.Array(Float32),
  note: Schema.optional(Schema.String)
})

const sample = () => ({
  round: 3,
  bytes: Uint8Array.from([0, 1, 2, 250, 255]),
  vectors: [Float32Array.from([0.5, -1, 3.25]), new Float32Array(0), Float32Array.from([Math.PI])],
  note: "héllo"
})

const roundTrip = <A, I>(schema: Schema.Schema<A, I>, value: A) =>
  Effect.gen(function* () {
    const codec = TaskCodec.json(schema)
    const bytes = yield* codec.encode(value)
    return { bytes, back: yield* codec.decode(bytes) }
  })

describe("TaskCodec.json", () => {
  it.effect("typed arrays come back as the same types with the same contents", () =>
    Effect.gen(function* () {
      const value = sample()
      const { back } = yield* roundTrip(State, value)
      assert.instanceOf(back.bytes, Uint8Array)
      assert.deepStrictEqual(Array.from(back.bytes), Array.from(value.bytes))
      assert.strictEqual(back.vectors.length, 3)
      back.vectors.forEach((v, i) => {
        assert.instanceOf(v, Float32Array)
        assert.deepStrictEqual(Array.from(v), Array.from(value.vectors[i]!))
      })
      assert.strictEqual(back.round, 3)
      assert.strictEqual(back.note, "héllo")
    })
  )

  it.effect("binary data is stored as bytes, not as text: a 1 MiB array takes 1 MiB and a little", () =>
    Effect.gen(function* () {
      const big = new Uint8Array(1024 * 1024).map((_, i) => i % 251)
      const { bytes, back } = yield* roundTrip(Schema.Struct({ blob: Schema.Uint8ArrayFromSelf }), { blob: big })
      assert.isBelow(bytes.length, big.length + 256)
      assert.isTrue(Buffer.from(back.blob).equals(Buffer.from(big)))
    })
  )

  it.effect("a state that is a typed array itself, and a Buffer, round-trip", () =>
    Effect.gen(function* () {
      const root = yield* roundTrip(Schema.Uint8ArrayFromSelf, Uint8Array.from([9, 8, 7]))
      assert.deepStrictEqual(Array.from(root.back), [9, 8, 7])
      const buffer = yield* roundTrip(Schema.Struct({ b: Schema.Uint8ArrayFromSelf }), { b: Buffer.from("abc") })
      assert.deepStrictEqual(Array.from(buffer.back.b), [97, 98, 99])
    })
  )

  it.effect("decoded arrays are copies: bytes at any offset decode, and changing the array leaves them as stored", () =>
    Effect.gen(function* () {
      const codec = TaskCodec.json(State)
      const bytes = yield* codec.encode(sample())
      const shifted = new Uint8Array(bytes.length + 3)
      shifted.set(bytes, 3)
      const back = yield* codec.decode(shifted.subarray(3))
      assert.deepStrictEqual(Array.from(back.vectors[0]!), [0.5, -1, 3.25])
      back.bytes[0] = 99
      back.vectors[0]![0] = 99
      const again = yield* codec.decode(shifted.subarray(3))
      assert.strictEqual(again.bytes[0], 0)
      assert.strictEqual(again.vectors[0]![0], 0.5)
    })
  )

  it.effect("a value without typed arrays is stored as plain JSON, byte for byte as before", () =>
    Effect.gen(function* () {
      const schema = Schema.Struct({ n: Schema.Int, s: Schema.String })
      const { bytes } = yield* roundTrip(schema, { n: 1, s: "x" })
      assert.strictEqual(new TextDecoder().decode(bytes), '{"n":1,"s":"x"}')
      const legacy = new TextEncoder().encode('{"n":2,"s":"y"}')
      assert.deepStrictEqual(yield* TaskCodec.json(schema).decode(legacy), { n: 2, s: "y" })
    })
  )

  it.effect(
    "long strings are stored as their UTF-8 bytes beside the JSON, not as escaped JSON text, and come back equal",
    () =>
      Effect.gen(function* () {
        // Quotes, backslashes, control characters and characters beyond one UTF-8 byte: what JSON text would escape.
        const long = `"\\\n\u0001é€😀`.repeat(20_000) + "end"
        const schema = Schema.Struct({
          text: Schema.String,
          nested: Schema.Array(Schema.Struct({ s: Schema.String })),
          short: Schema.String
        })
        const value = { text: long, nested: [{ s: "x" }, { s: long.slice(1) }], short: "short" }
        const { bytes, back } = yield* roundTrip(schema, value)
        assert.deepStrictEqual(back, value)
        assert.deepStrictEqual(Array.from(bytes.subarray(0, 5)), [0, 0x56, 0x4c, 0x42, 1], "the binary form")
        // The two strings' UTF-8 bytes and a small header: no escapes, no quotes.
        const utf8 = Buffer.byteLength(long) + Buffer.byteLength(long.slice(1))
        assert.isBelow(bytes.length, utf8 + 256)
        assert.deepStrictEqual(JSON.parse(TaskCodec.text(bytes)), value)
        // A lone surrogate (half of 😀, cut off) cannot be UTF-8: such a string stays JSON text, and comes back equal.
        const cut = yield* roundTrip(Schema.Struct({ s: Schema.String }), { s: long.slice(0, -4) })
        assert.strictEqual(cut.back.s, long.slice(0, -4))
        assert.strictEqual(cut.bytes[0], "{".charCodeAt(0), "plain JSON")
        // A state that is a long string itself.
        const root = yield* roundTrip(Schema.String, long)
        assert.strictEqual(root.back, long)
        // Under the threshold, plain JSON as before.
        const small = yield* roundTrip(Schema.String, "é".repeat(100))
        assert.strictEqual(new TextDecoder().decode(small.bytes), JSON.stringify("é".repeat(100)))
      })
  )

  it.effect("its encoding and decoding at once (the runner's) give what its effects give, failures included", () =>
    Effect.gen(function* () {
      const codec = TaskCodec.json(State)
      const now = AtOnce.codecOf<typeof State.Type>(codec)
      assert.isDefined(now)
      const long = { ...sample(), note: "ü".repeat(70_000) }
      for (const value of [sample(), long, { round: 1, bytes: new Uint8Array(0), vectors: [] }]) {
        const bytes = yield* codec.encode(value)
        assert.deepStrictEqual(now!.encode(value), Either.right(bytes))
        assert.deepStrictEqual(now!.decode(bytes), Either.right(yield* codec.decode(bytes)))
      }
      const invalid = { ...sample(), round: 1.5 }
      assert.deepStrictEqual(now!.encode(invalid), yield* Effect.either(codec.encode(invalid)))
      assert.isTrue(Either.isLeft(now!.encode(invalid)))
      for (const damaged of [new Uint8Array([0xff, 0xfe]), new TextEncoder().encode('{"round":"x"}')]) {
        assert.deepStrictEqual(now!.decode(damaged), yield* Effect.either(codec.decode(damaged)))
        assert.isTrue(Either.isLeft(now!.decode(damaged)))
      }
    })
  )

  it.effect("damaged binary forms fail to decode with a reason instead of returning garbage", () =>
    Effect.gen(function* () {
      const codec = TaskCodec.json(State)
      const bytes = yield* codec.encode(sample())
      const truncated = yield* Effect.either(codec.decode(bytes.subarray(0, bytes.length - 16)))
      assert.isTrue(Either.isLeft(truncated))
      if (Either.isLeft(truncated)) assert.match(truncated.left.detail, /binary form is damaged/)
      const header = Buffer.from(bytes)
      header[12] = 0x7b // `{` in the middle of the header's JSON
      assert.isTrue(Either.isLeft(yield* Effect.either(codec.decode(header))))
    })
  )

  it.effect("text() shows the binary form as JSON with base64 for people (`vltask result` without a config)", () =>
    Effect.gen(function* () {
      const bytes = yield* TaskCodec.json(Schema.Struct({ b: Schema.Uint8ArrayFromSelf, n: Schema.Int })).encode({
        b: Uint8Array.from([1, 2, 3]),
        n: 5
      })
      assert.deepStrictEqual(JSON.parse(TaskCodec.text(bytes)), { b: "AQID", n: 5 })
    })
  )

  it.live("a binary state checkpointed on the file store is what a fresh runner resumes with", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* tempDir
        const checkpointed = yield* Deferred.make<void>()
        const Binary = Task.make({
          name: "binary-state",
          input: Schema.Struct({}),
          state: State,
          success: State,
          initial: () => ({ round: 0, bytes: new Uint8Array(0), vectors: [] }),
          run: (_, task) =>
            Effect.gen(function* () {
              if (task.attempt === 1) {
                yield* task.checkpoint(sample())
                yield* Deferred.succeed(checkpointed, undefined)
                return yield* Effect.never
              }
              return task.state
            })
        })
        // Each runner has a store instance of its own: the second reads the state from the file, not from a cache.
        const runner = () =>
          Effect.map(
            Layer.build(
              TaskRunner.layer({ tasks: [Binary] }).pipe(Layer.provide(File.layer({ directory: dir })), Layer.orDie)
            ),
            (context) => Context.get(context, TaskRunner.TaskRunner)
          )
        const first = yield* runner()
        const id = yield* first.start(Binary, {}, { id: "bin" })
        yield* Deferred.await(checkpointed)
        yield* first.pause(id)
        yield* Effect.either(first.await(Binary, id))
        const second = yield* runner()
        yield* second.resume(id)
        const result = yield* second.await(Binary, id)
        assert.deepStrictEqual(Array.from(result.bytes), [0, 1, 2, 250, 255])
        assert.deepStrictEqual(Array.from(result.vectors[2]!), [Math.fround(Math.PI)])
        assert.strictEqual(result.note, "héllo")
      })
    )
  )
})

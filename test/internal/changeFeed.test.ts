/**
 * The change feed the memory and file stores build `changes` on: a burst of changes made in one synchronous stretch
 * (a task checkpointing back to back) reaches the follower once per id, in one chunk; an end hands on what was
 * gathered first; an overflowing burst becomes one "look at everything".
 */
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Stream } from "effect"
import * as ChangeFeed from "../../src/internal/changeFeed.js"
import type { Sink } from "../../src/internal/changeFeed.js"

/** A feed whose source the test drives by hand, and how many subscriptions are open. */
const manual = () => {
  let sink: Sink | undefined
  let open = 0
  const stream = ChangeFeed.fromSource((s) => {
    sink = s
    open++
    return () => {
      open--
    }
  })
  return {
    stream,
    sink: () => sink!,
    open: () => open
  }
}

describe("ChangeFeed.fromSource", () => {
  it.live("a burst reaches the follower as one chunk of distinct ids, in order of first change", () =>
    Effect.gen(function* () {
      const feed = manual()
      const chunks: Array<ReadonlyArray<string | undefined>> = []
      const fiber = yield* Effect.fork(
        Stream.runForEach(
          Stream.mapChunks(feed.stream, (c) => Chunk.of(Chunk.toReadonlyArray(c))),
          (c) => Effect.sync(() => void chunks.push(c))
        )
      )
      yield* Effect.sleep("20 millis")
      for (let i = 0; i < 1000; i++) feed.sink().changed(i % 2 === 0 ? "a" : "b")
      feed.sink().changed("c")
      yield* Effect.sleep("20 millis")
      feed.sink().changed("a")
      yield* Effect.sleep("20 millis")
      assert.deepStrictEqual(chunks, [["a", "b", "c"], ["a"]])
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(feed.open(), 0, "unsubscribed when the follower stops")
    })
  )

  it.live("an end delivers the changes gathered before it, then ends the stream", () =>
    Effect.gen(function* () {
      const feed = manual()
      const fiber = yield* Effect.fork(Stream.runCollect(feed.stream))
      yield* Effect.sleep("20 millis")
      feed.sink().changed("x")
      feed.sink().end()
      const all = yield* Fiber.join(fiber).pipe(Effect.timeout("2 seconds"))
      assert.deepStrictEqual(Chunk.toReadonlyArray(all), ["x"])
    })
  )

  it.live("more distinct ids in one burst than it gathers become one `undefined` (look at every task)", () =>
    Effect.gen(function* () {
      const feed = manual()
      const fiber = yield* Effect.fork(Stream.runCollect(Stream.take(feed.stream, 1025)))
      yield* Effect.sleep("20 millis")
      for (let i = 0; i < 5000; i++) feed.sink().changed(`t${i}`)
      feed.sink().end()
      const all = Chunk.toReadonlyArray(yield* Fiber.join(fiber).pipe(Effect.timeout("2 seconds")))
      assert.deepStrictEqual(all, [undefined])
    })
  )
})

describe("ChangeFeed.follow", () => {
  it.live(
    "follows a feed from its source: each id of a burst once, an end after what was gathered, then unsubscribed",
    () =>
      Effect.gen(function* () {
        const feed = manual()
        const seen: Array<string | undefined> = []
        const fiber = yield* Effect.fork(ChangeFeed.follow(feed.stream, (id) => Effect.sync(() => void seen.push(id))))
        yield* Effect.sleep("20 millis")
        assert.strictEqual(feed.open(), 1)
        for (let i = 0; i < 1000; i++) feed.sink().changed(i % 2 === 0 ? "a" : "b")
        yield* Effect.sleep("20 millis")
        assert.deepStrictEqual(seen, ["a", "b"])
        feed.sink().changed("c")
        feed.sink().end()
        yield* Fiber.join(fiber).pipe(Effect.timeout("2 seconds"))
        assert.deepStrictEqual(seen, ["a", "b", "c"])
        assert.strictEqual(feed.open(), 0, "unsubscribed once the source ended")
      })
  )

  it.live("a change made while the follower handles the last batch is handed on next, not lost", () =>
    Effect.gen(function* () {
      const feed = manual()
      const seen: Array<string | undefined> = []
      const fiber = yield* Effect.fork(
        ChangeFeed.follow(feed.stream, (id) =>
          Effect.sync(() => {
            seen.push(id)
            // The source hears of another change while this one is being handled.
            if (id === "a") feed.sink().changed("b")
          })
        )
      )
      yield* Effect.sleep("20 millis")
      feed.sink().changed("a")
      yield* Effect.sleep("20 millis")
      assert.deepStrictEqual(seen, ["a", "b"])
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(feed.open(), 0, "unsubscribed when the follower stops")
    })
  )

  it.live("a change `atOnce` deals with is not handed on; the others are, in order", () =>
    Effect.gen(function* () {
      const feed = manual()
      const seen: Array<string | undefined> = []
      const dealt: Array<string | undefined> = []
      const atOnce = (id: string | undefined) => {
        if (id === undefined || !id.startsWith("mine")) return false
        dealt.push(id)
        return true
      }
      const fiber = yield* Effect.fork(
        ChangeFeed.follow(feed.stream, (id) => Effect.sync(() => void seen.push(id)), atOnce)
      )
      yield* Effect.sleep("20 millis")
      for (const id of ["mine-1", "a", "mine-2", "b", "mine-1"]) feed.sink().changed(id)
      yield* Effect.sleep("20 millis")
      assert.deepStrictEqual(dealt, ["mine-1", "mine-2", "mine-1"])
      assert.deepStrictEqual(seen, ["a", "b"])
      // Changes that are all dealt with at once reach the follower not at all, not even as an empty batch.
      for (let i = 0; i < 3; i++) feed.sink().changed("mine-3")
      yield* Effect.sleep("20 millis")
      assert.deepStrictEqual(seen, ["a", "b"])
      assert.strictEqual(dealt.length, 6)
      yield* Fiber.interrupt(fiber)
    })
  )

  it.live("too many distinct ids at once become one `undefined`; a stream made elsewhere is followed as a stream", () =>
    Effect.gen(function* () {
      const feed = manual()
      const seen: Array<string | undefined> = []
      const fiber = yield* Effect.fork(ChangeFeed.follow(feed.stream, (id) => Effect.sync(() => void seen.push(id))))
      yield* Effect.sleep("20 millis")
      for (let i = 0; i < 5000; i++) feed.sink().changed(`t${i}`)
      feed.sink().end()
      yield* Fiber.join(fiber).pipe(Effect.timeout("2 seconds"))
      assert.deepStrictEqual(seen, [undefined])
      const other: Array<string | undefined> = []
      yield* ChangeFeed.follow(Stream.make("x", undefined, "y"), (id) => Effect.sync(() => void other.push(id)))
      assert.deepStrictEqual(other, ["x", undefined, "y"])
    })
  )
})

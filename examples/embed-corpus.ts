/**
 * embed-corpus: embeds a corpus of documents in batches and appends the vectors to a file in a directory of its own,
 * `<output>/<task id>/vectors.f32`. Only once every vector is written does it add `embedding.json` (what the vectors
 * are) beside them and point `<output>/latest` at its directory: a paused, failed or cancelled run never looks complete.
 *
 * The corpus is generated deterministically (document i is always the same text) and the embedder is local feature
 * hashing of word uni- and bigrams into a normalized vector: no network, no model download, the same bytes every run.
 *
 * The checkpoint holds the document offset *and* the output file's length. The vectors of a batch are fsynced before
 * the checkpoint that counts them, and a resume first truncates the output back to the checkpointed length, so the
 * artifact and the checkpoint never disagree, however the previous run ended.
 */
import { Effect, Schema } from "effect"
import {
  closeSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  renameSync,
  symlinkSync,
  writeFileSync,
  writeSync
} from "node:fs"
import { join } from "node:path"
import { Task } from "@vectorlink/task"

export const EmbedInput = Schema.Struct({
  /** Number of documents to embed. */
  documents: Schema.Int.pipe(Schema.positive()),
  /** The corpus's number of the first of them (default 0): a shard of a larger corpus starts further on. */
  first: Schema.optional(Schema.Int.pipe(Schema.nonNegative())),
  /** Documents per batch (one checkpoint per batch). */
  batchSize: Schema.Int.pipe(Schema.positive()),
  /** Vector dimensions. */
  dimensions: Schema.Int.pipe(Schema.positive()),
  /** Words per document. */
  words: Schema.Int.pipe(Schema.positive()),
  /** The directory of the embeddings: this task's go to `<output>/<task id>/` (float32 little-endian vectors). */
  output: Schema.String,
  seed: Schema.Int
})
export type EmbedInput = typeof EmbedInput.Type

export const EmbedState = Schema.Struct({ offset: Schema.Int, bytes: Schema.Int })

export const EmbedResult = Schema.Struct({
  documents: Schema.Int,
  dimensions: Schema.Int,
  output: Schema.String,
  bytes: Schema.Int
})

/** The file that says an embedding is complete, and what it holds (written last, atomically). */
export const Manifest = Schema.Struct({
  documents: Schema.Int,
  dimensions: Schema.Int,
  vectors: Schema.String,
  bytes: Schema.Int
})

/** Writes `text` to `path` atomically: a reader sees the whole file or none. */
const writeAtomically = (path: string, text: string) => {
  writeFileSync(`${path}.tmp`, text, { flush: true })
  renameSync(`${path}.tmp`, path)
}

/** Points `<output>/latest` at this embedding's directory (replacing the previous link atomically). */
const pointLatest = (output: string, id: string) => {
  const temp = join(output, `.latest-${process.pid}`)
  symlinkSync(id, temp)
  renameSync(temp, join(output, "latest"))
}

/** Defaults sized for the demo (its time on this machine is in the README). */
export const defaults = (overrides: Partial<EmbedInput> = {}): EmbedInput => ({
  documents: 60_000,
  batchSize: 500,
  dimensions: 128,
  words: 120,
  output: ".vltask/demo",
  seed: 7,
  ...overrides
})

/** A small, fast, deterministic PRNG (mulberry32). */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const syllables = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "en", "da", "pri", "col", "ver", "ix", "um", "tra"]
/** A Zipf-ish vocabulary of 4,096 made-up words. */
const vocabulary = Array.from({ length: 4096 }, (_, i) => {
  const next = prng(i + 1)
  const length = 1 + Math.floor(next() * 3)
  return Array.from({ length }, () => syllables[Math.floor(next() * syllables.length)]).join("") + String(i % 7)
})

/** Document `i` of the corpus: always the same words for the same seed. */
export const documentText = (seed: number, i: number, words: number): string => {
  const next = prng(seed * 1_000_003 + i)
  const out: Array<string> = []
  for (let w = 0; w < words; w++) out.push(vocabulary[Math.floor(vocabulary.length * next() ** 2)]!)
  return out.join(" ")
}

/** FNV-1a over a string, 32 bits. */
const fnv1a = (text: string, h = 0x811c9dc5): number => {
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/** Sparse features: uni- and bigrams hashed into this many signed buckets. */
const featureBuckets = 2048
const hiddenSize = 512

/** A fixed pseudo-random weight matrix (the "model"), the same on every machine. */
const weights = (rows: number, cols: number, seed: number) => {
  const next = prng(seed)
  const scale = Math.sqrt(3 / rows)
  return Float32Array.from({ length: rows * cols }, () => (next() * 2 - 1) * scale)
}
const w1 = weights(featureBuckets, hiddenSize, 11)
const outputWeights = new Map<number, Float32Array>()

/**
 * The local embedder: feature hashing of uni- and bigrams, then a small fixed two-layer network (sparse features to
 * 512 hidden units with tanh, then to `dimensions`), L2-normalized. Deterministic and a few hundred microseconds a
 * document, like a small real model on a CPU.
 */
export const embed = (text: string, dimensions: number, into: Float32Array): Float32Array => {
  let w2 = outputWeights.get(dimensions)
  if (w2 === undefined) {
    w2 = weights(hiddenSize, dimensions, 13)
    outputWeights.set(dimensions, w2)
  }
  const features = new Map<number, number>()
  const words = text.split(" ")
  for (let i = 0; i < words.length; i++) {
    for (const f of i === 0 ? [words[i]!] : [words[i]!, `${words[i - 1]} ${words[i]}`]) {
      const h = fnv1a(f)
      const bucket = h % featureBuckets
      features.set(bucket, (features.get(bucket) ?? 0) + ((h & 0x80000000) === 0 ? 1 : -1))
    }
  }
  const hidden = new Float32Array(hiddenSize)
  for (const [bucket, value] of features) {
    const row = bucket * hiddenSize
    for (let j = 0; j < hiddenSize; j++) hidden[j]! += value * w1[row + j]!
  }
  for (let j = 0; j < hiddenSize; j++) hidden[j] = Math.tanh(hidden[j]! / 4)
  into.fill(0)
  for (let j = 0; j < hiddenSize; j++) {
    const h = hidden[j]!
    const row = j * dimensions
    for (let d = 0; d < dimensions; d++) into[d]! += h * w2[row + d]!
  }
  let norm = 0
  for (let d = 0; d < dimensions; d++) norm += into[d]! * into[d]!
  norm = Math.sqrt(norm) || 1
  for (let d = 0; d < dimensions; d++) into[d]! /= norm
  return into
}

export const EmbedCorpus = Task.make({
  name: "embed-corpus",
  input: EmbedInput,
  state: EmbedState,
  success: EmbedResult,
  initial: () => ({ offset: 0, bytes: 0 }),
  run: (input, task) =>
    Effect.gen(function* () {
      const bytesPerDoc = input.dimensions * 4
      yield* task.total(input.documents)
      task.setDone(task.state.offset)
      const dir = join(input.output, task.id)
      const vectors = join(dir, "vectors.f32")
      mkdirSync(dir, { recursive: true })
      // Open once; truncate back to the checkpoint so the output and the state agree.
      const fd = yield* Effect.acquireRelease(
        Effect.sync(() => openSync(vectors, "a+")),
        (fd) => Effect.sync(() => closeSync(fd))
      )
      ftruncateSync(fd, task.state.bytes)
      if (task.state.offset > 0) yield* Effect.log(`resuming at document ${task.state.offset}`)
      const vector = new Float32Array(input.dimensions)
      let { offset, bytes } = task.state
      while (offset < input.documents) {
        const end = Math.min(input.documents, offset + input.batchSize)
        const first = input.first ?? 0
        yield* task.message(`embedding documents ${first + offset}–${first + end - 1}`)
        const batch = Buffer.allocUnsafe((end - offset) * bytesPerDoc)
        for (let i = offset; i < end; i++) {
          embed(documentText(input.seed, (input.first ?? 0) + i, input.words), input.dimensions, vector)
          Buffer.from(vector.buffer).copy(batch, (i - offset) * bytesPerDoc)
          task.advance(1)
        }
        writeSync(fd, batch, 0, batch.length)
        // The vectors must be on disk before a checkpoint counts them.
        fsyncSync(fd)
        offset = end
        bytes += batch.length
        yield* task.checkpoint({ offset, bytes })
      }
      const manifest = { documents: input.documents, dimensions: input.dimensions, vectors: "vectors.f32", bytes }
      writeAtomically(join(dir, "embedding.json"), JSON.stringify(manifest))
      pointLatest(input.output, task.id)
      yield* Effect.log(`embedded ${input.documents} documents into ${vectors}`)
      return { documents: input.documents, dimensions: input.dimensions, output: dir, bytes }
    }).pipe(Effect.scoped)
})

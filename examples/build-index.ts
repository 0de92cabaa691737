/**
 * build-index: the second stage after embed-corpus. Reads a complete embedding (a directory with its
 * `embedding.json`) and builds a small IVF index: k-means centroids (one checkpoint per iteration, with the centroids
 * in the state) and the assignment of every vector to its nearest centroid, written to `<output>/<task id>/index.json`.
 * An embedding that did not complete (no `embedding.json`, or fewer bytes than it says) is refused with a typed error.
 */
import { Effect, Schema } from "effect"
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Task } from "@vectorlink/task"
import { Manifest } from "./embed-corpus.js"

export const IndexInput = Schema.Struct({
  /** The embedding's directory (embed-corpus points `<its output>/latest` at its last complete one). */
  embedding: Schema.String,
  clusters: Schema.Int.pipe(Schema.positive()),
  iterations: Schema.Int.pipe(Schema.positive()),
  /** The directory of the indexes: this task's goes to `<output>/<task id>/index.json`. */
  output: Schema.String
})

/** The embedding is missing, partial, or not what its manifest says: run (or resume) embed-corpus to completion. */
export class EmbeddingIncomplete extends Schema.TaggedError<EmbeddingIncomplete>()("EmbeddingIncomplete", {
  embedding: Schema.String,
  reason: Schema.String
}) {}

/** The embedding's manifest and vectors, checked against each other. */
const readEmbedding = (dir: string) =>
  Effect.gen(function* () {
    const manifestPath = join(dir, "embedding.json")
    if (!existsSync(manifestPath)) {
      return yield* new EmbeddingIncomplete({
        embedding: dir,
        reason: "it has no embedding.json: its embed-corpus task did not complete"
      })
    }
    const manifest = yield* Schema.decodeUnknown(Schema.parseJson(Manifest))(readFileSync(manifestPath, "utf8")).pipe(
      Effect.mapError((e) => new EmbeddingIncomplete({ embedding: dir, reason: `embedding.json: ${e.message}` }))
    )
    const path = join(dir, manifest.vectors)
    const size = existsSync(path) ? statSync(path).size : -1
    if (size !== manifest.bytes) {
      return yield* new EmbeddingIncomplete({
        embedding: dir,
        reason: `${manifest.vectors} holds ${size < 0 ? "nothing" : `${size} bytes`}, not the ${manifest.bytes} of its manifest`
      })
    }
    const raw = readFileSync(path)
    return { manifest, vectors: new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4) }
  })

export const IndexState = Schema.Struct({
  iteration: Schema.Int,
  centroids: Schema.Array(Schema.Array(Schema.Number)),
  shift: Schema.optional(Schema.Number)
})

export const IndexResult = Schema.Struct({
  vectors: Schema.Int,
  clusters: Schema.Int,
  iterations: Schema.Int,
  sizes: Schema.Array(Schema.Int),
  output: Schema.String
})

const nearest = (v: Float32Array, at: number, centroids: ReadonlyArray<ReadonlyArray<number>>, dims: number) => {
  let best = 0
  let bestScore = -Infinity
  for (let c = 0; c < centroids.length; c++) {
    const centroid = centroids[c]!
    let dot = 0
    for (let d = 0; d < dims; d++) dot += v[at + d]! * centroid[d]!
    if (dot > bestScore) {
      bestScore = dot
      best = c
    }
  }
  return best
}

export const BuildIndex = Task.make({
  name: "build-index",
  input: IndexInput,
  state: IndexState,
  success: IndexResult,
  error: EmbeddingIncomplete,
  // Deterministic seeding: evenly spaced vectors become the first centroids (chosen when the run starts).
  initial: () => ({ iteration: 0, centroids: [] }),
  run: (input, task) =>
    Effect.gen(function* () {
      const { manifest, vectors } = yield* readEmbedding(input.embedding)
      const dims = manifest.dimensions
      const count = manifest.documents
      if (count < input.clusters) {
        return yield* new EmbeddingIncomplete({
          embedding: input.embedding,
          reason: `${count} vectors cannot make ${input.clusters} clusters`
        })
      }
      let centroids = task.state.centroids
      if (centroids.length === 0) {
        centroids = Array.from({ length: input.clusters }, (_, c) => {
          const at = Math.floor((c * count) / input.clusters) * dims
          return Array.from(vectors.subarray(at, at + dims))
        })
      }
      yield* task.total(input.iterations)
      task.setDone(task.state.iteration)
      const assignment = new Int32Array(count)
      for (let iteration = task.state.iteration; iteration < input.iterations; iteration++) {
        yield* task.message(`k-means iteration ${iteration + 1}/${input.iterations}`)
        const sums = Array.from({ length: input.clusters }, () => new Float64Array(dims))
        const sizes = new Array<number>(input.clusters).fill(0)
        for (let i = 0; i < count; i++) {
          const c = nearest(vectors, i * dims, centroids, dims)
          assignment[i] = c
          sizes[c]!++
          const sum = sums[c]!
          for (let d = 0; d < dims; d++) sum[d]! += vectors[i * dims + d]!
          // Let other fibers (the heartbeat, an interrupt) in during long iterations.
          if (i % 2048 === 0) yield* Effect.yieldNow()
        }
        let shift = 0
        centroids = sums.map((sum, c) => {
          if (sizes[c] === 0) return centroids[c]!
          let norm = 0
          for (let d = 0; d < dims; d++) norm += sum[d]! * sum[d]!
          norm = Math.sqrt(norm) || 1
          const next = Array.from(sum, (x) => x / norm)
          for (let d = 0; d < dims; d++) shift = Math.max(shift, Math.abs(next[d]! - centroids[c]![d]!))
          return next
        })
        yield* task.progress(1)
        yield* task.checkpoint({ iteration: iteration + 1, centroids, shift })
        yield* Effect.log(`iteration ${iteration + 1}: largest centroid shift ${shift.toFixed(5)}`)
      }
      const sizes = new Array<number>(input.clusters).fill(0)
      for (let i = 0; i < count; i++) {
        assignment[i] = nearest(vectors, i * dims, centroids, dims)
        sizes[assignment[i]!]!++
      }
      const dir = join(input.output, task.id)
      mkdirSync(dir, { recursive: true })
      const output = join(dir, "index.json")
      writeFileSync(output, JSON.stringify({ dimensions: dims, centroids, assignment: Array.from(assignment) }))
      return { vectors: count, clusters: input.clusters, iterations: input.iterations, sizes, output }
    })
})

/**
 * build-index: the second stage after embed-corpus. Reads the vectors and builds a small IVF index: k-means
 * centroids (one checkpoint per iteration, with the centroids in the state) and the assignment of every vector to its
 * nearest centroid.
 */
import { Effect, Schema } from "effect"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { dirname } from "node:path"
import { Task } from "@vectorlink/task"

export const IndexInput = Schema.Struct({
  vectors: Schema.String,
  dimensions: Schema.Int.pipe(Schema.positive()),
  clusters: Schema.Int.pipe(Schema.positive()),
  iterations: Schema.Int.pipe(Schema.positive()),
  output: Schema.String
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
  // Deterministic seeding: evenly spaced vectors become the first centroids (chosen when the run starts).
  initial: () => ({ iteration: 0, centroids: [] }),
  run: (input, task) =>
    Effect.gen(function* () {
      const raw = readFileSync(input.vectors)
      const vectors = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4)
      const dims = input.dimensions
      const count = vectors.length / dims
      if (!Number.isInteger(count) || count < input.clusters) {
        return yield* Effect.dieMessage(`${input.vectors} holds ${vectors.length} floats: not ${dims}-dim vectors`)
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
      mkdirSync(dirname(input.output), { recursive: true })
      writeFileSync(input.output, JSON.stringify({ dimensions: dims, centroids, assignment: Array.from(assignment) }))
      return { vectors: count, clusters: input.clusters, iterations: input.iterations, sizes, output: input.output }
    })
})

/**
 * pipeline: the demo's two stages as one task with children. The corpus is split into shards, each embedded by an
 * `embed-corpus` child (two at a time); the shards' vectors are joined into one embedding; a `build-index` child
 * builds the index over it. One progress bar moves through both stages: each shard counts for its documents, the
 * index for a share of the whole set by `indexShare`.
 *
 * Interrupt it and run it again with the same id: shards that completed are not embedded again (their stored results
 * are read), the shards that were running resume from their own checkpoints, and so does the index.
 *
 *   npm run vltask -- run pipeline --id demo-pipeline
 */
import { Effect, Schema } from "effect"
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs"
import { join } from "node:path"
import { Task } from "@vectorlink/task"
import { BuildIndex, EmbeddingIncomplete, IndexResult } from "./build-index.js"
import { defaults as embedDefaults, EmbedCorpus, type EmbedInput, Manifest } from "./embed-corpus.js"

export const PipelineInput = Schema.Struct({
  /** Documents in the corpus. */
  documents: Schema.Int.pipe(Schema.positive()),
  /** How many shards it is embedded in, and how many of them run at once. */
  shards: Schema.Int.pipe(Schema.positive()),
  concurrency: Schema.Int.pipe(Schema.positive()),
  clusters: Schema.Int.pipe(Schema.positive()),
  iterations: Schema.Int.pipe(Schema.positive()),
  /** The index's share of the bar, against the embedding's 1 (its share of the time, about). */
  indexShare: Schema.Number.pipe(Schema.nonNegative()),
  /** Where the shards, the joined embedding and the index go: `<output>/<task id>/…`. */
  output: Schema.String
})
export type PipelineInput = typeof PipelineInput.Type

/** Defaults sized like the demo: 60,000 documents in 4 shards, 2 at a time. */
export const defaults = (overrides: Partial<PipelineInput> = {}): PipelineInput => ({
  documents: 60_000,
  shards: 4,
  concurrency: 2,
  clusters: 16,
  iterations: 12,
  indexShare: 0.1,
  output: ".vltask/demo",
  ...overrides
})

/** Shard `n` of `shards`: its first document and how many it has (the last takes what is left). */
const shardOf = (input: PipelineInput, n: number) => {
  const size = Math.ceil(input.documents / input.shards)
  const first = n * size
  return { first, documents: Math.max(0, Math.min(size, input.documents - first)) }
}

/**
 * Joins the shards' vectors, in order, into `<dir>/vectors.f32` with its `embedding.json` written last (a reader sees
 * a complete embedding or none). Done again on a resume unless the manifest says it is already there.
 */
const joinShards = (
  dir: string,
  parts: ReadonlyArray<{ readonly output: string; readonly bytes: number }>,
  dims: number
) =>
  Effect.sync(() => {
    const bytes = parts.reduce((n, p) => n + p.bytes, 0)
    const manifestPath = join(dir, "embedding.json")
    if (existsSync(manifestPath)) {
      const manifest = Schema.decodeUnknownSync(Schema.parseJson(Manifest))(readFileSync(manifestPath, "utf8"))
      if (manifest.bytes === bytes) return
    }
    mkdirSync(dir, { recursive: true })
    const temp = join(dir, "vectors.f32.tmp")
    const fd = openSync(temp, "w")
    try {
      for (const part of parts) {
        const data = readFileSync(join(part.output, "vectors.f32"))
        writeSync(fd, data, 0, data.length)
      }
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(temp, join(dir, "vectors.f32"))
    const manifest = { documents: bytes / (dims * 4), dimensions: dims, vectors: "vectors.f32", bytes }
    const manifestTemp = `${manifestPath}.tmp`
    const mfd = openSync(manifestTemp, "w")
    writeSync(mfd, JSON.stringify(manifest))
    fsyncSync(mfd)
    closeSync(mfd)
    renameSync(manifestTemp, manifestPath)
  })

export const Pipeline = Task.make({
  name: "pipeline",
  input: PipelineInput,
  // Nothing of its own to keep: each stage is a child with its own checkpoints, re-attached on a resume.
  state: Schema.Struct({}),
  success: IndexResult,
  error: EmbeddingIncomplete,
  initial: () => ({}),
  run: (input, task) =>
    Effect.gen(function* () {
      const indexWeight = Math.round(input.documents * input.indexShare)
      // The whole bar: every document embedded, then the index's share.
      yield* task.total(input.documents + indexWeight)
      const dir = join(input.output, task.id)
      yield* task.message(
        `embedding ${input.documents} documents in ${input.shards} shards, ${input.concurrency} at a time`
      )
      // A corpus smaller than its shard count leaves the last shards empty: they are left out.
      const shards = Array.from({ length: input.shards }, (_, n) => n).filter((n) => shardOf(input, n).documents > 0)
      const parts = yield* Effect.forEach(
        shards,
        (n) => {
          const shard: EmbedInput = embedDefaults({ ...shardOf(input, n), output: join(dir, "shards") })
          // Each shard counts for its documents (its own total): the default weight.
          return task.child(EmbedCorpus, shard, { key: `shard-${n}` })
        },
        { concurrency: input.concurrency }
      )
      yield* task.message("joining the shards")
      const embedding = join(dir, "embedding")
      yield* joinShards(embedding, parts, parts[0]!.dimensions)
      yield* Effect.log(`joined ${parts.length} shards into ${embedding}`)
      yield* task.message(`building the index: ${input.clusters} clusters`)
      return yield* task.child(
        BuildIndex,
        { embedding, clusters: input.clusters, iterations: input.iterations, output: dir },
        { key: "index", weight: indexWeight }
      )
    })
})

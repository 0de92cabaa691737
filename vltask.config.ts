/**
 * The tasks the `vltask` CLI knows in this repository: the two stages of the demo, the pipeline that runs both as
 * child tasks, and the small examples.
 */
import { defineConfig } from "@vectorlink/task/Cli"
import { BuildIndex } from "./examples/build-index.js"
import { defaults as embedDefaults, EmbedCorpus } from "./examples/embed-corpus.js"
import { SumSquares } from "./examples/checkpoint-resume.js"
import { defaults as pipelineDefaults, Pipeline } from "./examples/pipeline.js"

const documents = Number(process.env.VLTASK_DEMO_DOCS ?? 60_000)
const outputDir = process.env.VLTASK_DEMO_OUT ?? ".vltask/demo"

export default defineConfig({
  tasks: [EmbedCorpus, BuildIndex, Pipeline, SumSquares],
  inputs: {
    // Each task writes under `<outputDir>/<its id>/`; a completed embedding becomes `<outputDir>/latest`.
    "embed-corpus": embedDefaults({ documents, output: outputDir }),
    "build-index": { embedding: `${outputDir}/latest`, clusters: 16, iterations: 12, output: outputDir },
    // The two stages as one task: the corpus embedded in 4 shards (children, 2 at a time), then the index (a child).
    pipeline: pipelineDefaults({ documents, output: outputDir }),
    "sum-squares": { upTo: 1000 }
  }
})

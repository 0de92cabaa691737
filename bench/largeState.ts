/**
 * Large state: a 16 MiB state checkpointed 20 times through the file and SQLite stores. Each store runs in a fresh
 * child process so its peak RSS is its own: MB/s of checkpointed state, and (peak RSS − RSS before the state
 * existed) / state size.
 */
import { execFile } from "node:child_process"
import { join } from "node:path"
import { promisify } from "node:util"
import { scratchDir } from "./util.js"

const stateBytes = 16 * 1024 * 1024
const checkpoints = 20

export interface LargeStateResult {
  readonly mb_s: number
  readonly rss_ratio: number
}

/** Runs in the child: `node --import tsx bench/largeState.ts child file|sqlite DIR`. */
const child = async (kind: string, dir: string, forceGc: boolean, binary: boolean) => {
  const { Effect, Layer, Schema } = await import("effect")
  const { Task, TaskRunner } = await import("../src/index.js")
  const File = await import("../src/TaskStore/File.js")
  const Sqlite = await import("../src/TaskStore/Sqlite.js")
  const Big = Task.make({
    name: "bench-large",
    input: Schema.Struct({}),
    state: Schema.Struct({ round: Schema.Int, blob: binary ? Schema.Uint8ArrayFromSelf : Schema.String }),
    success: Schema.Number,
    initial: () => ({ round: 0, blob: binary ? new Uint8Array(0) : "" }),
    run: (_, task) =>
      Effect.gen(function* () {
        if (global.gc !== undefined) global.gc()
        const baseline = process.memoryUsage().rss
        // Each round a new 16 MiB string, as a real task's state would be rebuilt.
        let blob: string | Uint8Array = binary ? new Uint8Array(stateBytes).fill(97) : "a".repeat(stateBytes)
        const start = process.hrtime.bigint()
        for (let round = 1; round <= checkpoints; round++) {
          if (typeof blob === "string") blob = String.fromCharCode(97 + (round % 26)) + blob.slice(1)
          else {
            blob = blob.slice()
            blob[0] = 97 + (round % 26)
          }
          yield* task.checkpoint({ round, blob })
          // With a collection forced after each checkpoint, the peak shows what is live rather than what V8 let pile up.
          if (forceGc && global.gc !== undefined) global.gc()
        }
        const seconds = Number(process.hrtime.bigint() - start) / 1e9
        const peak = process.resourceUsage().maxRSS * 1024
        const result = { mb_s: (checkpoints * stateBytes) / 1e6 / seconds, rss_ratio: (peak - baseline) / stateBytes }
        process.stdout.write(JSON.stringify(result) + "\n")
        return result.mb_s
      })
  })
  const store = kind === "file" ? File.layer({ directory: dir }) : Sqlite.layer({ filename: join(dir, "large.db") })
  await Effect.runPromise(
    Effect.flatMap(TaskRunner.TaskRunner, (runner) => runner.run(Big, {})).pipe(
      Effect.provide(TaskRunner.layer({ tasks: [Big] }).pipe(Layer.provide(store))),
      Effect.scoped
    )
  )
}

export const largeState = async (
  kind: "file" | "sqlite",
  forceGc = false,
  binary = false
): Promise<LargeStateResult> => {
  const { dir, cleanup } = scratchDir(`large-${kind}`)
  try {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        "--expose-gc",
        "--import",
        "tsx",
        import.meta.filename,
        "child",
        kind,
        dir,
        forceGc ? "gc" : "no-gc",
        binary ? "binary" : "text"
      ],
      { timeout: 120_000, maxBuffer: 1024 * 1024 }
    )
    return JSON.parse(stdout.trim().split("\n").pop()!) as LargeStateResult
  } finally {
    cleanup()
  }
}

if (process.argv[2] === "child")
  await child(process.argv[3]!, process.argv[4]!, process.argv[5] === "gc", process.argv[6] === "binary")
else if (import.meta.url === `file://${process.argv[1]}`) {
  console.log("file", await largeState("file"))
  console.log("sqlite", await largeState("sqlite"))
  console.log("file, binary", await largeState("file", false, true))
  console.log("sqlite, binary", await largeState("sqlite", false, true))
}

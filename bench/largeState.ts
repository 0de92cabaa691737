/**
 * Large state: a 16 MiB state checkpointed 20 times through the file and SQLite stores. Each store runs in a fresh
 * child process so its peak RSS is its own: MB/s of checkpointed state, and (peak RSS − RSS before the state
 * existed) / state size.
 *
 * `npx tsx bench/largeState.ts` prints every figure with its floors; `npx tsx bench/largeState.ts <file|sqlite>
 * <string|binary> [runs]` only the store's, `runs` times. With `VLTASK_BENCH_BUILD=<dir>` (a build like `dist/esm`,
 * e.g. of another commit) the stores' children load the library from there instead of `src/`: two builds side by side.
 */
import { execFile } from "node:child_process"
import { join, resolve } from "node:path"
import { promisify } from "node:util"
import { scratchDir } from "./util.js"

const stateBytes = 16 * 1024 * 1024
const checkpoints = 20

/** The state's first value: 16 MiB of `a`, as a string or as bytes. */
const firstValue = (binary: boolean): string | Uint8Array =>
  binary ? new Uint8Array(stateBytes).fill(97) : "a".repeat(stateBytes)

/** Each round a new 16 MiB value, as a real task's state would be rebuilt (the floor and the task use the same). */
const nextValue = (blob: string | Uint8Array, round: number): string | Uint8Array => {
  if (typeof blob === "string") return String.fromCharCode(97 + (round % 26)) + blob.slice(1)
  const next = blob.slice()
  next[0] = 97 + (round % 26)
  return next
}

export interface LargeStateResult {
  readonly mb_s: number
  readonly rss_ratio: number
  /** The stores only: (JavaScript heap and buffers live after the checkpoints − before the state) / state size. */
  readonly retained_ratio?: number
}

/** The bytes of the JavaScript heap and of the buffers outside it now in use. */
const live = () => {
  const usage = process.memoryUsage()
  return usage.heapUsed + usage.arrayBuffers
}

/**
 * The floors, in a child of their own like the stores: `task` is the benchmark task's own loop (a new 16 MiB value a
 * round, as below) with no store at all, so the RSS it shows is what the task's own garbage costs before any store is
 * involved; `file` and `sqlite` write the same bytes raw (the file replace recipe of `raw.ts`, one `UPDATE` of a BLOB
 * through better-sqlite3), a new value each round too.
 */
const floor = async (kind: string, dir: string, binary: boolean) => {
  const { closeSync, fsyncSync, openSync, renameSync, writeSync } = await import("node:fs")
  const Database = (await import("better-sqlite3")).default
  const db = kind === "sqlite" ? new Database(join(dir, "raw.db")) : undefined
  db?.pragma("journal_mode = WAL")
  db?.pragma("synchronous = FULL")
  db?.exec("CREATE TABLE t (id TEXT PRIMARY KEY, state BLOB)")
  db?.prepare("INSERT INTO t VALUES ('a', x'00')").run()
  const update = db?.prepare("UPDATE t SET state = ? WHERE id = 'a'")
  const dirFd = openSync(dir, "r")
  const write = (bytes: Uint8Array, round: number) => {
    if (update !== undefined) return void update.run(bytes)
    if (kind !== "file") return
    const temp = join(dir, `.tmp-${round}`)
    const fd = openSync(temp, "wx")
    for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at)
    fsyncSync(fd)
    closeSync(fd)
    renameSync(temp, join(dir, "raw.task"))
    fsyncSync(dirFd)
  }
  const baseline = process.memoryUsage().rss
  let blob = firstValue(binary)
  const start = process.hrtime.bigint()
  for (let round = 1; round <= checkpoints; round++) {
    blob = nextValue(blob, round)
    // A string has to become bytes to be written at all: once, the least any store can do.
    write(typeof blob === "string" ? Buffer.from(blob, "utf8") : blob, round)
    await new Promise((resolve) => setImmediate(resolve))
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  const peak = process.resourceUsage().maxRSS * 1024
  closeSync(dirFd)
  db?.close()
  process.stdout.write(
    JSON.stringify({ mb_s: (checkpoints * stateBytes) / 1e6 / seconds, rss_ratio: (peak - baseline) / stateBytes }) +
      "\n"
  )
}

/** Runs in the child: `node --import tsx bench/largeState.ts child file|sqlite DIR`. */
const child = async (kind: string, dir: string, forceGc: boolean, binary: boolean) => {
  const { Effect, Layer, Schema } = await import("effect")
  const build = process.env.VLTASK_BENCH_BUILD
  const from = (path: string) => (build === undefined ? `../src/${path}.js` : resolve(build, `${path}.js`))
  const { Task, TaskRunner } = (await import(from("index"))) as typeof import("../src/index.js")
  const File = (await import(from("TaskStore/File"))) as typeof import("../src/TaskStore/File.js")
  const Sqlite = (await import(from("TaskStore/Sqlite"))) as typeof import("../src/TaskStore/Sqlite.js")
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
        const liveBefore = live()
        let blob = firstValue(binary)
        const start = process.hrtime.bigint()
        for (let round = 1; round <= checkpoints; round++) {
          blob = nextValue(blob, round)
          yield* task.checkpoint({ round, blob })
          // With a collection forced after each checkpoint, the peak shows what is live rather than what V8 let pile up.
          if (forceGc && global.gc !== undefined) global.gc()
        }
        const seconds = Number(process.hrtime.bigint() - start) / 1e9
        const peak = process.resourceUsage().maxRSS * 1024
        // What stays live once the checkpoints are done: the task's own value (held by it and as its state), and
        // whatever the runner and the store keep of it.
        // Twice: after one collection, a state's worth more was sometimes still counted (SQLite, a string state: 2.01
        // in one run, 0.99 in the next).
        for (let i = 0; i < 2 && global.gc !== undefined; i++) global.gc()
        const retained_ratio = (live() - liveBefore) / stateBytes
        const result = {
          mb_s: (checkpoints * stateBytes) / 1e6 / seconds,
          rss_ratio: (peak - baseline) / stateBytes,
          retained_ratio
        }
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

/** The floor under `largeState(kind, false, binary)`: see `floor`. */
export const largeStateFloor = async (kind: "task" | "file" | "sqlite", binary = false): Promise<LargeStateResult> => {
  const { dir, cleanup } = scratchDir(`large-floor-${kind}`)
  try {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", import.meta.filename, "floor", kind, dir, binary ? "binary" : "text"],
      { timeout: 120_000, maxBuffer: 1024 * 1024 }
    )
    return JSON.parse(stdout.trim().split("\n").pop()!) as LargeStateResult
  } finally {
    cleanup()
  }
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
else if (process.argv[2] === "floor") await floor(process.argv[3]!, process.argv[4]!, process.argv[5] === "binary")
else if (process.argv[2] === "file" || process.argv[2] === "sqlite") {
  const binary = process.argv[3] === "binary"
  for (let run = 0; run < Number(process.argv[4] ?? 1); run++) {
    console.log(
      `${binary ? "Uint8Array" : "string"}: ${process.argv[2]} store`,
      await largeState(process.argv[2], false, binary)
    )
  }
} else if (import.meta.url === `file://${process.argv[1]}`) {
  for (const binary of [false, true]) {
    const form = binary ? "Uint8Array" : "string"
    console.log(`${form}: the task alone`, await largeStateFloor("task", binary))
    for (const kind of ["file", "sqlite"] as const) {
      console.log(`${form}: ${kind} raw`, await largeStateFloor(kind, binary))
      console.log(`${form}: ${kind} store`, await largeState(kind, false, binary))
    }
  }
}

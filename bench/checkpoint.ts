/**
 * Durable checkpoint cost with a 1 KiB state: the stores through the runner's `task.checkpoint`, against the physical
 * limit measured in the same process, interleaved round by round.
 *
 * - file: the raw recipe in a tight synchronous loop (open a new temp file, write, fsync, close, rename over the
 *   target, fsync the directory) — the least any durable atomic replace can cost.
 * - SQLite: a raw better-sqlite3 `UPDATE` of one row with a 1 KiB BLOB, same pragmas (WAL, synchronous=FULL).
 */
import Database from "better-sqlite3"
import { Effect, Layer, Schema } from "effect"
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs"
import { join } from "node:path"
import { Task, TaskRunner, type TaskStore } from "../src/index.js"
import * as File from "../src/TaskStore/File.js"
import * as Sqlite from "../src/TaskStore/Sqlite.js"
import { median, nowNs, scratchDir } from "./util.js"

const pad = "x".repeat(1024 - 40)

/** A task that checkpoints `n` times as fast as it can and returns the elapsed milliseconds of each round. */
const Checkpointer = Task.make({
  name: "bench-checkpoint",
  input: Schema.Struct({ rounds: Schema.Int, perRound: Schema.Int }),
  state: Schema.Struct({ n: Schema.Int, pad: Schema.String }),
  success: Schema.Array(Schema.Number),
  initial: () => ({ n: 0, pad }),
  run: (input, task) =>
    Effect.gen(function* () {
      const times: Array<number> = []
      let n = 0
      for (let r = 0; r < input.rounds; r++) {
        const start = nowNs()
        for (let i = 0; i < input.perRound; i++) yield* task.checkpoint({ n: ++n, pad })
        times.push(Number(nowNs() - start) / 1e6)
      }
      return times
    })
})

/** Runs `rounds` of the store alternating with `rounds` of `raw`; checkpoints per second of each, medians. */
const interleaved = async (
  store: Layer.Layer<TaskStore.TaskStore, unknown>,
  raw: (perRound: number) => number,
  rounds: number,
  perRound: number
) => {
  const storeRates: Array<number> = []
  const rawRates: Array<number> = []
  const program = Effect.gen(function* () {
    const runner = yield* TaskRunner.TaskRunner
    for (let r = 0; r < rounds; r++) {
      rawRates.push((perRound * 1000) / raw(perRound))
      const [ms] = yield* runner.run(Checkpointer, { rounds: 1, perRound })
      storeRates.push((perRound * 1000) / ms!)
    }
  })
  await Effect.runPromise(
    program.pipe(Effect.provide(TaskRunner.layer({ tasks: [Checkpointer] }).pipe(Layer.provide(store))), Effect.scoped)
  )
  return { store: median(storeRates), raw: median(rawRates) }
}

export const fileCheckpoints = async (rounds = 7, perRound = 150) => {
  const { dir, cleanup } = scratchDir("file-ckpt")
  try {
    const rawDir = join(dir, "raw")
    await import("node:fs").then((fs) => fs.mkdirSync(rawDir))
    const dirFd = openSync(rawDir, "r")
    const body = Buffer.alloc(1024 + 120, 1)
    let k = 0
    const raw = (n: number) => {
      const start = nowNs()
      for (let i = 0; i < n; i++) {
        const temp = join(rawDir, `.tmp-${k++}`)
        const fd = openSync(temp, "wx")
        writeSync(fd, body)
        fsyncSync(fd)
        closeSync(fd)
        renameSync(temp, join(rawDir, "record.task"))
        fsyncSync(dirFd)
      }
      return Number(nowNs() - start) / 1e6
    }
    const result = await interleaved(File.layer({ directory: join(dir, "store") }), raw, rounds, perRound)
    closeSync(dirFd)
    return result
  } finally {
    cleanup()
  }
}

export const sqliteCheckpoints = async (rounds = 7, perRound = 150) => {
  const { dir, cleanup } = scratchDir("sqlite-ckpt")
  try {
    const db = new Database(join(dir, "raw.db"))
    db.pragma("journal_mode = WAL")
    db.pragma("synchronous = FULL")
    db.exec("CREATE TABLE t (id TEXT PRIMARY KEY, revision INTEGER, state BLOB)")
    db.prepare("INSERT INTO t VALUES ('a', 0, ?)").run(Buffer.alloc(1024))
    const update = db.prepare("UPDATE t SET state = ?, revision = revision + 1 WHERE id = 'a'")
    const body = Buffer.alloc(1024, 1)
    const raw = (n: number) => {
      const start = nowNs()
      for (let i = 0; i < n; i++) update.run(body)
      return Number(nowNs() - start) / 1e6
    }
    const result = await interleaved(Sqlite.layer({ filename: join(dir, "store.db") }), raw, rounds, perRound)
    db.close()
    return result
  } finally {
    cleanup()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log("file", await fileCheckpoints())
  console.log("sqlite", await sqliteCheckpoints())
}

/**
 * Durable checkpoint cost with a 1 KiB state: `task.checkpoint` through the runner and a store, against the physical
 * limit (`raw.ts`) measured in the same process, interleaved round by round inside one running task.
 *
 * A third loop in each round is the floor under any store: the same raw writes with the state encoded before each, as
 * little as encoding can be (the state's Schema, `JSON.stringify`, UTF-8). A store cannot write a state it has not
 * encoded, and the raw loop has nothing at all between its writes. A fourth is the store's own write made raw: on
 * SQLite and Postgres its statement (`checkpointWritesSqlite`, `checkpointWritesPostgres`), on files its system calls
 * with the lock (`checkpointWritesFile`): what writing a checkpoint's metadata with its state costs, with nothing else.
 */
import { Effect, Layer, Schema } from "effect"
import { join } from "node:path"
import { Task, TaskRunner, type TaskStore } from "../src/index.js"
import * as File from "../src/TaskStore/File.js"
import * as Postgres from "../src/TaskStore/Postgres.js"
import * as Sqlite from "../src/TaskStore/Sqlite.js"
import {
  checkpointWritesFile,
  checkpointWritesPostgres,
  checkpointWritesSqlite,
  dropTables,
  fileRaw,
  postgresRaw,
  type Raw,
  sqliteRaw
} from "./raw.js"
import { median, scratchDir } from "./util.js"

const pad = "x".repeat(1024 - 16)

/** The raw loops run by the task between its own rounds, registered per run. */
const raws = new Map<string, (n: number) => void | Promise<void>>()
/** Where there is one, the store's own statement made raw (`raw.ts`), opened once the store has made its table. */
const statementFloors = new Map<string, () => Raw | Promise<Raw | undefined>>()

const State = Schema.Struct({ n: Schema.Int, pad: Schema.String })

/** The least encoding of a state: its Schema's encoded form, as JSON, in UTF-8. */
const encodeState = Schema.encodeSync(State)
const utf8 = new TextEncoder()
const encodeLeast = (state: typeof State.Type) => utf8.encode(JSON.stringify(encodeState(state)))

/** `n` raw writes, the state encoded before each. */
const floorWrites = async (raw: (n: number) => void | Promise<void>, n: number, from: number) => {
  for (let i = 0; i < n; i++) {
    encodeLeast({ n: from + i, pad })
    const pending = raw(1)
    if (pending !== undefined) await pending
  }
}

const Checkpointer = Task.make({
  name: "bench-checkpoint",
  input: Schema.Struct({ raw: Schema.String, rounds: Schema.Int, perRound: Schema.Int }),
  state: State,
  success: Schema.Struct({
    store: Schema.Array(Schema.Number),
    raw: Schema.Array(Schema.Number),
    floor: Schema.Array(Schema.Number),
    statement: Schema.Array(Schema.Number)
  }),
  initial: () => ({ n: 0, pad }),
  run: (input, task) =>
    Effect.gen(function* () {
      const raw = raws.get(input.raw)!
      const statementWrites = yield* Effect.acquireRelease(
        Effect.promise(async () => statementFloors.get(input.raw)?.()),
        (w) => Effect.promise(async () => w?.close())
      )
      const store: Array<number> = []
      const rawRates: Array<number> = []
      const floor: Array<number> = []
      const statement: Array<number> = []
      let n = 0
      // Warm-up (the JIT, the caches, the WAL), not counted.
      for (let w = 0; w < 5; w++) {
        yield* Effect.promise(async () => raw(input.perRound))
        for (let i = 0; i < input.perRound; i++) yield* task.checkpoint({ n: ++n, pad })
      }
      for (let r = 0; r < input.rounds; r++) {
        let start = process.hrtime.bigint()
        yield* Effect.promise(async () => raw(input.perRound))
        rawRates.push((input.perRound * 1e9) / Number(process.hrtime.bigint() - start))
        start = process.hrtime.bigint()
        for (let i = 0; i < input.perRound; i++) yield* task.checkpoint({ n: ++n, pad })
        store.push((input.perRound * 1e9) / Number(process.hrtime.bigint() - start))
        start = process.hrtime.bigint()
        yield* Effect.promise(() => floorWrites(raw, input.perRound, n))
        floor.push((input.perRound * 1e9) / Number(process.hrtime.bigint() - start))
        if (statementWrites !== undefined) {
          start = process.hrtime.bigint()
          yield* Effect.promise(async () => statementWrites.write(input.perRound))
          statement.push((input.perRound * 1e9) / Number(process.hrtime.bigint() - start))
        }
      }
      return { store, raw: rawRates, floor, statement }
    })
})

const measure = async (
  name: string,
  store: Layer.Layer<TaskStore.TaskStore, unknown>,
  raw: (n: number) => void | Promise<void>,
  rounds: number,
  perRound: number
) => {
  raws.set(name, raw)
  const result = await Effect.runPromise(
    Effect.flatMap(TaskRunner.TaskRunner, (runner) => runner.run(Checkpointer, { raw: name, rounds, perRound })).pipe(
      Effect.provide(TaskRunner.layer({ tasks: [Checkpointer] }).pipe(Layer.provide(store))),
      Effect.scoped
    )
  )
  const s = median(result.store)
  const r = median(result.raw)
  const f = median(result.floor)
  const statement = result.statement.length === 0 ? undefined : median(result.statement) / r
  return { per_s: s, raw_per_s: r, ratio: s / r, floor_per_s: f, floor_ratio: f / r, statement_ratio: statement }
}

export const fileCheckpoints = async (rounds = 9, perRound = 200) => {
  const { dir, cleanup } = scratchDir("file-ckpt")
  const raw = fileRaw(dir)
  try {
    statementFloors.set("file", () => checkpointWritesFile(dir, (n) => encodeLeast({ n, pad })))
    return await measure("file", File.layer({ directory: join(dir, "store") }), raw.write, rounds, perRound)
  } finally {
    raw.close()
    cleanup()
  }
}

export const sqliteCheckpoints = async (rounds = 9, perRound = 200) => {
  const { dir, cleanup } = scratchDir("sqlite-ckpt")
  const raw = sqliteRaw(dir)
  try {
    statementFloors.set("sqlite", () =>
      checkpointWritesSqlite(join(dir, "store.db"), "vltask_tasks", (n) => encodeLeast({ n, pad }))
    )
    return await measure("sqlite", Sqlite.layer({ filename: join(dir, "store.db") }), raw.write, rounds, perRound)
  } finally {
    raw.close()
    cleanup()
  }
}

/** Postgres: against a raw single-row `UPDATE` through `pg`; `undefined` when no server answers. */
export const postgresCheckpoints = async (url: string, rounds = 9, perRound = 200) => {
  const prefix = `vltask_bench${process.pid}_`
  const raw = await postgresRaw(url, prefix)
  if (raw === undefined) return undefined
  try {
    statementFloors.set("postgres", () =>
      checkpointWritesPostgres(url, `${prefix}tasks`, (n) => encodeLeast({ n, pad }))
    )
    return await measure("postgres", Postgres.layer({ url, tablePrefix: prefix }), raw.write, rounds, perRound)
  } finally {
    await raw.close()
    await dropTables(url, prefix)
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log("file", await fileCheckpoints())
  console.log("sqlite", await sqliteCheckpoints())
  console.log(
    "postgres",
    await postgresCheckpoints(process.env.VLTASK_BENCH_POSTGRES ?? "postgres://root@127.0.0.1:5432/test")
  )
}

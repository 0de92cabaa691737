/**
 * What a task costs besides its own work: sequential `runner.run` of a task that does nothing, on each store,
 * against one raw durable write of the same store (`raw.ts`), interleaved round by round. A task is created already
 * claimed and ends with one write: two writes' worth (0.5) is the ceiling; the target is 0.4.
 */
import { Effect, Layer, Schema } from "effect"
import { join } from "node:path"
import { Task, TaskRunner, type TaskStore } from "../src/index.js"
import * as File from "../src/TaskStore/File.js"
import * as Postgres from "../src/TaskStore/Postgres.js"
import * as Sqlite from "../src/TaskStore/Sqlite.js"
import { dropTables, fileRaw, postgresRaw, type Raw, sqliteRaw } from "./raw.js"
import { median, scratchDir } from "./util.js"

const Noop = Task.make({
  name: "bench-noop",
  input: Schema.Struct({}),
  state: Schema.Struct({}),
  success: Schema.Number,
  initial: () => ({}),
  run: () => Effect.succeed(0)
})

const measure = (store: Layer.Layer<TaskStore.TaskStore, unknown>, raw: Raw, rounds: number, perRound: number) =>
  Effect.runPromise(
    Effect.gen(function* () {
      const runner = yield* TaskRunner.TaskRunner
      const tasks: Array<number> = []
      const raws: Array<number> = []
      for (let r = -2; r < rounds; r++) {
        // Two rounds of warm-up (the JIT, the caches, the WAL), not counted.
        let start = process.hrtime.bigint()
        yield* Effect.promise(async () => raw.write(perRound))
        const rawRate = (perRound * 1e9) / Number(process.hrtime.bigint() - start)
        start = process.hrtime.bigint()
        for (let i = 0; i < perRound; i++) yield* runner.run(Noop, {})
        const taskRate = (perRound * 1e9) / Number(process.hrtime.bigint() - start)
        if (r >= 0) {
          raws.push(rawRate)
          tasks.push(taskRate)
        }
      }
      const perS = median(tasks)
      const rawPerS = median(raws)
      return { tasks_per_s: perS, raw_per_s: rawPerS, vs_raw: perS / rawPerS }
    }).pipe(Effect.provide(TaskRunner.layer({ tasks: [Noop] }).pipe(Layer.provide(store))), Effect.scoped)
  )

export const noopTasks = async (
  kind: "file" | "sqlite" | "postgres",
  postgresUrl?: string,
  rounds = 7,
  perRound = 50
) => {
  const { dir, cleanup } = scratchDir(`noop-${kind}`)
  const prefix = `vltask_bench_n${process.pid}_`
  const raw =
    kind === "file" ? fileRaw(dir) : kind === "sqlite" ? sqliteRaw(dir) : await postgresRaw(postgresUrl!, prefix)
  if (raw === undefined) return undefined
  try {
    const store =
      kind === "file"
        ? File.layer({ directory: join(dir, "store") })
        : kind === "sqlite"
          ? Sqlite.layer({ filename: join(dir, "store.db") })
          : Postgres.layer({ url: postgresUrl!, tablePrefix: prefix })
    return await measure(store, raw, rounds, perRound)
  } finally {
    await raw.close()
    cleanup()
    if (kind === "postgres") await dropTables(postgresUrl!, prefix)
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log("file", await noopTasks("file"))
  console.log("sqlite", await noopTasks("sqlite"))
  console.log(
    "postgres",
    await noopTasks("postgres", process.env.VLTASK_BENCH_POSTGRES ?? "postgres://root@127.0.0.1:5432/test")
  )
}

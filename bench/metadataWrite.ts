/**
 * `npx tsx bench/metadataWrite.ts`: what a write of metadata alone costs (a heartbeat's: progress and the lease, no
 * state), in ms, on a record whose state is 1 KiB, 1 MiB and 16 MiB, per store: the median of 9 `store.update`s. The
 * file store and SQLite rewrite the whole record, state included, at each write; Postgres leaves a large value where it
 * is (TOAST) and writes the row's new version without it. The runner's heartbeat writes progress less often where this
 * is long (`beatCostFactor` in `src/internal/runner/heartbeat.ts`).
 */
import { Effect, Layer } from "effect"
import { TaskStore } from "../src/index.js"
import { storeLayer } from "./noop.js"
import { dropTables } from "./raw.js"
import { median, runningRecord, scratchDir } from "./util.js"

const sizes = [1024, 1024 * 1024, 16 * 1024 * 1024]
const writes = 9
const url = process.env.VLTASK_BENCH_POSTGRES ?? "postgres://root@127.0.0.1:5432/test"

/** ms per metadata write on `kind`, by state size; `undefined` when its server does not answer. */
const measure = (kind: "file" | "sqlite" | "postgres") => {
  const { dir, cleanup } = scratchDir(`metadata-${kind}`)
  const prefix = `vltask_bench_m${process.pid}_`
  const run = Effect.gen(function* () {
    const store = yield* TaskStore.TaskStore
    const out: Array<number> = []
    for (const size of sizes) {
      const id = `meta-${size}`
      yield* store.create({ ...runningRecord(id), state: new Uint8Array(size).fill(1) })
      const times: Array<number> = []
      for (let i = 1; i <= writes; i++) {
        const start = process.hrtime.bigint()
        yield* store.update(id, i, { progress: { done: i }, updatedAt: i })
        times.push(Number(process.hrtime.bigint() - start) / 1e6)
      }
      out.push(median(times))
    }
    return out
  })
  return Effect.runPromise(
    run.pipe(
      Effect.provide(storeLayer(kind, dir, prefix, url) as Layer.Layer<TaskStore.TaskStore, unknown>),
      Effect.map((ms): Array<number> | undefined => ms),
      Effect.catchAll(() => Effect.succeed(undefined))
    )
  ).finally(async () => {
    cleanup()
    if (kind === "postgres") await dropTables(url, prefix).catch(() => undefined)
  })
}

for (const kind of ["file", "sqlite", "postgres"] as const) {
  const ms = await measure(kind)
  console.log(
    `${kind.padEnd(8)} ms per metadata write, state of ` +
      (ms === undefined
        ? "—: no store (no server?)"
        : sizes
            .map((s, i) => `${s >= 1024 * 1024 ? `${s / 1024 / 1024} MiB` : `${s / 1024} KiB`}: ${ms[i]!.toFixed(2)}`)
            .join(" | "))
  )
}

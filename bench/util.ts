/**
 * Small helpers shared by the benchmarks.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { join } from "node:path"

export const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/**
 * A fresh directory on the same disk as the repository (not tmpfs), removed by `cleanup`; under `$VLTASK_BENCH_DIR`
 * instead when set and `onDisk` is not asked for (`VLTASK_BENCH_DIR=/dev/shm npm run bench:breakdown` shows what is left when system calls cost
 * microseconds).
 */
export const scratchDir = (name: string, onDisk = false) => {
  // A fresh clone after `npm ci` has no `node_modules/.cache` yet.
  const repoDisk = join(import.meta.dirname, "..", "node_modules", ".cache")
  const parent = onDisk ? repoDisk : (process.env.VLTASK_BENCH_DIR ?? repoDisk)
  mkdirSync(parent, { recursive: true })
  const dir = mkdtempSync(join(parent, `bench-${name}-`))
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

export const nowNs = () => process.hrtime.bigint()
export const elapsedMs = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6

/** A task record as `runner.start` creates it (running, no state yet): what the store-level benchmarks update. */
export const runningRecord = (id: string) =>
  ({
    id,
    kind: "k",
    status: "running",
    progress: { done: 0 },
    attempts: 1,
    createdAt: 0,
    updatedAt: 0,
    input: new Uint8Array(20)
  }) as const

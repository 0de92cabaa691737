/**
 * `npx tsx bench/spacing.ts`: what one raw durable write costs (`raw.ts`, SQLite and the file recipe) with a given
 * amount of CPU work done between writes, in µs per write, the work not counted: median of the per-round means,
 * rounds alternated between the amounts. On a machine whose CPU idles while its disk works, the work between writes
 * makes each write itself slower, so a store or runner that spends µs between writes pays more than those µs.
 */
import { fileRaw, type Raw, sqliteRaw } from "./raw.js"
import { median, scratchDir } from "./util.js"

const amounts = [0, 10, 25, 100, 400]
const perRound = 200
const rounds = 7

/** Busy work for `us` microseconds, allocating as a runner does. */
const work = (us: number) => {
  const until = process.hrtime.bigint() + BigInt(us * 1000)
  let garbage: Array<unknown> = []
  while (process.hrtime.bigint() < until) {
    garbage.push({ at: garbage.length, tag: "x" })
    if (garbage.length > 256) garbage = []
  }
}

/** µs per write of `raw`, after `us` of work before each. */
const writeCost = (raw: Raw, us: number) => {
  let spent = 0n
  for (let i = 0; i < perRound; i++) {
    if (us > 0) work(us)
    const start = process.hrtime.bigint()
    void raw.write(1)
    spent += process.hrtime.bigint() - start
  }
  return Number(spent) / 1e3 / perRound
}

const measure = (name: string, raw: Raw) => {
  const costs = new Map<number, Array<number>>(amounts.map((a) => [a, []]))
  writeCost(raw, 0) // warm-up
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? amounts : [...amounts].reverse()
    for (const us of order) costs.get(us)!.push(writeCost(raw, us))
  }
  const base = median(costs.get(0)!)
  console.log(
    `${name.padEnd(7)} µs per write with work between writes: ` +
      amounts
        .map((us) => `${us} µs → ${median(costs.get(us)!).toFixed(0)} (${(median(costs.get(us)!) / base).toFixed(2)}×)`)
        .join(" | ")
  )
}

const { dir, cleanup } = scratchDir("spacing")
try {
  const sqlite = sqliteRaw(dir)
  measure("sqlite", sqlite)
  void sqlite.close()
  const file = fileRaw(dir)
  measure("file", file)
  void file.close()
} finally {
  cleanup()
}

/**
 * Child tasks across real processes (`vltask` on a file store and on SQLite): a parent SIGKILLed during its fan-out
 * and run again re-attaches to its children — those that completed are not run again, those in flight resume from
 * their checkpoints — and returns what an uninterrupted run returns; a pause or cancel from another process reaches
 * every running child; `show` and `list --parent` show the family.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { TaskStore } from "../src/index.js"
import * as StoreUrl from "../src/StoreUrl.js"
import type * as TaskRecord from "../src/TaskRecord.js"

const repo = resolve(import.meta.dirname, "..")
const bin = join(repo, "dist", "esm", "bin.js")
const config = join(repo, "test", "fixtures", "family.config.ts")
let work: string

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "vltask-family-"))
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

interface Run {
  readonly child: ChildProcess
  readonly output: () => string
  readonly exited: Promise<number | null>
}

const vltaskIn =
  (url: string, runs: string) =>
  (args: ReadonlyArray<string>): Run => {
    const child = spawn(process.execPath, [bin, ...args, "--store", url], {
      cwd: work,
      env: { ...process.env, VLTASK_CONFIG: config, VLTASK_TEST_RUNS: runs },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let out = ""
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()))
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()))
    return { child, output: () => out, exited: new Promise((r) => child.on("close", (code) => r(code))) }
  }

const onStore = <A, E>(url: string, f: (store: TaskStore.Service) => Effect.Effect<A, E>) =>
  Effect.runPromise(Effect.flatMap(TaskStore.TaskStore, f).pipe(Effect.provide(StoreUrl.layer(url))))

const children = (url: string, parent: string) =>
  onStore(url, (s) => Effect.map(s.list({ parent, limit: 100 }), (p) => p.items as ReadonlyArray<TaskRecord.TaskInfo>))

const waitUntil = async (check: () => Promise<boolean>, what: string, timeoutMs = 30_000) => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`timed out waiting until ${what}`)
}

/** What the fan-out returns without interruption (see `fixtures/family.config.ts`). */
const expected = (parts: number, steps: number) => {
  let sum = 0
  for (let part = 0; part < parts; part++) for (let step = 1; step <= steps; step++) sum += step * (part + 1)
  return sum
}

const stores = [
  ["file", (dir: string) => `file:${join(dir, "store")}`],
  ["sqlite", (dir: string) => `sqlite:${join(dir, "tasks.db")}`]
] as const

describe("child tasks across processes", () => {
  for (const [name, urlIn] of stores) {
    it(`${name}: SIGKILL during the fan-out; run again, completed children are not re-run, the others resume`, async () => {
      const dir = mkdtempSync(join(work, `${name}-`))
      const runs = join(dir, "runs")
      mkdirSync(runs)
      const url = urlIn(dir)
      const vltask = vltaskIn(url, runs)
      const input = JSON.stringify({ parts: 6, steps: 25, ms: 20, concurrency: 2 })
      const first = vltask(["run", "fan-out", "--id", "fam", "--input", input, "--json"])
      // Killed once two parts have completed and the two in flight are part-way.
      await waitUntil(async () => {
        const family = await children(url, "fam")
        const done = family.filter((c) => c.status === "completed").length
        const midway = family.filter((c) => c.status === "running" && c.progress.done >= 5).length
        return done >= 2 && midway === 2
      }, "two parts completed and two part-way")
      first.child.kill("SIGKILL")
      await first.exited
      const before = await children(url, "fam")
      const completedBefore = before.filter((c) => c.status === "completed").map((c) => c.id)
      const inFlight = before.filter((c) => c.status === "running").map((c) => c.id)
      assert.isAtLeast(completedBefore.length, 2)
      assert.strictEqual(inFlight.length, 2)

      const second = vltask(["run", "fan-out", "--id", "fam", "--input", input, "--json"])
      assert.strictEqual(await second.exited, 0, second.output())
      const result = JSON.parse(second.output()) as { status: string; result: number }
      assert.strictEqual(result.status, "completed", second.output())
      assert.strictEqual(result.result, expected(6, 25))

      const files = readdirSync(runs)
      const startsOf = (id: string) => files.filter((f) => f.startsWith(`${id}.start.`))
      for (let part = 0; part < 6; part++) {
        const id = `fam.part-${part}`
        const starts = startsOf(id)
        assert.strictEqual(files.filter((f) => f.startsWith(`${id}.done.`)).length, 1, `${id} completed once`)
        if (completedBefore.includes(id)) assert.strictEqual(starts.length, 1, `${id} was not run again`)
        else if (inFlight.includes(id)) {
          assert.strictEqual(starts.length, 2, `${id} was resumed once`)
          const resumedFrom = starts.map((f) => Number(f.split(".").pop())).sort((a, b) => a - b)
          assert.strictEqual(resumedFrom[0], 0)
          assert.isAtLeast(resumedFrom[1]!, 5, `${id} resumed from its checkpoint`)
        } else
          assert.deepStrictEqual(
            starts.map((f) => f.split(".").pop()),
            ["0"],
            `${id} ran once`
          )
      }
      const parent = await onStore(url, (s) => s.getInfo("fam"))
      assert.deepStrictEqual([parent.progress.done, parent.progress.total], [150, 150])
    }, 120_000)
  }

  it("a pause and a cancel from another process reach every running child; show and list --parent show them", async () => {
    const dir = mkdtempSync(join(work, "pause-"))
    const runs = join(dir, "runs")
    mkdirSync(runs)
    const url = `file:${join(dir, "store")}`
    const vltask = vltaskIn(url, runs)
    const input = JSON.stringify({ parts: 4, steps: 500, ms: 20, concurrency: 2 })
    const owner = vltask(["run", "fan-out", "--id", "famp", "--input", input])
    await waitUntil(
      async () =>
        (await children(url, "famp")).filter((c) => c.status === "running" && c.progress.done > 2).length === 2,
      "two children run"
    )
    // The parent's stored progress is its running children's, as its runner flushes it (total: 2 x 500 so far).
    await waitUntil(async () => {
      const progress = (await onStore(url, (s) => s.getInfo("famp"))).progress
      return progress.total === 1000 && progress.done > 4
    }, "the parent's progress rolls up its children's")
    const shown = vltask(["show", "famp"])
    assert.strictEqual(await shown.exited, 0, shown.output())
    assert.match(
      shown.output(),
      /progress +\d+% +[\d,]+\/1,000[^]*children {2}2\n {2}famp\.part-0 +running +\d+% +\d+\/500/,
      shown.output()
    )
    const pause = vltask(["pause", "famp"])
    assert.strictEqual(await pause.exited, 0, pause.output())
    await owner.exited
    const paused = await children(url, "famp")
    assert.deepStrictEqual(
      paused.map((c) => [c.id, c.status, c.reason]),
      [0, 1].map((p) => [`famp.part-${p}`, "paused", "its parent famp was paused"])
    )
    assert.strictEqual((await onStore(url, (s) => s.getInfo("famp"))).status, "paused")
    // Nobody runs the family now: a cancel changes the parent and its children directly.
    const cancel = vltask(["cancel", "famp"])
    assert.strictEqual(await cancel.exited, 0, cancel.output())
    const listed = vltask(["list", "--parent", "famp", "--json"])
    assert.strictEqual(await listed.exited, 0, listed.output())
    const items = JSON.parse(listed.output()) as Array<{ id: string; status: string }>
    assert.deepStrictEqual(
      items.map((i) => [i.id, i.status]),
      [
        ["famp.part-0", "cancelled"],
        ["famp.part-1", "cancelled"]
      ]
    )
    // Deleting the parent deletes its children.
    const deleted = vltask(["delete", "famp"])
    assert.strictEqual(await deleted.exited, 0, deleted.output())
    assert.deepStrictEqual(await onStore(url, (s) => Effect.map(s.list({}), (p) => p.items.length)), 0)
  }, 120_000)
})

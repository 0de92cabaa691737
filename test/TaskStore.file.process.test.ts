/**
 * The file store across real processes: SIGKILL crashes, compare-and-swap contention, and fencing of a zombie runner
 * stopped with SIGSTOP.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { TaskStore } from "../src/index.js"
import * as File from "../src/TaskStore/File.js"
import { runCrashes } from "./crash/harness.js"
import { record } from "./TaskStore.conformance.js"
import { spawnChild } from "./helpers/child.js"

const withDir = async <A>(f: (dir: string) => Promise<A>): Promise<A> => {
  const dir = mkdtempSync(join(tmpdir(), "vltask-proc-"))
  try {
    return await f(dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const runStore = <A, E>(dir: string, f: (store: TaskStore.TaskStore["Type"]) => Effect.Effect<A, E>) =>
  Effect.runPromise(Effect.flatMap(TaskStore.TaskStore, f).pipe(Effect.provide(File.layer({ directory: dir }))))

describe("file store across processes", () => {
  it("survives 200 SIGKILLs at random moments: never unreadable, never behind the last ACK, no orphans", async () => {
    await withDir(async (dir) => {
      const result = await runCrashes({ kind: "file", location: dir, kills: 200 })
      assert.deepStrictEqual(result, { kills: 200, unreadable: 0, lost_acked: 0, orphans: 0 })
    })
  }, 300_000)

  it("4 processes x 250 compare-and-swap increments end at exactly 1,000", async () => {
    await withDir(async (dir) => {
      await runStore(dir, (store) => store.create(record("counter")))
      const children = await Promise.all(
        Array.from({ length: 4 }, () => spawnChild(["increment", `file:${dir}`, "counter", "250"]))
      )
      const codes = await Promise.all(children.map((c) => c.exited))
      assert.deepStrictEqual(codes, [0, 0, 0, 0], children.map((c) => c.stderr).join("\n"))
      const info = await runStore(dir, (store) => store.getInfo("counter"))
      assert.strictEqual(info.progress.done, 1000)
      assert.strictEqual(info.revision, 1001)
      assert.deepStrictEqual(readdirSync(join(dir, "tasks")).sort(), ["counter.task"])
    })
  }, 120_000)

  it("a runner stopped with SIGSTOP past its lease is fenced off: none of its writes after SIGCONT is accepted", async () => {
    await withDir(async (dir) => {
      const store = `file:${dir}`
      const zombie = await spawnChild(["zombie", store, "fenced"])
      await zombie.waitFor((l) => l === "ACK 5")
      // Stop it between writes: a process frozen inside a write holds the task's lock, and a live holder is waited
      // for (that case is the lock's, not the lease's).
      for (;;) {
        zombie.process.kill("SIGSTOP")
        await new Promise((r) => setTimeout(r, 20))
        if (!readdirSync(join(dir, "tasks")).includes("fenced.lock")) break
        zombie.process.kill("SIGCONT")
        await zombie.waitFor((l) => l.startsWith("ACK "), 5000, zombie.lines.length)
      }
      const stoppedAt = Date.now()
      const acksAtStop = zombie.lastAck()
      // The zombie's lease is 1.5 s; the second runner takes over as soon as it expires.
      const successor = await spawnChild(["resume", store, "fenced"])
      await successor.waitFor((l) => l === "RESUMED", 20_000)
      const from = successor.lines.length
      await successor.waitFor((l) => l.startsWith("ACK "), 10_000, from)
      await successor.waitFor((l) => l.startsWith("ACK "), 10_000, successor.lines.length)
      zombie.process.kill("SIGCONT")
      const report = await zombie.waitFor((l) => l.startsWith("WRITES "), 20_000)
      assert.strictEqual(await zombie.exited, 0, zombie.stderr)
      const writes = JSON.parse(report.slice("WRITES ".length)) as Array<{ start: number; ok: boolean }>
      const after = writes.filter((w) => w.start > stoppedAt)
      assert.isTrue(after.length >= 1, `the zombie tried to write after SIGCONT: ${report}`)
      assert.deepStrictEqual(
        after.filter((w) => w.ok),
        [],
        "every write the zombie started after SIGSTOP was rejected"
      )
      assert.isTrue(
        writes.some((w) => w.start < stoppedAt && w.ok),
        "the zombie wrote before it was stopped"
      )
      assert.strictEqual(zombie.lastAck(), acksAtStop, "no checkpoint of the zombie returned after SIGCONT")
      // The successor still owns the task and keeps checkpointing.
      const before = successor.lastAck()
      await successor.waitFor((l) => l.startsWith("ACK ") && Number(l.slice(4)) > before + 3, 10_000)
      const info = await runStore(dir, (s) => s.getInfo("fenced"))
      assert.strictEqual(info.lease?.holder.pid, successor.process.pid)
      successor.process.kill("SIGKILL")
      await successor.exited
    })
  }, 120_000)
})

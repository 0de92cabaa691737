/**
 * The multi-process suite every durable store runs: SIGKILL crashes at random moments, compare-and-swap contention
 * between processes, and fencing of a runner frozen with SIGSTOP past its lease.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { TaskStore } from "../src/index.js"
import * as StoreUrl from "../src/StoreUrl.js"
import { locationIn, runCrashes, spec, type StoreKind } from "./crash/harness.js"
import { spawnChild } from "./helpers/child.js"
import { record } from "./helpers/store.js"

const withDir = async <A>(f: (dir: string) => Promise<A>): Promise<A> => {
  const dir = mkdtempSync(join(tmpdir(), "vltask-proc-"))
  try {
    return await f(dir)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export const processSuite = (
  kind: StoreKind,
  options: {
    readonly writers: number
    /** True when the store is between writes (not holding a lock a frozen process would keep). */
    readonly idle?: (dir: string, id: string) => boolean
  }
) => {
  const runStore = <A, E>(url: string, f: (store: TaskStore.TaskStore["Type"]) => Effect.Effect<A, E>) =>
    Effect.runPromise(Effect.flatMap(TaskStore.TaskStore, f).pipe(Effect.provide(StoreUrl.layer(url))))

  describe(`${kind} store across processes`, () => {
    it("survives 200 SIGKILLs at random moments: never unreadable, never behind the last ACK, no orphans", async () => {
      await withDir(async (dir) => {
        const result = await runCrashes({ kind, location: locationIn(kind, dir), kills: 200 })
        assert.deepStrictEqual(result, { kills: 200, unreadable: 0, lost_acked: 0, orphans: 0 })
      })
    }, 300_000)

    it(`${options.writers} processes x 250 compare-and-swap increments lose no update`, async () => {
      await withDir(async (dir) => {
        const url = spec(kind, locationIn(kind, dir))
        await runStore(url, (store) => store.create(record("counter")))
        const children = await Promise.all(
          Array.from({ length: options.writers }, () => spawnChild(["increment", url, "counter", "250"]))
        )
        const codes = await Promise.all(children.map((c) => c.exited))
        assert.deepStrictEqual(
          codes,
          children.map(() => 0),
          children.map((c) => c.stderr).join("\n")
        )
        const info = await runStore(url, (store) => store.getInfo("counter"))
        assert.strictEqual(info.progress.done, options.writers * 250)
        assert.strictEqual(info.revision, options.writers * 250 + 1)
      })
    }, 180_000)

    it(`${options.writers} processes x 100 log appends lose no line and number them without gaps`, async () => {
      await withDir(async (dir) => {
        const url = spec(kind, locationIn(kind, dir))
        await runStore(url, (store) => store.create(record("logged")))
        const children = await Promise.all(
          Array.from({ length: options.writers }, () => spawnChild(["logs", url, "logged", "100"]))
        )
        const codes = await Promise.all(children.map((c) => c.exited))
        assert.deepStrictEqual(
          codes,
          children.map(() => 0),
          children.map((c) => c.stderr).join("\n")
        )
        const lines = await runStore(url, (store) => store.readLogs("logged"))
        assert.deepStrictEqual(
          lines.map((l) => l.seq),
          Array.from({ length: options.writers * 100 }, (_, k) => k + 1)
        )
        for (const child of children) {
          const mine = lines.filter((l) => l.message.startsWith(`${child.process.pid} `)).map((l) => l.message)
          assert.deepStrictEqual(
            mine,
            Array.from({ length: 100 }, (_, k) => `${child.process.pid} ${k}`),
            "each process's lines in its order"
          )
        }
      })
    }, 180_000)

    it("a runner frozen with SIGSTOP past its lease is fenced off: none of its writes after SIGCONT is accepted", async () => {
      await withDir(async (dir) => {
        const url = spec(kind, locationIn(kind, dir))
        const zombie = await spawnChild(["zombie", url, "fenced"])
        await zombie.waitFor((l) => l === "ACK 5")
        // Freeze it between writes: a process frozen inside a write holds the store's lock, which is waited for (that
        // case belongs to the lock, not to the lease).
        for (;;) {
          zombie.process.kill("SIGSTOP")
          await new Promise((r) => setTimeout(r, 20))
          if (options.idle === undefined || options.idle(dir, "fenced")) break
          zombie.process.kill("SIGCONT")
          await zombie.waitFor((l) => l.startsWith("ACK "), 5000, zombie.lines.length)
        }
        const stoppedAt = Date.now()
        const acksAtStop = zombie.lastAck()
        // The zombie's lease is 1.5 s; the successor takes over as soon as it expires.
        const successor = await spawnChild(["resume", url, "fenced"])
        await successor.waitFor((l) => l === "RESUMED", 20_000)
        await successor.waitFor((l) => l.startsWith("ACK "), 10_000, successor.lines.length)
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
        const before = successor.lastAck()
        await successor.waitFor((l) => l.startsWith("ACK ") && Number(l.slice(4)) > before + 3, 10_000)
        const info = await runStore(url, (s) => s.getInfo("fenced"))
        assert.strictEqual(info.lease?.holder.pid, successor.process.pid)
        successor.process.kill("SIGKILL")
        await successor.exited
      })
    }, 120_000)
  })
}

/** For the file store: no lock file means no process is inside a write of that task. */
export const fileIdle = (dir: string, id: string) => !readdirSync(join(dir, "tasks")).includes(`${id}.lock`)

/**
 * The runner over the real file store, on the live clock: tasks that checkpoint back to back on real I/O must still
 * get their heartbeat (interest timeout, requests from other runners), which an in-memory store cannot show. Each
 * scenario runs in a child process (`child/busy.ts`) so that a starved event loop fails the test on time instead of
 * hanging it: the deadline is kept here, outside the loop that might starve.
 */
import { assert, describe, it } from "@effect/vitest"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type * as TaskRecord from "../src/TaskRecord.js"
import { spawnChild } from "./helpers/child.js"

/** Runs a scenario of `child/busy.ts`; kills it and fails if it has not answered within 15 s. */
const scenario = async <A>(mode: string): Promise<A> => {
  const dir = mkdtempSync(join(tmpdir(), "vltask-busy-"))
  const child = await spawnChild([mode, dir], "busy")
  try {
    const line = await child.waitFor((l) => l.startsWith("RESULT "), 15_000)
    return JSON.parse(line.slice("RESULT ".length)) as A
  } finally {
    child.process.kill("SIGKILL")
    await child.exited
    rmSync(dir, { recursive: true, force: true })
  }
}

describe("TaskRunner on the file store", () => {
  it("a task checkpointing back to back is still paused by the interest timeout", async () => {
    const info = await scenario<{ status: string; reason: string; done: number }>("interest")
    assert.strictEqual(info.status, "paused")
    assert.match(info.reason, /nobody polled/)
    assert.isTrue(info.done > 0)
  }, 30_000)

  it("a pause requested by another runner reaches a task checkpointing back to back", async () => {
    const { paused, cancelled } = await scenario<{ paused: TaskRecord.TaskInfo; cancelled: TaskRecord.TaskInfo }>(
      "request"
    )
    assert.strictEqual(paused.status, "paused")
    assert.strictEqual(paused.reason, "paused on request")
    assert.isUndefined(paused.lease)
    assert.strictEqual(cancelled.status, "cancelled")
    assert.isTrue(cancelled.progress.done > paused.progress.done, "it continued from where it stopped")
  }, 30_000)
})

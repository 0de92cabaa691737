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
import { Effect, Layer } from "effect"
import { TaskRunner } from "../src/index.js"
import type * as TaskRecord from "../src/TaskRecord.js"
import * as File from "../src/TaskStore/File.js"
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

  it("a loop whose only step is yield* task.progress(1) is cancelled promptly", async () => {
    const result = await scenario<{ status: string; ms: number; done: number }>("spin-cancel")
    assert.strictEqual(result.status, "cancelled")
    assert.isBelow(result.ms, 2000)
    assert.isAbove(result.done, 0)
  }, 30_000)

  it("a loop whose only step is yield* task.progress(1) is paused promptly from another process", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vltask-spin-"))
    const child = await spawnChild(["spin", dir], "busy")
    try {
      await child.waitFor((l) => l === "STARTED")
      const onStore = <A, E>(f: (runner: TaskRunner.TaskRunner["Type"]) => Effect.Effect<A, E>) =>
        Effect.runPromise(
          Effect.flatMap(TaskRunner.TaskRunner, f).pipe(
            Effect.provide(TaskRunner.layer({ tasks: [] }).pipe(Layer.provide(File.layer({ directory: dir })))),
            Effect.scoped
          )
        )
      const requested = await onStore((runner) => runner.pause("spin"))
      assert.strictEqual(requested.interrupt, "pause")
      const started = Date.now()
      let info = requested
      while (info.status === "running" && Date.now() - started < 5000) {
        await new Promise((r) => setTimeout(r, 20))
        info = await onStore((runner) => runner.status("spin"))
      }
      assert.strictEqual(info.status, "paused")
      assert.isBelow(Date.now() - started, 2000, "paused within 2 s of the request")
      assert.isAbove(info.progress.done, 0)
    } finally {
      child.process.kill("SIGKILL")
      await child.exited
      rmSync(dir, { recursive: true, force: true })
    }
  }, 30_000)
})

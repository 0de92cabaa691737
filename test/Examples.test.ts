/**
 * The examples and the README quick start, run as a user would run them, so that they cannot rot.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { promisify } from "node:util"

const repo = resolve(import.meta.dirname, "..")
const exec = promisify(execFile)

const tsx = async (file: string) => {
  const { stdout, stderr } = await exec(process.execPath, ["--import", "tsx", file], { cwd: repo, timeout: 60_000 })
  return stdout + stderr
}

describe("examples", () => {
  it("checkpoint-resume: a timeout pauses, running the id again resumes", async () => {
    const out = await tsx("examples/checkpoint-resume.ts")
    assert.match(out, /after the timeout: paused, \d+\/100/)
    assert.include(out, "resumed and completed after 2 attempts: sum = 338350")
  }, 60_000)

  it("interrupt-cancel: pause keeps it resumable, cancel is final, finalizers run", async () => {
    const out = await tsx("examples/interrupt-cancel.ts")
    assert.match(out, /paused at tick \d+ \(paused on request\)/)
    assert.match(out, /cancelled at tick \d+/)
    assert.include(out, "cancelled tasks are final")
    assert.strictEqual(out.split("finalizer ran").length - 1, 2)
  }, 60_000)

  it("resume-on-poll: paused when nobody polls, resumed by a poll", async () => {
    const out = await tsx("examples/resume-on-poll.ts")
    assert.match(out, /nobody polled: paused at \d+ \(nobody polled it for/)
    assert.include(out, "result: 60 pages")
  }, 60_000)

  it("workers: two workers drain a queue; a failed run is retried from its checkpoint", async () => {
    const out = await tsx("examples/workers.ts")
    assert.include(out, "12 shards, 1200 documents embedded")
    assert.include(out, "shard 3 took 2 attempts, starting at documents 0 and 50")
    assert.include(out, "workers used: worker-a, worker-b")
  }, 60_000)

  it("fail-and-fix: an explicit resume after the fix continues from the checkpoint", async () => {
    const out = await tsx("examples/fail-and-fix.ts")
    assert.include(out, "failed: BadRecord")
    assert.include(out, "starting at record 900")
    assert.include(out, "after the fix: 1000 records")
  }, 60_000)
})

describe("README quick start", () => {
  const readme = readFileSync(join(repo, "README.md"), "utf8")

  it("is exactly two commands: install and run the demo, then run the tests", () => {
    const section = readme.slice(readme.indexOf("## Quick start"))
    const block = /```sh\n([\s\S]*?)```/.exec(section)![1]!.trim().split("\n")
    assert.deepStrictEqual(block, ["npm ci && npm run demo", "npm test"])
    const pkg = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { scripts: Record<string, string> }
    assert.match(pkg.scripts.demo!, /run embed-corpus --id demo-embed/)
    assert.match(pkg.scripts.test!, /typecheck.*lint.*vitest run/)
    const ci = readFileSync(join(repo, ".ci", "run"), "utf8")
    assert.match(ci, /npm ci/)
    assert.match(ci, /npm test/)
  })

  it("npm run demo runs embed-corpus on the file store, and running it again gives the kept result", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vltask-demo-"))
    try {
      const env = {
        ...process.env,
        VLTASK_DEMO_DOCS: "1500",
        VLTASK_DEMO_OUT: join(dir, "out"),
        VLTASK_STORE: `file:${join(dir, "store")}`
      }
      const npm = process.platform === "win32" ? "npm.cmd" : "npm"
      const first = await exec(npm, ["run", "-s", "demo"], { cwd: repo, env, timeout: 120_000 })
      assert.include(first.stdout, "Completed demo-embed")
      // Under a directory named by the task's id, which `latest` points at once it completed.
      assert.strictEqual(statSync(join(dir, "out", "demo-embed", "vectors.f32")).size, 1500 * 128 * 4)
      assert.strictEqual(statSync(join(dir, "out", "latest", "vectors.f32")).size, 1500 * 128 * 4)
      assert.isTrue(statSync(join(dir, "store", "tasks", "demo-embed.task")).isFile())
      const second = await exec(npm, ["run", "-s", "demo"], { cwd: repo, env, timeout: 120_000 })
      assert.include(second.stdout, `Completed demo-embed: {"documents":1500`)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 180_000)
})

/**
 * End-to-end tests of the real `vltask` executable: spawned as a process, talking to a real file store.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { TaskStore } from "../src/index.js"
import type * as TaskRecord from "../src/TaskRecord.js"
import * as File from "../src/TaskStore/File.js"

const repo = resolve(import.meta.dirname, "..")
const bin = join(repo, "dist", "esm", "bin.js")
let work: string

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "vltask-cli-"))
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

interface Run {
  readonly child: ChildProcess
  readonly output: () => string
  readonly errors: () => string
  readonly done: Promise<number | null>
}

interface Options {
  readonly out?: string
  readonly docs?: number
  /** The config module (default: the repository's, with the demo's tasks). */
  readonly config?: string
  /** More environment variables, and modules Node loads first (`--import`). */
  readonly env?: Readonly<Record<string, string>>
  readonly imports?: ReadonlyArray<string>
}

/** The tests' own tasks (a task with a slow clean-up). */
const testConfig = join(repo, "test", "fixtures", "cli.config.ts")

const env = (options: Options) => ({
  ...process.env,
  VLTASK_DEMO_OUT: join(work, options.out ?? "out"),
  VLTASK_DEMO_DOCS: String(options.docs ?? 2000),
  VLTASK_STORE: `file:${join(work, "store")}`,
  VLTASK_CONFIG: options.config ?? join(repo, "vltask.config.ts"),
  ...options.env
})

const start = (args: ReadonlyArray<string>, options: Options = {}): Run => {
  const imports = (options.imports ?? []).flatMap((m) => ["--import", m])
  const child = spawn(process.execPath, [...imports, bin, ...args], {
    cwd: work,
    env: env(options),
    stdio: ["ignore", "pipe", "pipe"]
  })
  let stdout = ""
  let stderr = ""
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()))
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
  return {
    child,
    output: () => stdout,
    errors: () => stderr,
    done: new Promise((r) => child.on("close", (code) => r(code)))
  }
}

const vltask = async (args: ReadonlyArray<string>, options: Options = {}) => {
  const run = start(args, options)
  const code = await run.done
  return { code, stdout: run.output(), stderr: run.errors() }
}

/** Runs `f` on the CLI's store, straight from its directory. */
const onStore = <A, E>(f: (store: TaskStore.Service) => Effect.Effect<A, E>) =>
  Effect.runPromise(
    Effect.flatMap(TaskStore.TaskStore, f).pipe(Effect.provide(File.layer({ directory: join(work, "store") })))
  )

/** Reads a task's metadata straight from the store directory. */
const info = (id: string) => onStore((s) => s.getInfo(id))

const waitUntil = async (check: () => Promise<boolean>, what: string, timeoutMs = 30_000) => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`timed out waiting until ${what}`)
}

describe("vltask CLI", () => {
  it("run, Ctrl-C pauses with progress, resume completes, and the output equals an uninterrupted run's", async () => {
    const docs = 8000
    const first = start(["run", "embed-corpus", "--id", "interrupted"], { out: "interrupted", docs })
    await waitUntil(async () => (await info("interrupted")).progress.done >= 1500, "progress")
    // In a terminal one Ctrl-C reaches the process twice (directly, and relayed by npm or tsx): both must pause it.
    first.child.kill("SIGINT")
    first.child.kill("SIGINT")
    assert.strictEqual(await first.done, 130, first.errors())
    assert.include(first.output(), "Paused interrupted")
    const paused = await info("interrupted")
    assert.strictEqual(paused.status, "paused")
    assert.isTrue(paused.progress.done > 0 && paused.progress.done < docs)
    // The index is not built over the paused embedding's partial vectors.
    const early = await vltask(
      [
        "run",
        "build-index",
        "--input",
        JSON.stringify({
          embedding: join(work, "interrupted", "interrupted"),
          clusters: 4,
          iterations: 2,
          output: work
        })
      ],
      { out: "interrupted" }
    )
    assert.strictEqual(early.code, 5, early.stderr)
    assert.include(early.stderr, "EmbeddingIncomplete")
    assert.include(early.stderr, "did not complete")

    const resumed = await vltask(["resume", "interrupted"], { out: "interrupted", docs })
    assert.strictEqual(resumed.code, 0, resumed.stderr)
    assert.include(resumed.stdout, "Completed interrupted")
    assert.strictEqual((await info("interrupted")).attempts, 2)

    const straight = await vltask(["run", "embed-corpus", "--id", "straight"], { out: "straight", docs })
    assert.strictEqual(straight.code, 0, straight.stderr)
    const a = readFileSync(join(work, "interrupted", "interrupted", "vectors.f32"))
    const b = readFileSync(join(work, "straight", "straight", "vectors.f32"))
    assert.strictEqual(a.length, docs * 128 * 4)
    assert.isTrue(a.equals(b), "the resumed output is byte for byte the uninterrupted one")

    // Running the same command again after completion prints the kept result instead of working again.
    const again = await vltask(["run", "embed-corpus", "--id", "straight"], { out: "straight", docs })
    assert.strictEqual(again.code, 0)
    assert.include(again.stdout, `"documents":${docs}`)
    assert.strictEqual((await info("straight")).attempts, 1)

    const result = await vltask(["result", "straight"])
    assert.strictEqual(result.code, 0)
    assert.strictEqual((JSON.parse(result.stdout) as { documents: number }).documents, docs)

    // The second stage, with the config's input, indexes the latest complete embedding.
    const index = await vltask(["run", "build-index", "--id", "index", "--json"], { out: "straight" })
    assert.strictEqual(index.code, 0, index.stderr)
    const built = JSON.parse(index.stdout) as { status: string; result: { vectors: number; output: string } }
    assert.strictEqual(built.status, "completed")
    assert.strictEqual(built.result.vectors, docs)
    assert.strictEqual(built.result.output, join(work, "straight", "index", "index.json"))
  }, 120_000)

  it("cancel from a second process stops a task the first process runs; watch follows a task from anywhere", async () => {
    const runner = start(["run", "embed-corpus", "--id", "victim"], { out: "victim", docs: 200_000 })
    await waitUntil(async () => (await info("victim")).progress.done > 0, "progress")
    const watcher = start(["watch", "victim"])
    await waitUntil(async () => watcher.output().includes("victim running"), "the watcher shows progress")
    const cancel = await vltask(["cancel", "victim"])
    assert.strictEqual(cancel.code, 0, cancel.stderr)
    assert.include(cancel.stdout, "victim is cancelled")
    assert.strictEqual(await runner.done, 5, "the running process reports the cancellation")
    assert.include(runner.errors(), "cancelled")
    assert.strictEqual(await watcher.done, 5)
    const end = await info("victim")
    assert.strictEqual(end.status, "cancelled")
    const resume = await vltask(["resume", "victim"])
    assert.strictEqual(resume.code, 4)
    assert.include(resume.stderr, "cancelled tasks are final")
  }, 120_000)

  it("watch exits 0 when the task it follows completes in another process", async () => {
    const runner = start(["run", "embed-corpus", "--id", "watched"], { out: "watched", docs: 6000 })
    await waitUntil(async () => (await info("watched")).status === "running", "running")
    const watched = await vltask(["watch", "watched"])
    assert.strictEqual(watched.code, 0, watched.stderr)
    assert.include(watched.stdout, "completed")
    assert.strictEqual(await runner.done, 0)
  }, 120_000)

  it("run --detach returns at once and a background process runs the task to completion", async () => {
    const started = await vltask(["run", "embed-corpus", "--id", "detached", "--detach"], {
      out: "detached",
      docs: 3000
    })
    assert.strictEqual(started.code, 0, started.stderr)
    assert.include(started.stdout, "Started detached in the background")
    const watched = await vltask(["watch", "detached"])
    assert.strictEqual(watched.code, 0, watched.stderr)
    assert.strictEqual((await info("detached")).status, "completed")
    assert.strictEqual(readFileSync(join(work, "detached", "detached", "vectors.f32")).length, 3000 * 128 * 4)
    assert.isTrue(existsSync(started.stdout.match(/its output goes to (\S+)\)/)?.[1] ?? ""), "the named output file")
  }, 120_000)

  it("--json gives machine-readable shapes for list, show, logs", async () => {
    const list = await vltask(["list", "--json"])
    assert.strictEqual(list.code, 0, list.stderr)
    const items = JSON.parse(list.stdout) as Array<Record<string, unknown>>
    assert.isArray(items)
    assert.isTrue(items.length >= 1)
    for (const item of items) {
      for (const key of ["id", "kind", "status", "createdAt", "updatedAt", "progress"]) assert.property(item, key)
      assert.isNumber((item.progress as { done: number }).done)
    }
    const show = await vltask(["show", "straight", "--json"])
    const shown = JSON.parse(show.stdout) as { id: string; progress: { done: number; total: number }; status: string }
    assert.deepStrictEqual(
      [shown.id, shown.status, shown.progress.done, shown.progress.total],
      ["straight", "completed", 8000, 8000]
    )
    const logs = await vltask(["logs", "straight", "--json"])
    const lines = JSON.parse(logs.stdout) as Array<{ seq: number; message: string }>
    assert.isTrue(lines.some((l) => l.message.includes("embedded 8000 documents")))
    const filtered = JSON.parse((await vltask(["list", "--json", "--status", "cancelled"])).stdout) as Array<{
      id: string
      status: string
    }>
    assert.deepStrictEqual(
      filtered.map((i) => [i.id, i.status]),
      [["victim", "cancelled"]]
    )
  }, 60_000)

  it("errors are one line with a hint and distinct exit codes", async () => {
    const badId = await vltask(["show", "../etc/passwd"])
    assert.strictEqual(badId.code, 2)
    assert.match(badId.stderr, /^vltask: Invalid task id/)
    assert.notInclude(badId.stderr, "    at ")
    const missing = await vltask(["show", "no-such-task"])
    assert.strictEqual(missing.code, 3)
    assert.include(missing.stderr, "hint:")
    const unknown = await vltask(["run", "no-such-kind"])
    assert.strictEqual(unknown.code, 2)
    assert.include(unknown.stderr, '"embed-corpus"')
    const done = await vltask(["resume", "straight"])
    assert.strictEqual(done.code, 4)
    const usage = await vltask(["frobnicate"])
    assert.strictEqual(usage.code, 2)
    const badStore = await vltask(["list", "--store", "ftp://x"])
    assert.strictEqual(badStore.code, 2)
    assert.include(badStore.stderr, "Invalid store")
  }, 60_000)

  it("a task's typed failure exits 5 naming its tag and fields; --input must be a JSON object, used whole", async () => {
    const failed = await vltask(["run", "fails", "--input", '{"at":3}', "--id", "typed"], { config: testConfig })
    assert.strictEqual(failed.code, 5, failed.stderr)
    assert.include(failed.stderr, 'Timeout {"after":3}')
    assert.include(failed.stderr, "vltask logs typed", "the hint names the task, not ID")
    // The same id again: without --input it is resumed with its own input (and fails the same way) ...
    const again = await vltask(["run", "fails", "--id", "typed"], { config: testConfig })
    assert.strictEqual(again.code, 5, again.stderr)
    assert.include(again.stderr, 'Timeout {"after":3}')
    // ... with another input it is refused, showing both, in the foreground and before a background process starts.
    for (const extra of [[], ["--detach"]]) {
      const other = await vltask(["run", "fails", "--id", "typed", "--input", '{"at":4}', ...extra], {
        config: testConfig
      })
      assert.strictEqual(other.code, 2, other.stderr)
      assert.include(other.stderr, 'exists with another input (stored: {"at":3}; given: {"at":4})')
    }
    const otherKind = await vltask(["run", "slow-stop", "--id", "typed", "--detach"], { config: testConfig })
    assert.strictEqual(otherKind.code, 2, otherKind.stderr)
    assert.notInclude(otherKind.stdout, "Started")
    for (const [input, got] of [
      ["[]", "an array"],
      ["[1,2]", "an array"],
      ["3", "a number"],
      ["null", "null"]
    ] as const) {
      const refused = await vltask(["run", "fails", "--input", input], { config: testConfig })
      assert.strictEqual(refused.code, 2, input)
      assert.include(refused.stderr, `--input must be a JSON object, not ${got}`)
    }
    // A given --input is the whole input: the config's default ({ n, stopMs }) does not fill in what it lacks.
    const partial = await vltask(["run", "slow-stop", "--input", '{"n":5}'], { config: testConfig })
    assert.strictEqual(partial.code, 2)
    assert.include(partial.stderr, "stopMs")
  }, 60_000)

  it("a pause from another terminal ends the foreground run with exit 6 and the command that resumes it", async () => {
    const run = start(["run", "slow-stop", "--id", "asked", "--input", '{"n":100000,"stopMs":10}'], {
      config: testConfig
    })
    await waitUntil(async () => (await info("asked")).progress.done >= 10, "progress")
    const pause = await vltask(["pause", "asked"], { config: testConfig })
    assert.strictEqual(pause.code, 0, pause.stderr)
    assert.strictEqual(await run.done, 6, run.errors())
    assert.include(run.output(), "Paused asked (paused on request). Resume it with: vltask resume asked")
    assert.notInclude(run.errors(), "vltask:")
  }, 60_000)

  it("help and usage errors carry no terminal escape codes when piped", async () => {
    const help = await vltask(["--help"])
    assert.strictEqual(help.code, 0)
    assert.include(help.stdout, "USAGE")
    assert.notInclude(help.stdout + help.stderr, "\x1b[")
    const usage = await vltask(["frobnicate"])
    assert.strictEqual(usage.code, 2)
    assert.notInclude(usage.stdout + usage.stderr, "\x1b[")
    // Parser errors in the one-line form of every error, with the command's help as the hint.
    const missing = await vltask(["run"])
    assert.strictEqual(missing.code, 2)
    assert.strictEqual(missing.stderr, "vltask: Missing argument <kind>\nhint: see `vltask run --help`.\n")
    // Every command's help: vltask in USAGE, a description on every option without per-type boilerplate, examples.
    for (const command of [
      "run",
      "list",
      "show",
      "watch",
      "pause",
      "cancel",
      "resume",
      "logs",
      "result",
      "delete",
      "gc",
      "submit",
      "worker"
    ]) {
      const help = await vltask([command, "--help"])
      assert.strictEqual(help.code, 0, command)
      assert.include(help.stdout, `$ vltask ${command} `, command)
      assert.include(help.stdout, "EXAMPLES", command)
      assert.notInclude(help.stdout, "A user-defined piece of text", command)
      assert.notInclude(help.stdout, "This setting is optional", command)
      assert.notInclude(help.stdout, "A true or false value", command)
    }
  }, 60_000)

  it("a config that cannot be used says why, pointing into the config itself", async () => {
    const config = (name: string, text: string) => {
      const path = join(work, name)
      writeFileSync(path, text)
      return path
    }
    const syntax = await vltask(["list"], { config: config("syntax.config.ts", "export default {\n  tasks: [,\n") })
    assert.strictEqual(syntax.code, 2)
    assert.match(syntax.stderr, /syntax\.config\.ts:3:\d+: /, "file:line:column of the error")
    const empty = await vltask(["list"], { config: config("empty.config.ts", "export const inputs = {}\n") })
    assert.include(empty.stderr, "exports no `tasks` array")
    const badImport = await vltask(["list"], {
      config: config("import.config.ts", 'import { x } from "no-such-package"\nexport default { tasks: [x] }\n')
    })
    assert.include(badImport.stderr, "Cannot find package 'no-such-package'")
    assert.include(badImport.stderr, join(work, "import.config.ts"), "named by the config's own path")
    assert.notInclude(badImport.stderr, ".mjs", "not by the compiled file's")
    const js = await vltask(["list"], { config: config("plain.config.mjs", "export default { tasks: [] }\n") })
    assert.strictEqual(js.code, 0, js.stderr)
  }, 60_000)

  it("a second Ctrl-C while the task is still cleaning up is absorbed: the task ends paused, not killed", async () => {
    const run = start(["run", "slow-stop", "--id", "double"], { config: testConfig })
    await waitUntil(async () => (await info("double")).progress.done >= 20, "progress")
    run.child.kill("SIGINT")
    // The task's clean-up takes a second; npm or tsx relay the same Ctrl-C a moment later.
    await new Promise((r) => setTimeout(r, 300))
    run.child.kill("SIGINT")
    assert.strictEqual(await run.done, 130, run.errors())
    assert.include(run.output(), "Paused double")
    assert.strictEqual((await info("double")).status, "paused")
    const logs = await vltask(["logs", "double", "--json"], { config: testConfig })
    const messages = (JSON.parse(logs.stdout) as Array<{ message: string }>).map((l) => l.message)
    assert.includeMembers(messages, ["cleaning up", "cleaned up"])
  }, 60_000)

  it("run pipeline: one bar through both stages; Ctrl-C pauses the family; run again, each child resumes where it stopped", async () => {
    const docs = 8000
    const shards = () =>
      onStore((s) => Effect.map(s.list({ parent: "pipe" }), (p) => p.items.filter((c) => c.kind === "embed-corpus")))
    const first = start(["run", "pipeline", "--id", "pipe"], { out: "pipe", docs })
    await waitUntil(async () => {
      const now = await shards()
      return now.some((c) => c.status === "completed") && now.some((c) => c.status === "running" && c.progress.done > 0)
    }, "a shard completed and another is part-way")
    first.child.kill("SIGINT")
    first.child.kill("SIGINT")
    assert.strictEqual(await first.done, 130, first.errors())
    assert.include(first.output(), "Paused pipe")
    // One bar: the parent's, over every document and the index's share (10%).
    assert.match(first.output(), /pipe paused +\d+% +[\d,]+\/8,800/)
    const stopped = await shards()
    const completed = stopped.filter((c) => c.status === "completed").map((c) => c.id)
    const paused = stopped.filter((c) => c.status === "paused")
    assert.isAtLeast(completed.length, 1)
    assert.isAtLeast(paused.length, 1)
    for (const c of paused) assert.strictEqual(c.reason, "its parent pipe was paused")
    assert.strictEqual((await info("pipe")).status, "paused")

    const again = await vltask(["run", "pipeline", "--id", "pipe"], { out: "pipe", docs })
    assert.strictEqual(again.code, 0, again.stderr)
    assert.include(again.stdout, "Completed pipe")
    for (const id of completed) assert.strictEqual((await info(id)).attempts, 1, `${id} was not run again`)
    for (const c of paused) {
      const logs = await vltask(["logs", c.id, "--json"], { out: "pipe" })
      const messages = (JSON.parse(logs.stdout) as Array<{ message: string }>).map((l) => l.message)
      assert.include(messages, `resuming at document ${c.progress.done}`, c.id)
    }
    const done = await info("pipe")
    assert.deepStrictEqual([done.progress.done, done.progress.total], [8800, 8800])

    const straight = await vltask(["run", "pipeline", "--id", "pipe-straight"], { out: "pipe-straight", docs })
    assert.strictEqual(straight.code, 0, straight.stderr)
    const index = (dir: string, id: string) => {
      const { centroids, assignment } = JSON.parse(
        readFileSync(join(work, dir, id, `${id}.index`, "index.json"), "utf8")
      )
      return { centroids, assignment }
    }
    assert.deepStrictEqual(index("pipe", "pipe"), index("pipe-straight", "pipe-straight"))
  }, 120_000)

  it("serve: the dashboard and the API until Ctrl-C; beyond loopback only with a token", async () => {
    const server = start(["serve", "--port", "0", "--token", "t0ken"])
    await waitUntil(async () => /http:\/\/127\.0\.0\.1:\d+\//.test(server.output()), "the server says where it is")
    const base = /(http:\/\/127\.0\.0\.1:\d+)\//.exec(server.output())![1]!
    const page = await fetch(`${base}/`)
    assert.strictEqual(page.status, 200)
    assert.include(await page.text(), "<title>vltask</title>")
    const kinds = await fetch(`${base}/api/kinds`, { headers: { authorization: "Bearer t0ken" } })
    assert.deepStrictEqual(await kinds.json(), ["embed-corpus", "build-index", "pipeline", "sum-squares"])
    assert.strictEqual((await fetch(`${base}/api/tasks`)).status, 401)
    server.child.kill("SIGINT")
    assert.strictEqual(await server.done, 0, server.errors())
    const exposed = await vltask(["serve", "--host", "0.0.0.0", "--port", "0"])
    assert.notStrictEqual(exposed.code, 0)
    assert.include(exposed.stderr, "Refusing to serve on 0.0.0.0 without a token")
  }, 60_000)

  it("gc deletes only completed and cancelled tasks older than --older-than; --dry-run lists exactly those", async () => {
    const day = 86_400_000
    const now = Date.now()
    const seeded: Array<readonly [string, TaskRecord.Status, number]> = [
      ["gc-old-completed", "completed", now - 2 * day],
      ["gc-old-cancelled", "cancelled", now - 2 * day],
      ["gc-old-failed", "failed", now - 2 * day],
      ["gc-old-paused", "paused", now - 2 * day],
      ["gc-old-pending", "pending", now - 2 * day],
      ["gc-new-completed", "completed", now - 1000],
      ["gc-new-cancelled", "cancelled", now - 1000]
    ]
    await onStore((store) =>
      Effect.forEach(seeded, ([id, status, updatedAt]) =>
        store.create({
          id,
          kind: "slow-stop",
          status,
          progress: { done: 0 },
          attempts: 1,
          createdAt: updatedAt,
          updatedAt,
          input: new Uint8Array(2)
        })
      )
    )
    const named = (stdout: string, verb: string) =>
      stdout
        .split("\n")
        .filter((l) => l.startsWith(`${verb} gc-`))
        .map((l) => l.split(" ")[verb.split(" ").length])
        .sort()
    const expected = ["gc-old-cancelled", "gc-old-completed"]
    const dry = await vltask(["gc", "--older-than", "1d", "--dry-run"])
    assert.strictEqual(dry.code, 0, dry.stderr)
    assert.deepStrictEqual(named(dry.stdout, "would delete"), expected)
    const gc = await vltask(["gc", "--older-than", "1d"])
    assert.strictEqual(gc.code, 0, gc.stderr)
    assert.deepStrictEqual(named(gc.stdout, "deleted"), expected)
    for (const [id] of seeded) {
      const exists = (await vltask(["show", id])).code === 0
      assert.strictEqual(exists, !expected.includes(id), id)
    }
  }, 60_000)

  it("gc deletes a family with its parent: a child is never deleted before it, an orphan on its own", async () => {
    const old = Date.now() - 2 * 86_400_000
    const seeded: Array<readonly [string, TaskRecord.Status, string | undefined]> = [
      ["fam-gc", "completed", undefined],
      ["fam-gc.a", "completed", "fam-gc"],
      ["fam-gc.b", "failed", "fam-gc"],
      ["fam-live", "paused", undefined],
      ["fam-live.a", "completed", "fam-live"],
      ["orphan.x", "completed", "gone"]
    ]
    await onStore((store) =>
      Effect.forEach(seeded, ([id, status, parent]) =>
        store.create({
          id,
          kind: "slow-stop",
          status,
          progress: { done: 0 },
          attempts: 1,
          createdAt: old,
          updatedAt: old,
          input: new Uint8Array(2),
          ...(parent === undefined ? {} : { parent })
        })
      )
    )
    const gc = await vltask(["gc", "--older-than", "1d"])
    assert.strictEqual(gc.code, 0, gc.stderr)
    const deleted = gc.stdout
      .split("\n")
      .filter((l) => /^deleted (fam|orphan)/.test(l))
      .map((l) => l.split(" ")[1])
    assert.deepStrictEqual(deleted.sort(), ["fam-gc", "orphan.x"])
    for (const [id] of seeded) {
      const exists = (await vltask(["show", id])).code === 0
      // The paused parent stays, and so does its completed child.
      assert.strictEqual(exists, id.startsWith("fam-live"), id)
    }
  }, 60_000)

  it("delete and gc remove finished tasks", async () => {
    const dry = await vltask(["gc", "--older-than", "0s", "--status", "cancelled", "--dry-run"])
    assert.include(dry.stdout, "would delete victim")
    const gc = await vltask(["gc", "--older-than", "0s", "--status", "cancelled"])
    assert.strictEqual(gc.code, 0, gc.stderr)
    assert.include(gc.stdout, "deleted victim")
    const gone = await vltask(["show", "victim"])
    assert.strictEqual(gone.code, 3)
    const deleted = await vltask(["delete", "watched"])
    assert.strictEqual(deleted.code, 0, deleted.stderr)
    assert.strictEqual((await vltask(["show", "watched"])).code, 3)
  }, 60_000)

  it("a store write failing mid-run (ENOSPC on write, EIO on fsync and rename) ends it within 2 s in one line; it resumes", async () => {
    const faults = join(repo, "test", "fixtures", "faults.mjs")
    for (const fault of ["write:ENOSPC", "fsync:EIO", "rename:EIO"]) {
      const [call, errno] = fault.split(":") as [string, string]
      const id = `fault-${call}`
      const trigger = join(work, `${id}.trigger`)
      const run = start(["run", "slow-stop", "--id", id, "--input", '{"n":400,"stopMs":10}'], {
        config: testConfig,
        imports: [faults],
        env: { VLTASK_FAULT: fault, VLTASK_FAULT_TRIGGER: trigger, VLTASK_FAULT_UNDER: join(work, "store") }
      })
      await waitUntil(async () => (await onStore((s) => s.get(id))).state !== undefined, "a checkpoint")
      const checkpointed = await onStore((s) => s.get(id))
      writeFileSync(trigger, "")
      const code = await run.done
      const exitedAt = Date.now()
      rmSync(trigger)
      const firedAt = Number(readFileSync(`${trigger}.fired`, "utf8"))
      assert.strictEqual(code, 1, run.errors())
      assert.isAtMost(exitedAt - firedAt, 2000, "the command ends within 2 s of the failure")
      const lines = run.errors().trim().split("\n")
      assert.strictEqual(lines.length, 1, run.errors())
      assert.include(lines[0], `Task ${id} stopped`)
      assert.include(lines[0], errno)
      assert.include(lines[0], join(work, "store", "tasks"))
      assert.include(lines[0], "The last checkpoint is intact")
      assert.include(lines[0], `vltask resume ${id}`)
      assert.notInclude(run.errors(), "    at ")
      // Nothing acknowledged is lost: the record reads back whole, with at least the checkpoint seen before.
      const after = await onStore((s) => s.get(id))
      const state = (r: TaskRecord.TaskRecord) => (JSON.parse(Buffer.from(r.state!).toString()) as { i: number }).i
      assert.isAtLeast(state(after), state(checkpointed))
      assert.include((await vltask(["show", id, "--json"])).stdout, '"resumable": true')
      const resumed = await vltask(["resume", id], { config: testConfig })
      assert.strictEqual(resumed.code, 0, resumed.stderr)
      assert.include(resumed.stdout, `Completed ${id}: 400`)
    }
  }, 120_000)

  it("a planted symlink .log and FIFO .want neither hang a run nor write through the link", async () => {
    const dir = join(work, "store", "tasks")
    const target = join(work, "precious.txt")
    writeFileSync(target, "keep me")
    mkdirSync(dir, { recursive: true })
    symlinkSync(target, join(dir, "planted.log"))
    execFileSync("mkfifo", [join(dir, "planted.want")])
    const run = await vltask(["run", "fails", "--id", "planted", "--input", '{"at":1}'], { config: testConfig })
    // It ran (and failed as the task does) rather than hang on the FIFO.
    assert.strictEqual(run.code, 5, run.stderr)
    assert.strictEqual(readFileSync(target, "utf8"), "keep me")
    const list = await vltask(["list"])
    assert.strictEqual(list.code, 0, list.stderr)
    rmSync(join(dir, "planted.log"), { force: true })
    rmSync(join(dir, "planted.want"), { force: true })
    await vltask(["delete", "planted", "--force"])
  }, 60_000)

  it("a damaged record: list skips it and says so, show says so, delete --force forgets it, gc skips it and goes on", async () => {
    for (const id of ["sound-1", "broken", "sound-2"]) {
      const done = await vltask(["run", "slow-stop", "--id", id, "--input", '{"n":3,"stopMs":10}'], {
        config: testConfig
      })
      assert.strictEqual(done.code, 0, done.stderr)
    }
    const path = join(work, "store", "tasks", "broken.task")
    const bytes = readFileSync(path)
    bytes[bytes.length - 6]! ^= 0xff // in the record's data, past its metadata: only the checksum can tell
    writeFileSync(path, bytes)

    const list = await vltask(["list", "--json"])
    assert.strictEqual(list.code, 0, list.stderr)
    const ids = (JSON.parse(list.stdout) as Array<{ id: string }>).map((t) => t.id)
    assert.notInclude(ids, "broken")
    assert.include(ids, "sound-1")
    assert.match(list.stderr, /warning: skipping task broken: .*Corrupt/)
    const show = await vltask(["show", "broken"])
    assert.strictEqual(show.code, 1)
    assert.include(show.stderr, "Corrupt")
    assert.include(show.stderr, "vltask delete broken --force")

    // gc: the dry run and the real run name the same tasks, and neither stops at the damaged one.
    const args = ["gc", "--older-than", "0s", "--json"]
    const dry = JSON.parse((await vltask([...args, "--dry-run"])).stdout) as {
      deleted: Array<{ id: string }>
      skipped: Array<{ id: string }>
    }
    const real = await vltask(args)
    assert.strictEqual(real.code, 0, real.stderr)
    const done = JSON.parse(real.stdout) as typeof dry
    assert.deepStrictEqual(done.deleted, dry.deleted)
    assert.deepStrictEqual(
      done.skipped.map((t) => t.id),
      ["broken"]
    )
    assert.deepStrictEqual(
      dry.skipped.map((t) => t.id),
      ["broken"]
    )
    assert.includeMembers(
      done.deleted.map((t) => t.id),
      ["sound-1", "sound-2"]
    )
    assert.strictEqual((await vltask(["show", "sound-2"])).code, 3)

    assert.strictEqual((await vltask(["delete", "broken"])).code, 1)
    const forced = await vltask(["delete", "broken", "--force", "--json"])
    assert.strictEqual(forced.code, 0, forced.stderr)
    assert.deepStrictEqual(JSON.parse(forced.stdout), { id: "broken", deleted: true })
    assert.isFalse(existsSync(path))
    assert.isFalse(existsSync(join(work, "store", "tasks", "broken.log")))
  }, 90_000)
})

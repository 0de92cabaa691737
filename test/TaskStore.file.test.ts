import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { NodeFileSystem } from "@effect/platform-node"
import { appendFileSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs"
import { spawnSync } from "node:child_process"
import { Either } from "effect"
import { Lease } from "../src/index.js"
import { join } from "node:path"
import * as File from "../src/TaskStore/File.js"
import { conformance } from "./TaskStore.conformance.js"
import { bytes, increment, record } from "./helpers/store.js"
import { inTempDir, tempDir } from "./helpers/tempDir.js"

conformance("file", () => inTempDir((directory) => File.layer({ directory })))

describe("file store", () => {
  it.scoped("two store instances on one directory in one process keep compare-and-swap", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const a = yield* File.make({ directory: dir }).pipe(Effect.provide(NodeFileSystem.layer))
      const b = yield* File.make({ directory: dir }).pipe(Effect.provide(NodeFileSystem.layer))
      yield* a.create(record("c"))
      yield* Effect.all([Effect.repeatN(increment(a, "c"), 149), Effect.repeatN(increment(b, "c"), 149)], {
        concurrency: 2
      })
      const info = yield* b.getInfo("c")
      assert.deepStrictEqual([info.progress.done, info.revision], [300, 301])
      assert.deepStrictEqual(readdirSync(join(dir, "tasks")), ["c.task"])
    })
  )

  it.scoped("a record file starts with the magic number and format version", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const store = yield* File.make({ directory: dir }).pipe(Effect.provide(NodeFileSystem.layer))
      yield* store.create(record("m"))
      const bytes = yield* Effect.promise(() =>
        import("node:fs/promises").then((fs) => fs.readFile(join(dir, "tasks", "m.task")))
      )
      assert.strictEqual(bytes.subarray(0, 8).toString("latin1"), "VLTASK\r\n")
      assert.strictEqual(bytes.readUInt32LE(8), 1)
    })
  )

  it.scoped(
    "opening sweeps what dead processes left (temp files, set-aside locks, locks, stale hints) and keeps the rest",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const tasks = join(dir, "tasks")
        mkdirSync(tasks, { recursive: true })
        const dead = spawnSync(process.execPath, ["-e", "0"]).pid!
        const me = Lease.self()
        writeFileSync(join(tasks, `.tmp-${dead}-1-1`), "half a record")
        writeFileSync(join(tasks, `.break-${dead}-1-ab`), "")
        writeFileSync(join(tasks, `.tmp-${me.pid}-${me.processStart}-99`), "being written by this process")
        symlinkSync(`L:${dead}:1:other:1`, join(tasks, "a.lock"))
        symlinkSync("not a lock at all", join(tasks, "b.lock"))
        writeFileSync(join(tasks, "c.want"), `W:other:${Date.now() - 60_000}`)
        writeFileSync(join(tasks, "d.want"), `W:other:${Date.now() + 60_000}`)
        writeFileSync(join(tasks, "e.want"), "not a hint")
        writeFileSync(join(tasks, "f.want"), "W:other")
        yield* File.make({ directory: dir }).pipe(Effect.provide(NodeFileSystem.layer))
        assert.deepStrictEqual(readdirSync(tasks).sort(), [`.tmp-${me.pid}-${me.processStart}-99`, "d.want"])
      })
  )

  it.scoped("metadata larger than the first read of a record is read whole", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const store = yield* File.make({ directory: dir }).pipe(Effect.provide(NodeFileSystem.layer))
      const reason = "r".repeat(20_000)
      yield* store.create(record("big-meta", { reason, state: bytes("s") }))
      const fresh = yield* File.make({ directory: dir }).pipe(Effect.provide(NodeFileSystem.layer))
      assert.strictEqual((yield* fresh.getInfo("big-meta")).reason, reason)
      assert.strictEqual((yield* fresh.list()).items[0]?.reason, reason)
    })
  )

  it.scoped("a log torn by a crash mid-line is read without the torn line and appended on a fresh line", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const store = yield* File.make({ directory: dir }).pipe(Effect.provide(NodeFileSystem.layer))
      yield* store.create(record("torn"))
      yield* store.appendLogs("torn", [{ time: 1, level: "INFO", message: "whole" }])
      appendFileSync(join(dir, "tasks", "torn.log"), '{"seq":2,"time":2,"lev')
      yield* store.appendLogs("torn", [{ time: 3, level: "INFO", message: "after" }])
      const lines = yield* store.readLogs("torn")
      assert.deepStrictEqual(
        lines.map((l) => [l.seq, l.message]),
        [
          [1, "whole"],
          [2, "after"]
        ]
      )
      assert.isTrue(readFileSync(join(dir, "tasks", "torn.log"), "utf8").endsWith("\n"))
    })
  )

  it.scoped("a corrupt record can be deleted outright, but not by revision", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const store = yield* File.make({ directory: dir }).pipe(Effect.provide(NodeFileSystem.layer))
      yield* store.create(record("bad"))
      yield* store.appendLogs("bad", [{ time: 1, level: "INFO", message: "x" }])
      writeFileSync(join(dir, "tasks", "bad.task"), "garbage")
      const byRevision = yield* Effect.either(store.delete("bad", 1))
      assert.isTrue(Either.isLeft(byRevision) && byRevision.left._tag === "TaskStoreError")
      yield* store.delete("bad")
      assert.deepStrictEqual(readdirSync(join(dir, "tasks")), [])
    })
  )
})

import { assert, describe, it } from "@effect/vitest"
import { Config, Effect, Logger } from "effect"
import { NodeFileSystem } from "@effect/platform-node"
import {
  appendFileSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  linkSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  watch,
  writeFileSync
} from "node:fs"
import { spawnSync } from "node:child_process"
import { Either } from "effect"
import { Holder, TaskStore } from "../src/index.js"
import { join } from "node:path"
import * as File from "../src/TaskStore/File.js"
import * as FileSystemSync from "../src/internal/file/fileSystemSync.js"
import { conformance } from "./TaskStore.conformance.js"
import { bytes, increment, record } from "./helpers/store.js"
import { inTempDir, tempDir } from "./helpers/tempDir.js"
import { warningCollector } from "./helpers/logs.js"

conformance("file", () => inTempDir((directory) => File.layer({ directory })), { writesAtOnce: "sync" })

describe("file store", () => {
  it.scoped("a watcher of the records' directory hears of the record, never of the temp files written for it", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const store = yield* File.make({ directory: dir }).pipe(Effect.provide(FileSystemSync.layer))
      const heard: Array<string> = []
      const watcher = watch(join(dir, "tasks"), (_, name) => {
        if (name !== null) heard.push(name)
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => watcher.close()))
      yield* store.create(record("w", { state: bytes("0") }))
      for (let revision = 1; revision <= 5; revision++) {
        yield* store.update("w", revision, { state: bytes(String(revision)) })
      }
      yield* store.appendLogs("w", [{ time: 1, level: "INFO", message: "x" }])
      // The kernel's events reach the watcher once the event loop turns.
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 200)))
      assert.include(heard, "w.task")
      assert.deepStrictEqual(
        heard.filter((name) => name.startsWith(".tmp")),
        [],
        "temp files are made, written and renamed in .tmp/, which the watch does not see"
      )
      assert.strictEqual(Buffer.from((yield* store.get("w")).state!).toString(), "5")
    })
  )

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
      // The record, the directories of files being written and of announcements (both empty), and each open store's
      // holder file (which its locks link to); no lock left.
      const names = readdirSync(join(dir, "tasks"))
      assert.deepStrictEqual(names.filter((n) => !n.startsWith(".holder-")).sort(), [".signals", ".tmp", "c.task"])
      assert.deepStrictEqual(readdirSync(join(dir, "tasks", ".tmp")), [])
      assert.deepStrictEqual(readdirSync(join(dir, "tasks", ".signals")), [])
      assert.strictEqual(names.filter((n) => n.startsWith(`.holder-${process.pid}-`)).length, 2)
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
    "opening sweeps what dead processes left (temp files, set-aside locks, locks, holder files, stale hints, announcements) and keeps the rest",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const tasks = join(dir, "tasks")
        mkdirSync(tasks, { recursive: true })
        const dead = spawnSync(process.execPath, ["-e", "0"]).pid!
        const me = Holder.self()
        // Temp files where this version makes them, and beside the records, where versions before did.
        mkdirSync(join(tasks, ".tmp"))
        writeFileSync(join(tasks, ".tmp", `.tmp-${dead}-1-2`), "half a record")
        writeFileSync(join(tasks, ".tmp", `.tmp-${me.pid}-${me.processStart}-98`), "being written by this process")
        writeFileSync(join(tasks, `.tmp-${dead}-1-1`), "half a record")
        writeFileSync(join(tasks, `.break-${dead}-1-ab`), "")
        writeFileSync(join(tasks, `.tmp-${me.pid}-${me.processStart}-99`), "being written by this process")
        // An announcement a crash left between its two calls (its news was heard when it was made, or never will be).
        mkdirSync(join(tasks, ".signals"))
        writeFileSync(join(tasks, ".signals", "x"), "")
        symlinkSync(`L:${dead}:1:other:1`, join(tasks, "a.lock"))
        symlinkSync("not a lock at all", join(tasks, "b.lock"))
        // A lock of this version: a hard link to its store's holder file, which names a dead process.
        writeFileSync(join(tasks, `.holder-${dead}-1-other`), `L:${dead}:1:other:h`)
        linkSync(join(tasks, `.holder-${dead}-1-other`), join(tasks, "h.lock"))
        writeFileSync(join(tasks, `.holder-${me.pid}-${me.processStart}-live`), `L:${me.pid}:${me.processStart}:live:h`)
        writeFileSync(join(tasks, "c.want"), `W:other:${Date.now() - 60_000}`)
        writeFileSync(join(tasks, "d.want"), `W:other:${Date.now() + 60_000}`)
        writeFileSync(join(tasks, "e.want"), "not a hint")
        writeFileSync(join(tasks, "f.want"), "W:other")
        writeFileSync(join(tasks, "g.want"), `X:other:${Date.now() + 60_000}`)
        yield* File.make({ directory: dir }).pipe(Effect.provide(NodeFileSystem.layer))
        const left = readdirSync(tasks).sort()
        assert.deepStrictEqual(
          left.filter((n) => !n.startsWith(`.holder-${me.pid}-`)),
          [".signals", ".tmp", `.tmp-${me.pid}-${me.processStart}-99`, "d.want"]
        )
        assert.deepStrictEqual(readdirSync(join(tasks, ".signals")), [])
        assert.deepStrictEqual(readdirSync(join(tasks, ".tmp")), [`.tmp-${me.pid}-${me.processStart}-98`])
        // A live process's holder file stays (this one's own, which the store just made, and the one planted).
        assert.strictEqual(left.filter((n) => n.startsWith(`.holder-${me.pid}-`)).length, 2)
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
      // Lines that parse but are no log lines (a number, another object, a wrong type) are skipped too.
      appendFileSync(join(dir, "tasks", "torn.log"), '42\n{"x":1}\n{"seq":"2","message":"m"}\n{"seq":2,"message":7}\n')
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
      assert.deepStrictEqual(
        readdirSync(join(dir, "tasks"))
          .filter((n) => !n.startsWith(".holder-"))
          .sort(),
        [".signals", ".tmp"]
      )
    })
  )

  it.scoped("list shows records only (not a hidden copy, logs or locks) and warns about a corrupt one", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const tasks = join(dir, "tasks")
      const store = yield* File.make({ directory: dir }).pipe(Effect.provide(NodeFileSystem.layer))
      yield* store.create(record("a"))
      yield* store.create(record("b"))
      yield* store.create(record("c"))
      yield* store.appendLogs("a", [{ time: 1, level: "INFO", message: "x" }])
      copyFileSync(join(tasks, "a.task"), join(tasks, ".hidden.task"))
      writeFileSync(join(tasks, "b.task"), "garbage")
      const { warnings, collect } = warningCollector()
      const page = yield* store.list().pipe(Effect.provide(Logger.replace(Logger.defaultLogger, collect)))
      assert.deepStrictEqual(
        page.items.map((i) => i.id),
        ["a", "c"]
      )
      assert.strictEqual(warnings.length, 1)
      assert.match(
        warnings[0]!,
        /^Skipping task b in list: Task store read failed \(Corrupt; task "b", file .*b\.task\)/
      )
      assert.include(warnings[0]!, "the record file is corrupt: it is 7 bytes, shorter than the preamble")
      const got = yield* Effect.flip(store.getInfo("b"))
      assert.strictEqual(got._tag, "TaskStoreError")
      if (got._tag === "TaskStoreError") assert.deepStrictEqual([got.reason, got.operation], ["Corrupt", "read"])
      // A record cut after its preamble: its size says so.
      const whole = readFileSync(join(tasks, "c.task"))
      writeFileSync(join(tasks, "c.task"), whole.subarray(0, whole.length - 1))
      const cut = yield* Effect.flip(store.getInfo("c"))
      assert.include(cut.message, `it is ${whole.length - 1} bytes but its preamble says ${whole.length}`)
    })
  )

  it.scoped("File.layerConfig takes its directory from Config", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const info = yield* Effect.flatMap(TaskStore.TaskStore, (s) => s.create(record("cfg"))).pipe(
        Effect.provide(File.layerConfig(Config.succeed(dir)))
      )
      assert.strictEqual(info.revision, 1)
      assert.isTrue(existsSync(join(dir, "tasks", "cfg.task")))
    })
  )
})

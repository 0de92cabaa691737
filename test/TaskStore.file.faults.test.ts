/**
 * The file store under injected I/O faults, byte-level corruption and hostile ids, through a wrapped real FileSystem.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import type { TaskStore } from "../src/index.js"
import * as File from "../src/TaskStore/File.js"
import { Faults, type Fault, layer as faultyLayer, type Plan } from "./helpers/faultyFileSystem.js"
import { tempDir } from "./helpers/tempDir.js"
import { everyOperation } from "./TaskStore.conformance.js"
import { record, tempFilesIn } from "./helpers/store.js"

const bytes = (text: string) => new TextEncoder().encode(text)
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : Buffer.from(b).toString("utf8"))

const openStore = (dir: string, faults: Faults) =>
  File.make({ directory: dir }).pipe(Effect.provide(faultyLayer(faults)))

/** One checkpoint (an update of the state) with `plan` applied, then the disk inspected and reread cleanly. */
const checkpointWith = (plan: Plan | undefined) =>
  Effect.gen(function* () {
    const dir = yield* tempDir
    const faults = new Faults()
    const store = yield* openStore(dir, faults)
    yield* store.create(record("t", { state: bytes("A".repeat(300)) }))
    faults.arm(plan)
    const result = yield* Effect.either(store.update("t", 1, { state: bytes("B".repeat(300)), status: "running" }))
    const log = [...faults.log]
    faults.disarm()
    const names = tempFilesIn(join(dir, "tasks"))
    const fresh = yield* openStore(dir, new Faults())
    const reread = yield* Effect.either(fresh.get("t"))
    return { result, log, names, reread, fresh }
  })

const isTemp = (line: string) => line.includes("/.tmp/.tmp-")
const line = { time: 1, level: "INFO", message: "line" } as const

describe("file store under faults", () => {
  it.scoped("a checkpoint is write, fsync(file), rename, fsync(dir), in that order, as system calls", () =>
    Effect.gen(function* () {
      const { result, log } = yield* checkpointWith(undefined)
      assert.isTrue(Either.isRight(result))
      const lastWrite = log.findLastIndex((l: string) => l.startsWith("write ") && isTemp(l))
      const syncFile = log.findIndex((l) => l.startsWith("fsync ") && isTemp(l))
      const rename = log.findIndex((l) => l.startsWith("rename ") && isTemp(l))
      const syncDir = log.findIndex((l) => l.startsWith("fsync ") && l.endsWith("/tasks"))
      assert.isTrue(lastWrite >= 0 && syncFile > lastWrite && rename > syncFile && syncDir > rename, log.join("\n"))
    })
  )

  it.scoped("an uncontended checkpoint is these system calls and no others (the direct path, with the cache)", () =>
    Effect.gen(function* () {
      const { result, log } = yield* checkpointWith(undefined)
      assert.isTrue(Either.isRight(result))
      const shown = log.map((l) => l.replace(/\/[^ ]*\/tasks/, "…").replace(/\.tmp\/\.tmp-[0-9-]+/, ".tmp/…"))
      assert.deepStrictEqual(shown, [
        "stat …/t.want", // a waiter's hint (none)
        "link …/t.lock", // the lock: a link to the store's holder file
        "open …/t.task", // the cache check: the preamble's nonce
        "fstat …/t.task",
        "read …/t.task",
        "open …/.tmp/…", // the new record, created: not fstat'ed
        "write …/.tmp/…",
        "fsync …/.tmp/…",
        "rename …/.tmp/…",
        "fsync …",
        "unlink …/t.lock"
      ])
    })
  )

  it.scoped("failing each step of a checkpoint, once and persistently, never damages the previous one", () =>
    Effect.gen(function* () {
      const clean = yield* checkpointWith(undefined)
      const steps = clean.log.length
      const renameAt = clean.log.findIndex((l) => l.startsWith("rename ") && isTemp(l)) + 1
      assert.isTrue(steps >= 8, clean.log.join("\n"))
      const faults: Array<Fault> = ["EIO", "ENOSPC", "EROFS", "short"]
      let failures = 0
      for (const fault of faults) {
        for (const persistent of [false, true]) {
          for (let at = 1; at <= steps; at++) {
            const where = `${fault}${persistent ? " (persistent)" : ""} at step ${at}: ${clean.log[at - 1]}`
            const { names, reread, result, fresh } = yield* checkpointWith({ at, fault, persistent })
            assert.deepStrictEqual(names, [], `no temp file left: ${where}`)
            assert.isTrue(Either.isRight(reread), `still readable: ${where}`)
            const state = Either.isRight(reread) ? text(reread.right.state) : undefined
            assert.include(["A".repeat(300), "B".repeat(300)], state, `not damaged: ${where}`)
            if (Either.isLeft(result)) {
              failures++
              const error = result.left
              assert.strictEqual(error._tag, "TaskStoreError", where)
              if (error._tag === "TaskStoreError") {
                assert.strictEqual(error.errno, fault, `carries the errno: ${where}`)
                assert.include(error.message, fault)
              }
              if (at < renameAt) assert.strictEqual(state, "A".repeat(300), `the old state stays: ${where}`)
            } else {
              // Only a short write (which is retried), a failed lock release or a failed look at the fairness hint
              // may go unnoticed by the caller.
              const step = clean.log[at - 1]!
              assert.isTrue(
                fault === "short" || (step.startsWith("unlink ") && step.endsWith(".lock")) || step.endsWith(".want"),
                `a fault was swallowed: ${where}`
              )
              assert.strictEqual(state, "B".repeat(300), where)
            }
            // Nothing is wedged: a clean store can checkpoint again.
            const info = yield* fresh.getInfo("t")
            yield* fresh.update("t", info.revision, { state: bytes("C") })
          }
        }
      }
      assert.isTrue(failures > steps * 4, `most injected faults surfaced (${failures})`)
    })
  )

  it.scoped("a flipped byte or a truncation anywhere is a typed corrupt-record error naming the file", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const store = yield* openStore(dir, new Faults())
      yield* store.create(record("victim", { status: "paused", state: bytes(JSON.stringify({ n: 41 })) }))
      yield* store.create(record("healthy", { status: "paused" }))
      const path = join(dir, "tasks", "victim.task")
      const original = readFileSync(path)
      const expectCorrupt = (what: string) =>
        Effect.gen(function* () {
          const got = yield* Effect.either(store.get("victim"))
          assert.isTrue(Either.isLeft(got), `${what}: read back silently`)
          if (Either.isLeft(got)) {
            assert.strictEqual(got.left._tag, "TaskStoreError", what)
            if (got.left._tag === "TaskStoreError") {
              assert.strictEqual(got.left.reason, "Corrupt", what)
              assert.strictEqual(got.left.path, path, what)
              assert.include(got.left.message, "victim.task")
            }
          }
        })
      for (let i = 0; i < original.length; i++) {
        const flipped = Buffer.from(original)
        flipped[i] = flipped[i]! ^ 0xff
        writeFileSync(path, flipped)
        yield* expectCorrupt(`byte ${i} flipped`)
      }
      for (let length = 0; length < original.length; length++) {
        writeFileSync(path, original.subarray(0, length))
        yield* expectCorrupt(`truncated to ${length}`)
        if (length % 50 === 0) {
          const listed = yield* store.list({ status: "paused" })
          assert.deepStrictEqual(
            listed.items.map((i) => i.id),
            ["healthy"],
            "the truncated record is not listed, the others stay listable"
          )
        }
      }
      writeFileSync(path, original)
      assert.strictEqual(text((yield* store.get("victim")).state), JSON.stringify({ n: 41 }))
      assert.deepStrictEqual(tempFilesIn(join(dir, "tasks")), [])
      const missing = yield* Effect.either(store.get("absent"))
      assert.isTrue(Either.isLeft(missing) && missing.left._tag === "TaskNotFound", "missing is not corrupt")
    })
  )

  it.scoped("unsafe ids are rejected before any file-system call", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const faults = new Faults()
      const store: TaskStore.Service = yield* openStore(dir, faults)
      const bad = ["", "..", "../x", "a/b", "a\\b", "a\0b", "x".repeat(201), "a\u0001b", "é".repeat(101)]
      for (const id of bad) {
        faults.arm()
        const results = yield* everyOperation(store, id)
        assert.deepStrictEqual(faults.log, [], `id ${JSON.stringify(id)} reached the file system`)
        for (const r of results) assert.isTrue(Either.isLeft(r) && r.left._tag === "InvalidTaskId")
      }
    })
  )

  it.scoped("every failed operation names itself, the task and the file, with the errno", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const faults = new Faults()
      const store = yield* openStore(dir, faults)
      yield* store.create(record("t"))
      yield* store.appendLogs("t", [{ time: 1, level: "INFO", message: "line" }])
      const tasks = join(dir, "tasks")
      const cases: ReadonlyArray<
        readonly [string, (call: string) => boolean, Effect.Effect<unknown, { readonly _tag: string }>, string]
      > = [
        ["create", (c) => c.startsWith("open ") && isTemp(c), store.create(record("u")), join(tasks, "u.task")],
        // The log a deleted task of the same id left (planted below): a create that cannot clear it fails.
        ["create", (c) => c === `unlink ${join(tasks, "v.log")}`, store.create(record("v")), join(tasks, "v.log")],
        ["update", (c) => c.startsWith("rename "), store.update("t", 1, { reason: "x" }), join(tasks, "t.task")],
        ["appendLogs", (c) => c.startsWith("write "), store.appendLogs("t", [line]), join(tasks, "t.log")],
        ["readLogs", (c) => c.startsWith("read "), store.readLogs("t"), join(tasks, "t.log")],
        ["read", (c) => c.startsWith("read "), store.get("t"), join(tasks, "t.task")],
        ["read", (c) => c.startsWith("read "), store.getInfo("t"), join(tasks, "t.task")],
        ["create", (c) => c === `stat ${join(tasks, "w.task")}`, store.create(record("w")), join(tasks, "w.task")],
        ["lock", (c) => c.startsWith("link "), store.appendLogs("t", [line]), join(tasks, "t.lock")],
        // Over the bound, the log is rewritten through a temp file.
        [
          "appendLogs",
          (c) => c.startsWith("rename ") && isTemp(c),
          store.appendLogs("t", [line, line], { keep: 1 }),
          join(tasks, "t.log")
        ],

        ["list", (c) => c.startsWith("readdir "), store.list(), tasks],
        ["delete", (c) => c === `unlink ${join(tasks, "t.log")}`, store.delete("t"), join(tasks, "t.log")],
        ["delete", (c) => c === `unlink ${join(tasks, "t.task")}`, store.delete("t"), join(tasks, "t.task")],
        ["delete", (c) => c === `fsync ${tasks}`, store.delete("t"), tasks]
      ]
      writeFileSync(join(tasks, "v.log"), `${JSON.stringify({ seq: 1, time: 1, level: "INFO", message: "old" })}\n`)
      for (const [operation, match, effect, path] of cases) {
        // A delete that failed part-way may have removed the record: put it back, with a log line.
        if (!existsSync(join(tasks, "t.task"))) yield* store.create(record("t"))
        if (!existsSync(join(tasks, "t.log"))) yield* store.appendLogs("t", [line])
        faults.armMatching("EIO", match)
        const failed = yield* Effect.flip(effect)
        faults.disarm()
        assert.strictEqual(failed._tag, "TaskStoreError", operation)
        if (failed._tag !== "TaskStoreError") continue
        const e = failed as unknown as { operation: string; errno?: string; path?: string; id?: string }
        assert.deepStrictEqual([e.operation, e.errno, e.path], [operation, "EIO", path])
        if (operation !== "list") assert.isString(e.id, operation)
        assert.deepStrictEqual(tempFilesIn(tasks), [], `no temp file left (${operation})`)
      }
      // A delete that cannot read the record fails before it removes anything.
      if (!existsSync(join(tasks, "t.task"))) yield* store.create(record("t"))
      faults.armMatching("EIO", (c) => c === `read ${join(tasks, "t.task")}`)
      const unread = yield* Effect.flip(store.delete("t"))
      faults.disarm()
      assert.strictEqual(unread._tag, "TaskStoreError")
      assert.isTrue(existsSync(join(tasks, "t.task")), "the delete that could not read removed nothing")
    })
  )

  it.scoped("a store that cannot open fails with an open error naming the directory, at every step of opening", () =>
    Effect.gen(function* () {
      const root = yield* tempDir
      let n = 0
      for (const step of ["stat", "mkdir", "fsync", "open", "readdir"] as const) {
        const dir = join(root, `store-${++n}`, "nested")
        const faults = new Faults()
        faults.armMatching("EIO", (c) => c.startsWith(`${step} `))
        const failed = yield* Effect.flip(openStore(dir, faults))
        const hit = faults.log.find((c) => c.startsWith(`${step} `))
        faults.disarm()
        assert.isDefined(hit, step)
        assert.strictEqual(failed.operation, "open", step)
        assert.strictEqual(failed.errno, "EIO", step)
        assert.strictEqual(`${step} ${failed.path}`, hit, step)
      }
    })
  )
})

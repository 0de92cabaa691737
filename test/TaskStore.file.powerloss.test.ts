/**
 * The file store under a power cut at every system call of a create, a checkpoint, a run of checkpoints and a delete
 * (see `helpers/powerLoss.ts` for the model). After each cut the disk a reboot would find is opened with the real
 * file system: the record must be readable and hold the last acknowledged state or a later one, an acknowledged
 * delete must stay deleted, and the store must be writable again.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { TaskStore } from "../src/index.js"
import * as File from "../src/TaskStore/File.js"
import * as FileSystemSync from "../src/internal/file/fileSystemSync.js"
import { PowerLoss } from "./helpers/powerLoss.js"
import { record, tempFilesIn } from "./helpers/store.js"

const bytes = (text: string) => new TextEncoder().encode(text)
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : Buffer.from(b).toString("utf8"))

/** A scenario: what runs before the cut is armed (`setup`), and the acknowledged steps counted after it. */
interface Scenario {
  readonly setup: (store: TaskStore.Service) => Effect.Effect<void, unknown>
  /** Runs the steps in order; returns how many of them were acknowledged before one failed. */
  readonly steps: ReadonlyArray<(store: TaskStore.Service) => Effect.Effect<unknown, unknown>>
  /** Checks the rebooted store, given how many steps were acknowledged. */
  readonly check: (store: TaskStore.Service, acked: number, where: string) => Effect.Effect<void, unknown>
}

interface Round {
  readonly acked: number
  readonly calls: number
}

/** Runs `scenario` with the power cut at call `cut` (none: only counts), then checks what a reboot finds. */
const runRound = (scenario: Scenario, cut: number | undefined, armBeforeOpen: boolean) =>
  Effect.gen(function* () {
    const base = mkdtempSync(join(tmpdir(), "vltask-power-"))
    try {
      const disk = join(base, "disk")
      mkdirSync(disk)
      const power = new PowerLoss(disk)
      if (armBeforeOpen) power.cutAt(cut)
      const opened = yield* Effect.either(
        File.make({ directory: join(disk, "store") }).pipe(Effect.provide(FileSystemSync.layerWith(power.syscalls)))
      )
      let acked = 0
      if (Either.isRight(opened)) {
        const store = opened.right
        if (!armBeforeOpen) {
          yield* scenario.setup(store)
          power.cutAt(cut)
        }
        for (const step of scenario.steps) {
          const done = yield* Effect.either(step(store))
          if (Either.isLeft(done)) break
          acked++
        }
      }
      const calls = power.calls
      const rebooted = join(base, "rebooted")
      mkdirSync(rebooted)
      power.materialize(rebooted)
      const where = `power cut at call ${cut ?? "none"} of ${calls}, ${acked} step(s) acknowledged`
      const store = yield* File.make({ directory: join(rebooted, "store"), lockTimeout: "2 seconds" })
      yield* scenario.check(store, acked, where)
      const tasks = join(rebooted, "store", "tasks")
      const left = [...tempFilesIn(tasks), ...readdirSync(tasks).filter((n) => n.endsWith(".lock"))]
      assert.deepStrictEqual(left, [], `the reopened store swept what the cut left: ${where}`)
      return { acked, calls } satisfies Round
    } finally {
      rmSync(base, { recursive: true, force: true })
    }
  }).pipe(Effect.scoped, Effect.provide(FileSystemSync.layer))

/** Every cut point of the scenario, one after the other. */
const everyCut = (scenario: Scenario, armBeforeOpen = false) =>
  Effect.gen(function* () {
    const clean = yield* runRound(scenario, undefined, armBeforeOpen)
    assert.strictEqual(clean.acked, scenario.steps.length, "without a cut every step is acknowledged")
    assert.isTrue(clean.calls >= scenario.steps.length * 4, `calls counted: ${clean.calls}`)
    const acks: Array<number> = []
    for (let cut = 1; cut <= clean.calls + 1; cut++) acks.push((yield* runRound(scenario, cut, armBeforeOpen)).acked)
    // The cuts reached every step: some rounds acknowledged none, some all.
    assert.strictEqual(acks[0], 0)
    assert.strictEqual(acks[acks.length - 1], scenario.steps.length)
    return clean.calls
  })

const stateOf = (store: TaskStore.Service, id: string, where: string) =>
  Effect.gen(function* () {
    const got = yield* Effect.either(store.get(id))
    if (Either.isLeft(got)) {
      assert.strictEqual(got.left._tag, "TaskNotFound", `${where}: ${got.left.message}`)
      return undefined
    }
    return { state: text(got.right.state), revision: got.right.revision }
  })

/** The store is usable after the reboot: a write goes through (no lock of before is waited for). */
const writable = (store: TaskStore.Service, id: string) =>
  Effect.flatMap(store.getInfo(id), (info) => store.update(id, info.revision, { reason: "after the reboot" }))

describe("file store under power loss", () => {
  it.effect("a create: once acknowledged it survives; before, it is absent or whole", () =>
    Effect.gen(function* () {
      yield* everyCut(
        {
          setup: () => Effect.void,
          steps: [(store) => store.create(record("t", { state: bytes("A") }))],
          check: (store, acked, where) =>
            Effect.gen(function* () {
              const found = yield* stateOf(store, "t", where)
              if (acked === 1) assert.deepStrictEqual(found, { state: "A", revision: 1 }, where)
              else assert.include([undefined, "A"], found?.state, where)
              if (found !== undefined) yield* writable(store, "t")
            })
        },
        true
      )
    })
  )

  it.effect("a checkpoint: never torn, never older than the last acknowledged one", () =>
    Effect.gen(function* () {
      const calls = yield* everyCut({
        setup: (store) => store.create(record("t", { state: bytes("A".repeat(500)) })),
        steps: [(store) => store.update("t", 1, { state: bytes("B".repeat(500)), status: "running" })],
        check: (store, acked, where) =>
          Effect.gen(function* () {
            const found = yield* stateOf(store, "t", where)
            assert.isDefined(found, `the record is there: ${where}`)
            if (acked === 1) assert.strictEqual(found?.state, "B".repeat(500), where)
            else assert.include(["A".repeat(500), "B".repeat(500)], found?.state, where)
            yield* writable(store, "t")
          })
      })
      assert.isTrue(calls >= 6)
    })
  )

  it.effect("a run of checkpoints: the state a reboot finds is at least the last acknowledged one", () =>
    Effect.gen(function* () {
      const states = ["s1", "s2", "s3", "s4"]
      yield* everyCut({
        setup: (store) => store.create(record("t", { state: bytes("s0") })),
        steps: states.map((s, i) => (store) => store.update("t", i + 1, { state: bytes(s) })),
        check: (store, acked, where) =>
          Effect.gen(function* () {
            const found = yield* stateOf(store, "t", where)
            const index = ["s0", ...states].indexOf(found?.state ?? "missing")
            assert.isTrue(index >= acked, `found ${found?.state}, acknowledged ${acked}: ${where}`)
            assert.strictEqual(found?.revision, index + 1, where)
          })
      })
    })
  )

  it.effect("a delete: once acknowledged the record stays gone; before, it is whole", () =>
    Effect.gen(function* () {
      yield* everyCut({
        setup: (store) =>
          Effect.zipRight(
            store.create(record("t", { state: bytes("A") })),
            store.appendLogs("t", [{ time: 1, level: "INFO", message: "before" }])
          ),
        steps: [(store) => store.delete("t")],
        check: (store, acked, where) =>
          Effect.gen(function* () {
            const found = yield* stateOf(store, "t", where)
            if (acked === 1) assert.isUndefined(found, `an acknowledged delete came back: ${where}`)
            else if (found !== undefined) assert.strictEqual(found.state, "A", where)
            // Whatever survived, the id can be used again without the old log showing up.
            if (found === undefined) {
              yield* store.create(record("t"))
              assert.deepStrictEqual(yield* store.readLogs("t"), [], where)
            }
          })
      })
    })
  )
})

import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { NodeFileSystem } from "@effect/platform-node"
import { readdirSync } from "node:fs"
import { join } from "node:path"
import * as File from "../src/TaskStore/File.js"
import { conformance } from "./TaskStore.conformance.js"
import { record } from "./helpers/store.js"
import { increment } from "./helpers/store.js"
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
})

import { assert, describe, it } from "@effect/vitest"
import * as TaskRecord from "../src/TaskRecord.js"

const record: TaskRecord.TaskRecord = {
  id: "a",
  kind: "k",
  status: "running",
  revision: 4,
  progress: { done: 1 },
  lease: { token: "t", holder: { host: "h", pid: 1, processStart: "1" }, expiresAt: 10 },
  reason: "resumed",
  attempts: 1,
  createdAt: 1,
  updatedAt: 2,
  input: new Uint8Array([1]),
  state: new Uint8Array([2])
}

describe("TaskRecord.applyPatch", () => {
  it("sets what the patch names, keeps the rest, and moves to the next revision", () => {
    const state = new Uint8Array([3])
    const next = TaskRecord.applyPatch(record, { state, progress: { done: 2 }, updatedAt: 3, polledAt: 3 })
    assert.deepStrictEqual(next, { ...record, state, progress: { done: 2 }, updatedAt: 3, polledAt: 3, revision: 5 })
    assert.strictEqual(record.revision, 4, "the record itself is not changed")
  })

  it("a key with undefined removes the field, beside keys it sets, adds, or clears that were never there", () => {
    const result = new Uint8Array([9])
    const before = { ...record }
    const next = TaskRecord.applyPatch(record, {
      status: "completed",
      lease: undefined,
      reason: undefined,
      failure: undefined,
      finishedAt: 5,
      result
    })
    const { lease: _lease, reason: _reason, ...kept } = record
    assert.deepStrictEqual(next, { ...kept, status: "completed", finishedAt: 5, result, revision: 5 })
    for (const key of ["lease", "reason", "failure"]) assert.isFalse(key in next, key)
    assert.deepStrictEqual(record, before, "the record itself is not changed")
    assert.deepStrictEqual(TaskRecord.info(next), {
      ...TaskRecord.info(kept as TaskRecord.TaskRecord),
      status: "completed",
      finishedAt: 5,
      revision: 5
    })
  })

  it("patching metadata with a state (a SQL store's known metadata) adds it; info leaves the byte fields out", () => {
    const known = TaskRecord.info(record)
    assert.deepStrictEqual(
      Object.keys(known).sort(),
      Object.keys(record)
        .filter((k) => k !== "input" && k !== "state")
        .sort()
    )
    const state = new Uint8Array([3])
    const next = TaskRecord.applyPatch(known as TaskRecord.TaskRecord, { state, progress: { done: 2 }, updatedAt: 3 })
    assert.deepStrictEqual(next, { ...known, state, progress: { done: 2 }, updatedAt: 3, revision: 5 } as never)
    assert.deepStrictEqual(TaskRecord.info(next), { ...known, progress: { done: 2 }, updatedAt: 3, revision: 5 })
    const ended = TaskRecord.applyPatch(next, { result: new Uint8Array([4]), error: new Uint8Array([5]) })
    for (const key of ["input", "state", "result", "error"]) assert.isFalse(key in TaskRecord.info(ended), key)
  })
})

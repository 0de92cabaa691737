/**
 * `npx tsx bench/objects.ts`: what building the runner's small objects costs, in ns per call (1e6 calls after 2e5 of
 * warm-up), for the shapes its hot path avoids and the ones it uses instead:
 *
 * - a literal that starts with a spread and goes on with properties of its own (V8 builds it slowly), against the
 *   same with the spread last, and `Object.assign`;
 * - `TaskRecord.applyPatch` of a patch that clears fields (once by `delete`, which made the copy a slow dictionary
 *   object), and `TaskRecord.info` of its result;
 * - a checkpoint's `applyPatch` of the known metadata (a state added to a record that has none: what a SQL store's
 *   update from a known revision does), and `TaskRecord.info` of it (the bytes left out again), against the same
 *   copies made with a literal's spreads and object rest, as they once were.
 */
import { applyPatch, info, type TaskInfo, type TaskRecord } from "../src/TaskRecord.js"

const time = (name: string, f: () => unknown) => {
  for (let i = 0; i < 2e5; i++) f()
  const start = process.hrtime.bigint()
  for (let i = 0; i < 1e6; i++) f()
  console.log(`${name.padEnd(44)} ${(Number(process.hrtime.bigint() - start) / 1e6).toFixed(0).padStart(6)} ns`)
}

const bytes = new Uint8Array(1)
const lease = { token: "t", holder: { host: "h", pid: 1, processStart: "1" }, expiresAt: 5 }
const ended = (now: number) => ({ lease: undefined, interrupt: undefined, progress: { done: 0 }, updatedAt: now })
const renewal = (now: number) => ({ lease, progress: { done: 0 }, updatedAt: now })
const created = () => ({
  id: "a",
  kind: "k",
  status: "running",
  lease,
  progress: { done: 0 },
  attempts: 1,
  createdAt: 1,
  updatedAt: 1,
  startedAt: 1,
  input: bytes
})

time("end patch, spread first", () => ({ ...ended(5), status: "completed", finishedAt: 5, result: bytes }))
time("end patch, spread last", () => ({ status: "completed", finishedAt: 5, result: bytes, ...ended(5) }))
time("checkpoint patch, spread first", () => ({ ...renewal(5), state: bytes }))
time("checkpoint patch, spread last", () => ({ state: bytes, ...renewal(5) }))
time("created record, spread first", () => ({ ...created(), revision: 1 }))
time("created record, Object.assign", () => Object.assign({}, created(), { revision: 1 }))

const record: TaskRecord = { ...created(), status: "running", revision: 2, reason: "resumed" }
const end = { status: "completed", finishedAt: 5, result: bytes, reason: undefined, lease: undefined } as const
const clearedByDelete = (() => {
  const next: Record<string, unknown> = { ...record }
  for (const key of Object.keys(end)) {
    const value = (end as Record<string, unknown>)[key]
    if (value === undefined) delete next[key]
    else next[key] = value
  }
  return next as unknown as TaskRecord
})()
time("applyPatch, clearing fields", () => applyPatch(record, end))
time("info of a record cleared by delete", () => info(clearedByDelete))
time("info of a record cleared by applyPatch", () => info(applyPatch(record, end)))

// A checkpoint from the metadata the store knows (no byte fields): the patch adds a state the metadata lacks.
const known: TaskInfo = info(record)
const checkpoint = { state: bytes, lease, progress: { done: 1 }, updatedAt: 6 }
const spreadPatch = (base: TaskInfo, patch: object) => {
  const next = { ...base, ...patch } as Record<string, unknown>
  next.revision = base.revision + 1
  return next as unknown as TaskRecord
}
const restInfo = (r: TaskRecord): TaskInfo => {
  const { input: _i, state: _s, result: _r, error: _e, ...rest } = r
  return rest
}
time("checkpoint applyPatch by spreads", () => spreadPatch(known, checkpoint))
time("checkpoint applyPatch", () => applyPatch(known, checkpoint))
time("info of it by object rest", () => restInfo(spreadPatch(known, checkpoint)))
time("info of it", () => info(applyPatch(known as TaskRecord, checkpoint)))

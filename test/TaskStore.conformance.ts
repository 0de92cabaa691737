/**
 * The TaskStore conformance suite: every backend runs it. `makeLayer` must give a fresh, empty store each call.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Either, Layer, type Scope } from "effect"
import { randomBytes } from "node:crypto"
import * as AtOnce from "../src/internal/atOnce.js"
import * as TaskRecord from "../src/TaskRecord.js"
import { TaskStore } from "../src/TaskStore.js"
import { bytes, increment, record } from "./helpers/store.js"

/** Every store operation on `id`, each with the operation name its errors carry. */
const operationsOn = (
  store: TaskStore["Type"],
  id: string
): ReadonlyArray<readonly [string, Effect.Effect<unknown, { readonly _tag: string }>]> => [
  ["create", store.create(record(id))],
  ["read", store.get(id)],
  ["read", store.getInfo(id)],
  ["update", store.update(id, 1, { reason: "x" })],
  ["delete", store.delete(id)],
  ["appendLogs", store.appendLogs(id, [{ time: 1, level: "INFO", message: "m" }])],
  ["readLogs", store.readLogs(id)]
]

/** Calls every store operation with `id`, collecting each outcome. */
export const everyOperation = (store: TaskStore["Type"], id: string) =>
  Effect.all(operationsOn(store, id).map(([, effect]) => Effect.either(effect)))

/**
 * Asserts that every operation on `id` (and `list`) fails with a TaskStoreError naming the operation and the task,
 * carrying `errno` and a `detail` that matches: for a store whose tables were dropped under it.
 */
export const eachFailureNamesItself = (
  store: TaskStore["Type"],
  id: string,
  expected: { readonly errno: string; readonly detail: RegExp }
) =>
  Effect.gen(function* () {
    const operations = [...operationsOn(store, id), ["list", store.list()] as const]
    for (const [operation, effect] of operations) {
      const broken = yield* Effect.flip(effect)
      assert.strictEqual(broken._tag, "TaskStoreError", operation)
      const e = broken as unknown as { reason: string; errno?: string; operation: string; id?: string; detail: string }
      assert.deepStrictEqual([e.reason, e.errno, e.operation], ["Io", expected.errno, operation])
      assert.strictEqual(e.id, operation === "list" ? undefined : id, operation)
      assert.match(e.detail, expected.detail, operation)
    }
  })

export const conformance = <E>(
  name: string,
  makeLayer: () => Layer.Layer<TaskStore, E>,
  /** Whether the store writes at once (`sync`, `AtOnce.Write`) or issues at once (`async`, `AtOnce.WriteAsync`). */
  options: { readonly writesAtOnce?: "sync" | "async" | undefined } = {}
) => {
  const withStore = <A, X>(f: (store: TaskStore["Type"]) => Effect.Effect<A, X>) =>
    Effect.flatMap(TaskStore, f).pipe(Effect.provide(makeLayer()))

  describe(`TaskStore conformance: ${name}`, () => {
    it.effect("create then get round-trips every field; revision starts at 1", () =>
      withStore((store) =>
        Effect.gen(function* () {
          const full = record("a", {
            status: "running",
            progress: { done: 3, total: 10, message: "hi", rate: 1.5, eta: 4000 },
            lease: { token: "t", holder: { host: "h", pid: 1, processStart: "9" }, expiresAt: 5000 },
            interrupt: "pause",
            reason: "because",
            failure: { kind: "error", message: "boom" },
            attempts: 2,
            startedAt: 1500,
            finishedAt: 2500,
            polledAt: 1700,
            priority: 3,
            runAt: 1800,
            parent: "p",
            weight: 2.5,
            state: bytes("state"),
            result: bytes("result"),
            error: bytes("error")
          })
          const info = yield* store.create(full)
          assert.strictEqual(info.revision, 1)
          const got = yield* store.get("a")
          const { input, state, result, error, ...meta } = got
          const { input: i0, state: s0, result: r0, error: e0, ...meta0 } = full
          assert.deepStrictEqual(meta, { ...meta0, revision: 1 })
          assert.deepStrictEqual(
            [input, state, result, error].map((b) => Buffer.from(b!).toString()),
            [Buffer.from(i0).toString(), "state", "result", "error"]
          )
          const onlyInfo = yield* store.getInfo("a")
          assert.isFalse("input" in onlyInfo)
          assert.isFalse("state" in onlyInfo)
          assert.deepStrictEqual(onlyInfo, { ...meta0, revision: 1 })
        })
      )
    )

    it.effect("create fails when the id exists; get of a missing id is TaskNotFound", () =>
      withStore((store) =>
        Effect.gen(function* () {
          yield* store.create(record("a"))
          const again = yield* Effect.either(store.create(record("a")))
          assert.isTrue(Either.isLeft(again) && again.left._tag === "TaskAlreadyExists")
          const missing = yield* Effect.either(store.get("zzz"))
          assert.isTrue(Either.isLeft(missing) && missing.left._tag === "TaskNotFound")
          const missingInfo = yield* Effect.either(store.getInfo("zzz"))
          assert.isTrue(Either.isLeft(missingInfo) && missingInfo.left._tag === "TaskNotFound")
        })
      )
    )

    it.effect("rejects unsafe ids on every operation", () =>
      withStore((store) =>
        Effect.gen(function* () {
          for (const id of ["", "..", "../x", "a/b", "a\\b", "a\0b", "x".repeat(201), "a\nb", ".hidden"]) {
            const results = yield* everyOperation(store, id)
            for (const result of results) {
              assert.isTrue(Either.isLeft(result) && result.left._tag === "InvalidTaskId", `id ${JSON.stringify(id)}`)
            }
          }
        })
      )
    )

    it.effect("update is compare-and-swap on revision, and a patch key with undefined clears the field", () =>
      withStore((store) =>
        Effect.gen(function* () {
          yield* store.create(record("a", { reason: "first", state: bytes("s1") }))
          const next = yield* store.update("a", 1, { status: "running", reason: undefined, state: bytes("s2") })
          assert.strictEqual(next.revision, 2)
          assert.strictEqual(next.status, "running")
          assert.isFalse("reason" in next)
          const stale = yield* Effect.either(store.update("a", 1, { status: "paused" }))
          assert.isTrue(Either.isLeft(stale))
          if (Either.isLeft(stale)) {
            assert.strictEqual(stale.left._tag, "RevisionConflict")
            if (stale.left._tag === "RevisionConflict") assert.strictEqual(stale.left.found, 2)
          }
          const got = yield* store.get("a")
          assert.strictEqual(got.status, "running")
          assert.strictEqual(Buffer.from(got.state!).toString(), "s2")
          const cleared = yield* store.update("a", 2, { state: undefined })
          assert.strictEqual(cleared.revision, 3)
          assert.isUndefined((yield* store.get("a")).state)
          const missing = yield* Effect.either(store.update("nope", 1, { status: "paused" }))
          assert.isTrue(Either.isLeft(missing) && missing.left._tag === "TaskNotFound")
        })
      )
    )

    it.effect("update sets every patchable field, and clears every optional one", () =>
      withStore((store) =>
        Effect.gen(function* () {
          const created = record("p", { input: bytes("in") })
          yield* store.create(created)
          const meta = {
            status: "running",
            progress: { done: 3, total: 10, message: "m", rate: 1.5, eta: 4000 },
            lease: { token: "t", holder: { host: "h", pid: 1, processStart: "9" }, expiresAt: 5000 },
            interrupt: "cancel",
            reason: "r",
            failure: { kind: "error", message: "boom" },
            attempts: 3,
            updatedAt: 2000,
            startedAt: 1500,
            finishedAt: 2500,
            polledAt: 1700,
            priority: -2,
            runAt: 1900
          } as const
          const set = yield* store.update("p", 1, { ...meta, state: bytes("s"), result: bytes("r"), error: bytes("e") })
          const { input: _input, ...createdMeta } = created
          const expected = { ...createdMeta, ...meta, revision: 2 }
          assert.deepStrictEqual(set, expected)
          assert.deepStrictEqual(yield* store.getInfo("p"), expected)
          const got = yield* store.get("p")
          assert.deepStrictEqual(
            [got.input, got.state, got.result, got.error].map((b) => Buffer.from(b!).toString()),
            ["in", "s", "r", "e"]
          )
          // A patch changes only what it names.
          const other = yield* store.update("p", 2, { attempts: 4 })
          assert.deepStrictEqual(other, { ...expected, attempts: 4, revision: 3 })
          const kept = yield* store.get("p")
          assert.deepStrictEqual(
            [kept.input, kept.state, kept.result, kept.error].map((b) => Buffer.from(b!).toString()),
            ["in", "s", "r", "e"]
          )
          const optional = [
            "lease",
            "interrupt",
            "reason",
            "failure",
            "startedAt",
            "finishedAt",
            "polledAt",
            "priority",
            "runAt",
            "state",
            "result",
            "error"
          ] as const
          const cleared = yield* store.update("p", 3, Object.fromEntries(optional.map((k) => [k, undefined])))
          const after = yield* store.get("p")
          for (const key of optional) {
            assert.isFalse(key in cleared, `${key} cleared (returned)`)
            assert.isFalse(key in after, `${key} cleared (stored)`)
          }
          assert.deepStrictEqual(
            [after.status, after.attempts, after.updatedAt, after.progress, Buffer.from(after.input).toString()],
            ["running", 4, 2000, meta.progress, "in"]
          )
        })
      )
    )

    it.effect(
      options.writesAtOnce === undefined
        ? "it makes no write at once: its runner's writes all go through update"
        : `a write ${options.writesAtOnce === "sync" ? "made" : "issued"} at once is update's compare-and-swap: from the revision it names, or nothing`,
      () =>
        withStore((store) =>
          Effect.gen(function* () {
            yield* store.create(record("a", { status: "running", state: bytes("s1") }))
            const now = AtOnce.writeOf(store)
            const soon = AtOnce.writeAsyncOf(store)
            // Either kind of write as an effect: what it gives, once answered.
            const write = (id: string, expected: number, patch: TaskRecord.TaskPatch) =>
              Effect.suspend(() => {
                if (now !== undefined) return Effect.succeed(now(id, expected, patch))
                const answer = soon?.(id, expected, patch)
                return answer === undefined ? Effect.succeed(undefined) : Effect.promise(() => answer)
              })
            const patch = { state: bytes("s2"), progress: { done: 2 }, updatedAt: 3_000, reason: undefined }
            // A store that makes none may still register one that declines (the file store over a portable FileSystem).
            if (options.writesAtOnce === "sync") assert.isDefined(now, "a write made at once")
            if (options.writesAtOnce === "async") assert.isDefined(soon, "a write issued at once")
            if (options.writesAtOnce === undefined) {
              assert.isUndefined(yield* write("a", 1, patch))
              assert.strictEqual((yield* store.getInfo("a")).revision, 1, "nothing written")
              return
            }
            const written = (yield* write("a", 1, patch)) as TaskRecord.TaskInfo | undefined
            assert.strictEqual(written?.revision, 2)
            assert.deepStrictEqual(written, yield* store.getInfo("a"))
            assert.deepStrictEqual((yield* store.get("a")).state, bytes("s2"))
            assert.strictEqual(written?.progress.done, 2)
            // From a revision the record has left: nothing, and the record is as it was.
            assert.isUndefined(yield* write("a", 1, { state: bytes("s3"), progress: { done: 3 }, updatedAt: 4_000 }))
            yield* store.update("a", 2, { progress: { done: 4 }, updatedAt: 5_000 })
            assert.isUndefined(yield* write("a", 2, { state: bytes("s3"), progress: { done: 3 }, updatedAt: 4_000 }))
            const after = yield* store.get("a")
            assert.deepStrictEqual([after.revision, after.progress.done, after.state], [3, 4, bytes("s2")])
            assert.isUndefined(yield* write("missing", 1, patch), "a record that is not there")
          })
        )
    )

    it.effect("concurrent writers racing compare-and-swap lose no update", () =>
      withStore((store) =>
        Effect.gen(function* () {
          yield* store.create(record("counter"))
          yield* Effect.forEach(
            Array.from({ length: 20 }, (_, i) => i),
            () => Effect.repeatN(increment(store, "counter"), 9),
            { concurrency: "unbounded", discard: true }
          )
          const info = yield* store.getInfo("counter")
          assert.strictEqual(info.progress.done, 200)
          assert.strictEqual(info.revision, 201)
        })
      )
    )

    it.effect("claimNext takes the oldest pending task of the kinds asked, whole, and stores it running", () =>
      withStore((store) =>
        Effect.gen(function* () {
          const lease = (n: number) => ({
            token: `01a220b5-41e9-7080-884f-f28554064f${String(n).padStart(2, "0")}`,
            holder: { host: "h", pid: n, processStart: "1" },
            expiresAt: 10_000
          })
          yield* store.create(record("c-young", { createdAt: 3_000 }))
          yield* store.create(record("b-old", { createdAt: 2_000, state: bytes("s"), reason: "released" }))
          yield* store.create(record("a-other-kind", { createdAt: 1_000, kind: "other" }))
          yield* store.create(record("a-paused", { createdAt: 1_000, status: "paused" }))
          const first = yield* store.claimNext({ kinds: ["test"], lease: lease(1), now: 5_000 })
          assert.strictEqual(first?.id, "b-old")
          assert.strictEqual(first?.status, "running")
          assert.strictEqual(first?.attempts, 1)
          assert.strictEqual(first?.revision, 2)
          assert.strictEqual(first?.startedAt, 5_000)
          assert.isUndefined(first?.reason)
          assert.deepStrictEqual(first?.lease, lease(1))
          assert.deepStrictEqual(first?.input, bytes(`{"id":"b-old"}`))
          assert.deepStrictEqual(first?.state, bytes("s"))
          assert.deepStrictEqual(yield* store.getInfo("b-old"), TaskRecord.info(first!))
          assert.strictEqual((yield* store.claimNext({ kinds: ["test"], lease: lease(2), now: 5_000 }))?.id, "c-young")
          assert.isUndefined(yield* store.claimNext({ kinds: ["test"], lease: lease(3), now: 5_000 }))
          assert.strictEqual(
            (yield* store.claimNext({ kinds: ["test", "other"], lease: lease(4), now: 5_000 }))?.id,
            "a-other-kind"
          )
          assert.isUndefined(yield* store.claimNext({ kinds: [], lease: lease(5), now: 5_000 }))
          assert.strictEqual((yield* store.getInfo("a-paused")).status, "paused")
        })
      )
    )

    it.effect("claimNext: higher priority first, and nothing before its run-after time", () =>
      withStore((store) =>
        Effect.gen(function* () {
          const lease = { token: "t", holder: { host: "h", pid: 1, processStart: "1" }, expiresAt: 10_000 }
          yield* store.create(record("a-old-low", { createdAt: 1_000 }))
          yield* store.create(record("b-new-high", { createdAt: 2_000, priority: 5 }))
          yield* store.create(record("c-urgent-later", { createdAt: 500, priority: 9, runAt: 6_000 }))
          yield* store.create(record("d-negative", { createdAt: 100, priority: -1 }))
          const claim = (now: number) => Effect.map(store.claimNext({ kinds: ["test"], lease, now }), (r) => r?.id)
          assert.strictEqual(yield* claim(5_000), "b-new-high")
          assert.strictEqual(yield* claim(5_000), "a-old-low")
          assert.strictEqual(yield* claim(5_000), "d-negative")
          assert.isUndefined(yield* claim(5_999))
          const late = yield* store.claimNext({ kinds: ["test"], lease, now: 6_000 })
          assert.strictEqual(late?.id, "c-urgent-later")
          assert.strictEqual(late?.priority, 9)
          assert.isUndefined(late?.runAt, "a claim clears the run-after time")
          assert.deepStrictEqual((yield* store.getInfo("c-urgent-later")).priority, 9)
        })
      )
    )

    it.effect("claimNext: concurrent claimers never get the same task, and together get all of them", () =>
      withStore((store) =>
        Effect.gen(function* () {
          for (let i = 0; i < 30; i++) yield* store.create(record(`q${String(i).padStart(2, "0")}`))
          const claims = yield* Effect.forEach(
            Array.from({ length: 40 }, (_, n) => n),
            (n) =>
              store.claimNext({
                kinds: ["test"],
                lease: { token: `t${n}`, holder: { host: "h", pid: n, processStart: "1" }, expiresAt: 10_000 },
                now: 5_000
              }),
            { concurrency: "unbounded" }
          )
          const ids = claims.flatMap((c) => (c === undefined ? [] : [c.id]))
          assert.strictEqual(ids.length, 30)
          assert.strictEqual(new Set(ids).size, 30)
          const running = yield* store.list({ status: "running", limit: 100 })
          assert.strictEqual(running.items.length, 30)
        })
      )
    )

    it.effect(
      "lists a family: the children of a parent, by status, a page at a time; parent and weight are fixed",
      () =>
        withStore((store) =>
          Effect.gen(function* () {
            yield* store.create(record("p"))
            for (let i = 0; i < 7; i++) {
              yield* store.create(
                record(`p.c${i}`, { parent: "p", weight: i, status: i % 2 === 0 ? "running" : "completed" })
              )
            }
            yield* store.create(record("p.c3.g", { parent: "p.c3" }))
            yield* store.create(record("q", { parent: "other" }))
            const first = yield* store.list({ parent: "p", limit: 4 })
            assert.deepStrictEqual(
              first.items.map((i) => [i.id, i.parent, i.weight]),
              [0, 1, 2, 3].map((i) => [`p.c${i}`, "p", i])
            )
            const rest = yield* store.list({ parent: "p", limit: 4, after: first.next })
            assert.deepStrictEqual(
              rest.items.map((i) => i.id),
              ["p.c4", "p.c5", "p.c6"]
            )
            assert.isUndefined(rest.next)
            const running = yield* store.list({ parent: "p", status: "running" })
            assert.deepStrictEqual(
              running.items.map((i) => i.id),
              ["p.c0", "p.c2", "p.c4", "p.c6"]
            )
            assert.deepStrictEqual(
              (yield* store.list({ parent: "p.c3" })).items.map((i) => i.id),
              ["p.c3.g"]
            )
            assert.deepStrictEqual((yield* store.list({ parent: "nobody" })).items, [])
            assert.isUndefined((yield* store.getInfo("p")).parent)
            // What makes a task a child is set once, by create.
            for (const patch of [{ parent: "q" }, { weight: 1 }]) {
              const exit = yield* Effect.exit(store.update("p.c0", 1, patch as TaskRecord.TaskPatch))
              assert.isTrue(exit._tag === "Failure" && exit.cause._tag === "Die", JSON.stringify(patch))
            }
          })
        )
    )

    it.effect("lists by status and kind, a page at a time, in id order, without data", () =>
      withStore((store) =>
        Effect.gen(function* () {
          const statuses: Array<TaskRecord.Status> = ["pending", "running", "paused", "completed", "failed"]
          for (let i = 0; i < 130; i++) {
            const id = `t${String(i).padStart(4, "0")}`
            yield* store.create(
              record(id, { status: statuses[i % statuses.length]!, kind: i % 2 === 0 ? "even" : "odd" })
            )
          }
          const all: Array<string> = []
          let after: string | undefined = undefined
          for (;;) {
            const page: TaskRecord.Page = yield* store.list({ limit: 50, after })
            all.push(...page.items.map((i) => i.id))
            for (const item of page.items) assert.isFalse("input" in item)
            if (page.next === undefined) break
            after = page.next
          }
          assert.strictEqual(all.length, 130)
          assert.deepStrictEqual(all, [...all].sort())
          const paused = yield* store.list({ status: "paused", limit: 100 })
          assert.strictEqual(paused.items.length, 26)
          assert.isUndefined(paused.next)
          assert.isTrue(paused.items.every((i) => i.status === "paused"))
          const evenFailed = yield* store.list({ status: "failed", kind: "even" })
          assert.isTrue(evenFailed.items.length > 0)
          assert.isTrue(evenFailed.items.every((i) => i.status === "failed" && i.kind === "even"))
          assert.strictEqual(evenFailed.items.length, 13)
          const two = yield* store.list({ status: ["paused", "failed"], limit: 10 })
          assert.strictEqual(two.items.length, 10)
          assert.isDefined(two.next)
          assert.isTrue(two.items.every((i) => i.status === "paused" || i.status === "failed"))
          const none = yield* store.list({ kind: "nothing" })
          assert.deepStrictEqual(none.items, [])
        })
      )
    )

    it.effect("logs are numbered, read after a sequence number, bounded per task, and deleted with the task", () =>
      withStore((store) =>
        Effect.gen(function* () {
          yield* store.create(record("a"))
          yield* store.create(record("b"))
          const lines = (from: number, n: number) =>
            Array.from({ length: n }, (_, i) => ({ time: from + i, level: "INFO", message: `line ${from + i}` }))
          yield* store.appendLogs("a", lines(0, 5), { keep: 8 })
          yield* store.appendLogs("b", lines(100, 2), { keep: 8 })
          yield* store.appendLogs("a", lines(5, 5), { keep: 8 })
          const a = yield* store.readLogs("a")
          assert.deepStrictEqual(
            a.map((l) => l.seq),
            [3, 4, 5, 6, 7, 8, 9, 10]
          )
          assert.deepStrictEqual(
            a.map((l) => l.message),
            Array.from({ length: 8 }, (_, i) => `line ${i + 2}`)
          )
          const after = yield* store.readLogs("a", { after: 8 })
          assert.deepStrictEqual(
            after.map((l) => l.message),
            ["line 8", "line 9"]
          )
          const limited = yield* store.readLogs("a", { after: 4, limit: 2 })
          assert.deepStrictEqual(
            limited.map((l) => l.seq),
            [5, 6]
          )
          assert.strictEqual((yield* store.readLogs("b")).length, 2)
          assert.deepStrictEqual(yield* store.readLogs("never-logged"), [])
          yield* store.delete("a")
          assert.deepStrictEqual(yield* store.readLogs("a"), [])
          assert.strictEqual((yield* store.readLogs("b")).length, 2)
        })
      )
    )

    it.effect("create starts with an empty log: lines left under its id (orphans, a deleted task's) do not show", () =>
      withStore((store) =>
        Effect.gen(function* () {
          const line = { time: 1, level: "INFO", message: "left over" }
          yield* store.appendLogs("ghost", [line, line])
          yield* store.create(record("ghost"))
          assert.deepStrictEqual(yield* store.readLogs("ghost"), [])
          yield* store.appendLogs("ghost", [line])
          assert.deepStrictEqual(
            (yield* store.readLogs("ghost")).map((l) => l.seq),
            [1]
          )
          yield* store.delete("ghost")
          yield* store.create(record("ghost"))
          assert.deepStrictEqual(yield* store.readLogs("ghost"), [])
        })
      )
    )

    it.effect(
      "list orders by id whatever the order of creation; logs keep exactly `keep` lines; reads are copies",
      () =>
        withStore((store) =>
          Effect.gen(function* () {
            for (const id of ["m", "c", "x", "a", "q"]) yield* store.create(record(id))
            assert.deepStrictEqual(
              (yield* store.list()).items.map((i) => i.id),
              ["a", "c", "m", "q", "x"]
            )
            assert.deepStrictEqual(
              (yield* store.list({ after: "c", limit: 2 })).items.map((i) => i.id),
              ["m", "q"]
            )
            const lines = Array.from({ length: 4 }, (_, i) => ({ time: i, level: "INFO", message: `l${i}` }))
            yield* store.appendLogs("a", lines, { keep: 4 })
            const read = yield* store.readLogs("a")
            assert.deepStrictEqual(
              read.map((l) => l.message),
              ["l0", "l1", "l2", "l3"]
            )
            ;(read as Array<unknown>).length = 0
            assert.strictEqual((yield* store.readLogs("a")).length, 4, "changing what was read changes nothing stored")
          })
        )
    )

    it.effect("delete removes the record; with an expected revision it is compare-and-swap", () =>
      withStore((store) =>
        Effect.gen(function* () {
          yield* store.create(record("a"))
          yield* store.update("a", 1, { status: "completed" })
          const stale = yield* Effect.either(store.delete("a", 1))
          assert.isTrue(Either.isLeft(stale) && stale.left._tag === "RevisionConflict")
          yield* store.delete("a", 2)
          const gone = yield* Effect.either(store.get("a"))
          assert.isTrue(Either.isLeft(gone) && gone.left._tag === "TaskNotFound")
          const again = yield* Effect.either(store.delete("a"))
          assert.isTrue(Either.isLeft(again) && again.left._tag === "TaskNotFound")
          assert.deepStrictEqual((yield* store.list()).items, [])
          // The id is free again.
          yield* store.create(record("a"))
        })
      )
    )

    it.effect("16 MiB byte fields round-trip exactly", () =>
      withStore((store) =>
        Effect.gen(function* () {
          const big = new Uint8Array(randomBytes(16 * 1024 * 1024))
          const big2 = new Uint8Array(randomBytes(16 * 1024 * 1024))
          yield* store.create(record("big", { input: big }))
          yield* store.update("big", 1, { state: big2 })
          const got = yield* store.get("big")
          assert.strictEqual(got.input.length, big.length)
          assert.isTrue(Buffer.from(got.input).equals(Buffer.from(big)))
          assert.isTrue(Buffer.from(got.state!).equals(Buffer.from(big2)))
          assert.isTrue(got.input instanceof Uint8Array)
        })
      )
    )

    it.effect("empty byte fields round-trip as empty, distinct from absent", () =>
      withStore((store) =>
        Effect.gen(function* () {
          yield* store.create(record("e", { input: new Uint8Array(0), state: new Uint8Array(0) }))
          const got = yield* store.get("e")
          assert.strictEqual(got.input.length, 0)
          assert.strictEqual(got.state?.length, 0)
          assert.isUndefined(got.result)
        })
      )
    )
  })
}

/**
 * For stores that keep the metadata they wrote (SQL on a direct connection): an update from the revision a store
 * knows returns what a read gives, and misses a record changed, or deleted and made anew, by another store on the same
 * database (another process). `database` gives a layer that opens a store on one fresh database, as often as called.
 */
export const knownRevision = <E>(
  name: string,
  database: () => Effect.Effect<() => Layer.Layer<TaskStore, E>, unknown, Scope.Scope>
) =>
  describe(`TaskStore conformance (${name}), from a known revision`, () => {
    it.scoped(
      "an update from the revision the store knows returns what a read gives, and misses a record made anew",
      () =>
        Effect.gen(function* () {
          const layer = yield* database()
          const open = Effect.map(Layer.build(layer()), (context) => Context.get(context, TaskStore))
          // Two stores on one database, as two processes: `store` knows what it wrote; `other` changes the row.
          const store = yield* open
          const other = yield* open
          yield* store.create(record("k", { priority: 3 }))
          const lease = { token: "t", holder: { host: "h", pid: 1, processStart: "1" }, expiresAt: 9 }
          const shapes: ReadonlyArray<TaskRecord.TaskPatch> = [
            { status: "running", lease, progress: { done: 1, total: 4 }, updatedAt: 2, state: bytes("s1") },
            { progress: { done: 2, total: 4, message: "m" }, updatedAt: 3, priority: 0 },
            { reason: "r", failure: { kind: "error", message: "boom" }, runAt: 7, polledAt: 5, priority: -1 },
            {
              lease: undefined,
              reason: undefined,
              failure: undefined,
              runAt: undefined,
              state: undefined,
              result: bytes("r")
            }
          ]
          let revision = 1
          for (const patch of shapes) {
            const updated = yield* store.update("k", revision, patch)
            assert.deepStrictEqual(updated, yield* other.getInfo("k"))
            revision = updated.revision
          }
          // Changed elsewhere: the known revision is stale, and the compare-and-swap misses.
          yield* other.update("k", revision, { attempts: 9 })
          const stale = yield* Effect.either(store.update("k", revision, { reason: "late" }))
          assert.strictEqual(Either.isLeft(stale) && stale.left._tag, "RevisionConflict")
          const fresh = yield* store.getInfo("k")
          assert.deepStrictEqual(yield* store.update("k", fresh.revision, { reason: "now" }), yield* other.getInfo("k"))
          // Deleted and made anew elsewhere, up to the very revision this store knows: not the record it knows.
          const known = (yield* store.getInfo("k")).revision
          yield* other.delete("k", undefined)
          yield* other.create(record("k", { createdAt: 12345 }))
          for (let r = 1; r < known; r++) yield* other.update("k", r, { attempts: r })
          const missed = yield* Effect.either(store.update("k", known, { reason: "stale base" }))
          assert.strictEqual(Either.isLeft(missed) && missed.left._tag, "RevisionConflict")
          assert.isUndefined((yield* other.getInfo("k")).reason)
        })
    )
  })

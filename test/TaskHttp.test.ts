/**
 * The HTTP API against a real server on an ephemeral port over a real file store: every endpoint, its errors and
 * their status codes, the token, Server-Sent Events to the final event, interest (a task nobody polls pauses, a poll
 * resumes it), the body limit, and the refusal to serve beyond loopback without a token.
 */
import { assert, describe, it } from "@effect/vitest"
import * as HttpServer from "@effect/platform/HttpServer"
import { Context, Effect, Exit, Layer, Schema, Scope } from "effect"
import { Task, TaskRunner } from "../src/index.js"
import * as TaskHttp from "../src/TaskHttp.js"
import * as File from "../src/TaskStore/File.js"
import { tempDir } from "./helpers/tempDir.js"

class TooBig extends Schema.TaggedError<TooBig>()("TooBig", { n: Schema.Int }) {}

/** Counts to `to`, `ms` per step, a checkpoint every 5; fails with `TooBig` above 1000. */
const Count = Task.make({
  name: "count",
  input: Schema.Struct({ to: Schema.Int.pipe(Schema.nonNegative()), ms: Schema.Int }),
  state: Schema.Struct({ i: Schema.Int }),
  success: Schema.Struct({ counted: Schema.Int }),
  error: TooBig,
  initial: () => ({ i: 0 }),
  run: (input, task) =>
    Effect.gen(function* () {
      if (input.to > 1000) return yield* new TooBig({ n: input.to })
      yield* task.total(input.to)
      task.setDone(task.state.i)
      for (let i = task.state.i; i < input.to;) {
        yield* Effect.sleep(input.ms)
        i++
        yield* task.progress(1)
        if (i % 5 === 0) {
          yield* task.checkpoint({ i })
          yield* Effect.log(`at ${i}`)
        }
      }
      return { counted: input.to }
    })
})

/** Like `Count`, but paused when nobody polls it for 300 ms. */
const Wanted = Task.make({ ...Count, name: "wanted", interestTimeout: "300 millis" })

interface Server {
  readonly base: string
  readonly call: (
    method: string,
    path: string,
    options?: { readonly body?: unknown; readonly token?: string | null; readonly raw?: string }
  ) => Effect.Effect<{ readonly status: number; readonly body: any; readonly text: string }>
}

/** A server on a free port over a fresh file store, closed with the test. */
const server = (options: Partial<TaskHttp.Options> = {}) =>
  Effect.gen(function* () {
    const dir = yield* tempDir
    const scope = yield* Scope.make()
    yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
    const runner = TaskRunner.layer({ tasks: [Count, Wanted], flushInterval: "100 millis" }).pipe(
      Layer.provideMerge(File.layer({ directory: dir }))
    )
    const context = yield* Layer.buildWithScope(
      TaskHttp.serve({ tasks: [Count, Wanted], port: 0, token: "s3cret", ...options }).pipe(Layer.provide(runner)),
      scope
    )
    const address = Context.get(context, HttpServer.HttpServer).address as HttpServer.TcpAddress
    const base = `http://127.0.0.1:${address.port}`
    const call: Server["call"] = (method, path, callOptions = {}) =>
      Effect.promise(async () => {
        const token = callOptions.token === undefined ? "s3cret" : callOptions.token
        const response = await fetch(base + path, {
          method,
          headers: {
            "content-type": "application/json",
            ...(token === null ? {} : { authorization: `Bearer ${token}` })
          },
          ...(callOptions.raw !== undefined
            ? { body: callOptions.raw }
            : callOptions.body === undefined
              ? {}
              : { body: JSON.stringify(callOptions.body) })
        })
        const text = await response.text()
        let body: unknown = undefined
        try {
          body = JSON.parse(text)
        } catch {
          body = undefined
        }
        return { status: response.status, body, text }
      })
    return { base, call } satisfies Server
  })

/** Waits until `check` holds (real time). */
const until = (check: Effect.Effect<boolean>, what: string) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 10_000
    while (Date.now() < deadline) {
      if (yield* check) return
      yield* Effect.sleep("20 millis")
    }
    return yield* Effect.dieMessage(`timed out waiting until ${what}`)
  })

/** The events of a Server-Sent Events body: `[event, data]`. */
const parseEvents = (text: string) =>
  text
    .split("\n\n")
    .filter((block) => block.trim() !== "")
    .map((block) => {
      const name = /^event: (.*)$/m.exec(block)![1]!
      const data = JSON.parse(/^data: (.*)$/m.exec(block)![1]!)
      return [name, data] as const
    })

describe("HTTP API", () => {
  it.scopedLive(
    "start, status, list, logs, events to the end, result, delete: each endpoint with its status code",
    () =>
      Effect.gen(function* () {
        const { call } = yield* server()
        const started = yield* call("POST", "/api/tasks", {
          body: { kind: "count", input: { to: 20, ms: 10 }, id: "c1" }
        })
        assert.strictEqual(started.status, 201, started.text)
        assert.deepStrictEqual([started.body.id, started.body.kind, started.body.status], ["c1", "count", "running"])
        assert.isFalse("token" in started.body.lease, "the fencing token stays with the runner")
        // While it runs: its result is a conflict.
        const early = yield* call("GET", "/api/tasks/c1/result")
        assert.strictEqual(early.status, 409)
        assert.deepStrictEqual([early.body._tag, early.body.reason], ["Conflict", "TaskNotCompleted"])
        // Events: status events while it moves, at most every 250 ms, then the final one and `end`.
        const stream = yield* call("GET", "/api/tasks/c1/events")
        assert.strictEqual(stream.status, 200)
        const events = parseEvents(stream.text)
        const statuses = events.filter(([name]) => name === "status").map(([, data]) => data)
        assert.isAtLeast(statuses.length, 1)
        assert.deepStrictEqual(events[events.length - 1]![0], "end")
        assert.strictEqual(events[events.length - 1]![1].status, "completed")
        const dones = statuses.map((s) => s.progress.done as number)
        assert.deepStrictEqual(
          dones,
          [...dones].sort((a, b) => a - b),
          "progress only moves forward"
        )
        assert.strictEqual(dones[dones.length - 1], 20)
        const status = yield* call("GET", "/api/tasks/c1")
        assert.deepStrictEqual([status.status, status.body.status, status.body.progress.done], [200, "completed", 20])
        const result = yield* call("GET", "/api/tasks/c1/result")
        assert.deepStrictEqual([result.status, result.body], [200, { result: { counted: 20 } }])
        const logs = yield* call("GET", "/api/tasks/c1/logs?after=1")
        assert.deepStrictEqual(
          logs.body.map((l: { message: string }) => l.message),
          ["at 10", "at 15", "at 20"]
        )
        yield* call("POST", "/api/tasks", { body: { kind: "count", input: { to: 1, ms: 1 }, id: "c2" } })
        const listed = yield* call("GET", "/api/tasks?kind=count&limit=1")
        assert.deepStrictEqual(
          [listed.status, listed.body.items.map((i: { id: string }) => i.id), listed.body.next],
          [200, ["c1"], "c1"]
        )
        const none = yield* call("GET", "/api/tasks?status=failed")
        assert.deepStrictEqual(none.body.items, [])
        const deleted = yield* call("DELETE", "/api/tasks/c1")
        assert.strictEqual(deleted.status, 204)
        assert.strictEqual((yield* call("GET", "/api/tasks/c1")).status, 404)
        const openapi = yield* call("GET", "/api/openapi.json")
        assert.strictEqual(openapi.status, 200)
        assert.includeMembers(Object.keys(openapi.body.paths), [
          "/api/tasks",
          "/api/tasks/{id}",
          "/api/tasks/{id}/events",
          "/api/tasks/{id}/pause"
        ])
      })
  )

  it.scopedLive("pause, resume, cancel and poll; a failed task's result says why", () =>
    Effect.gen(function* () {
      const { call } = yield* server()
      yield* call("POST", "/api/tasks", { body: { kind: "count", input: { to: 1000, ms: 5 }, id: "p1" } })
      const paused = yield* call("POST", "/api/tasks/p1/pause")
      assert.deepStrictEqual([paused.status, paused.body.status, paused.body.resumable], [200, "paused", true])
      const resumed = yield* call("POST", "/api/tasks/p1/resume")
      assert.deepStrictEqual([resumed.status, resumed.body.status], [200, "running"])
      const polled = yield* call("POST", "/api/tasks/p1/poll")
      assert.deepStrictEqual([polled.status, polled.body.status], [200, "running"])
      const cancelled = yield* call("POST", "/api/tasks/p1/cancel")
      assert.deepStrictEqual([cancelled.status, cancelled.body.status], [200, "cancelled"])
      const again = yield* call("POST", "/api/tasks/p1/resume")
      assert.deepStrictEqual([again.status, again.body._tag, again.body.reason], [409, "Conflict", "TaskNotResumable"])
      yield* call("POST", "/api/tasks", { body: { kind: "count", input: { to: 5000, ms: 1 }, id: "f1" } })
      yield* until(
        Effect.map(call("GET", "/api/tasks/f1"), (r) => r.body.status === "failed"),
        "the task fails"
      )
      const failed = yield* call("GET", "/api/tasks/f1/result")
      assert.strictEqual(failed.status, 409)
      assert.include(failed.body.message, "TooBig")
      const stream = yield* call("GET", "/api/tasks/f1/events")
      assert.deepStrictEqual(
        parseEvents(stream.text).map(([name, data]) => [name, data.status]),
        [
          ["status", "failed"],
          ["end", "failed"]
        ]
      )
    })
  )

  it.scopedLive("errors: 400 bad input, kind or id; 401 without the token; 404; 409 an id taken; no stack traces", () =>
    Effect.gen(function* () {
      const { call } = yield* server()
      const badInput = yield* call("POST", "/api/tasks", { body: { kind: "count", input: { to: "many", ms: 1 } } })
      assert.strictEqual(badInput.status, 400)
      assert.deepStrictEqual([badInput.body._tag, badInput.body.reason], ["BadRequest", "InvalidInput"])
      assert.include(badInput.body.message, 'Expected number, actual "many"')
      const badKind = yield* call("POST", "/api/tasks", { body: { kind: "nope", input: {} } })
      assert.deepStrictEqual([badKind.status, badKind.body.reason], [400, "UnknownTaskKind"])
      assert.include(badKind.body.message, "count, wanted")
      const badId = yield* call("POST", "/api/tasks", { body: { kind: "count", input: { to: 1, ms: 1 }, id: "../x" } })
      assert.deepStrictEqual([badId.status, badId.body.reason], [400, "InvalidTaskId"])
      assert.strictEqual((yield* call("GET", "/api/tasks/..%2Fx")).status, 400)
      const malformed = yield* call("POST", "/api/tasks", { raw: "{not json" })
      assert.strictEqual(malformed.status, 400)
      const noToken = yield* call("POST", "/api/tasks", {
        body: { kind: "count", input: { to: 1, ms: 1 } },
        token: null
      })
      assert.deepStrictEqual([noToken.status, noToken.body._tag], [401, "Unauthorized"])
      assert.include(noToken.body.message, "Authorization: Bearer")
      assert.strictEqual((yield* call("GET", "/api/tasks", { token: "wrong" })).status, 401)
      assert.strictEqual((yield* call("DELETE", "/api/tasks/x", { token: null })).status, 401)
      for (const path of [
        "/api/tasks/ghost",
        "/api/tasks/ghost/logs",
        "/api/tasks/ghost/result",
        "/api/tasks/ghost/events"
      ]) {
        const missing = yield* call("GET", path)
        assert.deepStrictEqual([missing.status, missing.body._tag], [404, "NotFound"], path)
      }
      assert.strictEqual((yield* call("POST", "/api/tasks/ghost/pause")).status, 404)
      yield* call("POST", "/api/tasks", { body: { kind: "count", input: { to: 1, ms: 1 }, id: "once" } })
      const twice = yield* call("POST", "/api/tasks", { body: { kind: "count", input: { to: 1, ms: 1 }, id: "once" } })
      assert.deepStrictEqual([twice.status, twice.body.reason], [409, "TaskAlreadyExists"])
      for (const r of [badInput, badKind, noToken, twice]) assert.notMatch(r.text, /\s+at .+:\d+:\d+/)
    })
  )

  it.scopedLive("reads may be opened; without a token nothing is checked, on loopback only", () =>
    Effect.gen(function* () {
      const open = yield* server({ openReads: true })
      assert.strictEqual((yield* open.call("GET", "/api/tasks", { token: null })).status, 200)
      assert.strictEqual(
        (yield* open.call("POST", "/api/tasks", { body: { kind: "count", input: { to: 1, ms: 1 } }, token: null }))
          .status,
        401
      )
      const tokenless = yield* server({ token: undefined })
      const started = yield* tokenless.call("POST", "/api/tasks", {
        body: { kind: "count", input: { to: 1, ms: 1 } },
        token: null
      })
      assert.strictEqual(started.status, 201)
      const exposed = yield* Effect.exit(
        Layer.build(
          TaskHttp.serve({ tasks: [Count], host: "0.0.0.0", port: 0 }).pipe(
            Layer.provide(TaskRunner.layer({ tasks: [Count] })),
            Layer.provideMerge(File.layer({ directory: yield* tempDir }))
          )
        ).pipe(Effect.scoped)
      )
      assert.isTrue(Exit.isFailure(exposed))
      assert.include(String(Exit.isFailure(exposed) ? exposed.cause : ""), "without a token")
    })
  )

  it.scopedLive("the list's event stream sends the page at once and again when a row moves; /api/kinds", () =>
    Effect.gen(function* () {
      const { base, call } = yield* server()
      assert.deepStrictEqual((yield* call("GET", "/api/kinds")).body, ["count", "wanted"])
      yield* call("POST", "/api/tasks", { body: { kind: "count", input: { to: 10, ms: 30 }, id: "l1" } })
      // Read events until the list shows l1 completed, then hang up (the stream itself never ends).
      const pages = yield* Effect.promise(async () => {
        const controller = new AbortController()
        const response = await fetch(`${base}/api/events?kind=count`, {
          headers: { authorization: "Bearer s3cret" },
          signal: controller.signal
        })
        const reader = response.body!.getReader()
        const decoder = new TextDecoder()
        let buffer = ""
        const seen: Array<ReadonlyArray<{ id: string; status: string; progress: { done: number } }>> = []
        while (!seen.some((items) => items[0]?.status === "completed")) {
          const { value, done } = await reader.read()
          if (done) break
          buffer += decoder.decode(value, { stream: true })
          const blocks = buffer.split("\n\n")
          buffer = blocks.pop()!
          for (const [name, data] of parseEvents(blocks.join("\n\n"))) if (name === "tasks") seen.push(data.items)
        }
        controller.abort()
        return seen
      })
      assert.isAtLeast(pages.length, 2, "a page at once, then one per change")
      assert.deepStrictEqual(
        pages[pages.length - 1]!.map((i) => [i.id, i.status, i.progress.done]),
        [["l1", "completed", 10]]
      )
      const dones = pages.map((items) => items[0]!.progress.done)
      assert.deepStrictEqual(
        dones,
        [...dones].sort((a, b) => a - b)
      )
      assert.strictEqual((yield* call("GET", "/api/events", { token: null })).status, 401)
    })
  )

  it.scopedLive("a body over the limit is refused with 413, before anything is stored", () =>
    Effect.gen(function* () {
      const { call } = yield* server({ maxBodyBytes: 1024 })
      const big = yield* call("POST", "/api/tasks", {
        body: { kind: "count", input: { to: 1, ms: 1, padding: "x".repeat(4096) }, id: "big" }
      })
      assert.strictEqual(big.status, 413, big.text)
      assert.strictEqual((yield* call("GET", "/api/tasks/big")).status, 404)
    })
  )

  it.scopedLive(
    "interest: a task nobody polls pauses; a poll with resume=1 resumes it, and polling keeps it running",
    () =>
      Effect.gen(function* () {
        const { call } = yield* server()
        yield* call("POST", "/api/tasks", { body: { kind: "wanted", input: { to: 60, ms: 20 }, id: "w1" } })
        yield* until(
          Effect.map(call("GET", "/api/tasks/w1"), (r) => r.body.status === "paused"),
          "the unpolled task pauses"
        )
        assert.match((yield* call("GET", "/api/tasks/w1")).body.reason, /^nobody polled it for/)
        const resumed = yield* call("GET", "/api/tasks/w1?poll=1&resume=1")
        assert.deepStrictEqual([resumed.status, resumed.body.status], [200, "running"])
        // Polled every 100 ms (under its 300 ms timeout), it runs to the end.
        yield* until(
          Effect.map(call("GET", "/api/tasks/w1?poll=1"), (r) => r.body.status === "completed"),
          "the polled task completes"
        )
      })
  )
})

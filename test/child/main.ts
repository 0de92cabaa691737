/**
 * A child process for the multi-process tests: crash (SIGKILL), CAS contention and zombie fencing (SIGSTOP).
 * It is bundled once per test run (see `test/helpers/child.ts`) so each spawn starts in ~0.1 s.
 *
 *   checkpoint <store> <id>      run (or resume) a task that checkpoints {n} in a loop, printing "ACK n" after each
 *   increment <store> <id> <k>   do k compare-and-swap increments of progress.done on record <id>
 *   logs <store> <id> <k>        append k log lines to <id>, one call each
 *   hammer <store> <id>          create <id>, then update it back to back with no pause at all, printing "ACK n"
 *   zombie <store> <id>          run a task, checkpointing every 20 ms; at exit print "WRITES" and every update's
 *                                start time and outcome; exits once another runner holds the task
 *   resume <store> <id>          resume <id> as soon as it is resumable, then checkpoint like `zombie`
 *   unclosed <store> <id>        build the store in a scope never closed, create and update <id>, print "DONE",
 *                                and return without exiting: the process must end by itself
 */
import { Context, Effect, Layer, Schema, Scope, Stream } from "effect"
import { Task, TaskRunner, TaskStore } from "../../src/index.js"
import * as StoreUrl from "../../src/StoreUrl.js"
import { increment } from "../helpers/store.js"
import { record } from "../helpers/store.js"

const [mode, spec = "", id = "t", arg = "0"] = process.argv.slice(2)

const storeLayer = (s: string): Layer.Layer<TaskStore.TaskStore, unknown> => StoreUrl.layer(s)

const say = (line: string) => Effect.sync(() => process.stdout.write(line + "\n"))

/** Counts checkpoints; 1 KiB of padding makes each write the size of a small real state. */
export const Crash = Task.make({
  name: "crash",
  input: Schema.Struct({ pauseMs: Schema.Number }),
  state: Schema.Struct({ n: Schema.Number, pad: Schema.String }),
  success: Schema.Number,
  initial: () => ({ n: 0, pad: "x".repeat(1024) }),
  run: (input, task) =>
    Effect.gen(function* () {
      let n = task.state.n
      for (;;) {
        n++
        yield* task.checkpoint({ n, pad: task.state.pad })
        yield* say(`ACK ${n}`)
        if (input.pauseMs > 0) yield* Effect.sleep(input.pauseMs)
      }
    })
})

const writes: Array<{ start: number; ok: boolean }> = []

/**
 * Records every update this process makes: when it started and whether the store accepted it. It hears of no change
 * (`changes` is empty): the zombie test is about fencing its writes, and a runner that heard of the takeover first
 * would stop before it tried any (that faster guard is tested on its own).
 */
const counted = Layer.effect(
  TaskStore.TaskStore,
  Effect.map(TaskStore.TaskStore, (store) => ({
    ...store,
    changes: Stream.empty,
    update: (id: string, expected: number, patch: Parameters<typeof store.update>[2]) => {
      const start = Date.now()
      return store.update(id, expected, patch).pipe(
        Effect.tapBoth({
          onFailure: () => Effect.sync(() => writes.push({ start, ok: false })),
          onSuccess: () => Effect.sync(() => writes.push({ start, ok: true }))
        })
      )
    }
  }))
)

const program = Effect.gen(function* () {
  const runner = yield* TaskRunner.TaskRunner
  const store = yield* TaskStore.TaskStore
  switch (mode) {
    case "checkpoint": {
      const exists = yield* Effect.either(store.getInfo(id))
      if (exists._tag === "Right") yield* runner.resume(id)
      else yield* runner.start(Crash, { pauseMs: 0 }, { id })
      return yield* Effect.never
    }
    case "increment": {
      for (let k = 0; k < Number(arg); k++) yield* increment(store, id)
      return yield* say("DONE")
    }
    case "logs": {
      for (let k = 0; k < Number(arg); k++) {
        yield* store.appendLogs(id, [{ time: Date.now(), level: "INFO", message: `${process.pid} ${k}` }], {
          keep: 1_000_000
        })
      }
      return yield* say("DONE")
    }
    case "hammer": {
      let info = yield* store.create(record(id))
      for (let n = 1; ; n++) {
        info = yield* store.update(id, info.revision, { progress: { done: n } })
        yield* say(`ACK ${n}`)
      }
    }
    case "zombie":
    case "resume": {
      if (mode === "zombie") yield* runner.start(Crash, { pauseMs: 20 }, { id })
      else {
        // Not resumable until the zombie's lease expires: try again every 50 ms.
        for (let k = 0; ; k++) {
          const resumed = yield* Effect.either(runner.resume(id))
          if (resumed._tag === "Right") break
          if (resumed.left._tag !== "TaskNotResumable" || k > 400) return yield* resumed.left
          yield* Effect.sleep("50 millis")
        }
        yield* say("RESUMED")
      }
      // Run until another process holds the task, then report every write.
      for (;;) {
        yield* Effect.sleep("100 millis")
        const info = yield* store.getInfo(id)
        if (info.lease !== undefined && info.lease.holder.pid !== process.pid) break
      }
      yield* Effect.sleep("500 millis")
      yield* say(`WRITES ${JSON.stringify(writes)}`)
      return
    }
    default:
      throw new Error(`unknown mode ${mode}`)
  }
})

const leaseOptions: Partial<TaskRunner.Options> =
  mode === "zombie" || mode === "resume" ? { leaseDuration: "1500 millis", flushInterval: "200 millis" } : {}

const main = program.pipe(
  Effect.provide(TaskRunner.layer({ tasks: [Crash], ...leaseOptions }).pipe(Layer.provideMerge(counted))),
  Effect.provide(storeLayer(spec))
)

/**
 * `unclosed <store> <id>`: a program that builds its store in a scope it never closes, writes once and returns
 * without `process.exit`: nothing of the store may keep it alive after that.
 */
const unclosed = Effect.gen(function* () {
  const context = yield* Layer.buildWithScope(storeLayer(spec), yield* Scope.make())
  const store = Context.get(context, TaskStore.TaskStore)
  const info = yield* store.create(record(id))
  yield* store.update(id, info.revision, { progress: { done: 1 } })
  yield* say("DONE")
})

if (mode === "unclosed") {
  Effect.runPromise(unclosed).catch((e) => {
    process.stderr.write(`child failed: ${String(e)}\n`)
    process.exit(1)
  })
} else {
  Effect.runPromise(main as Effect.Effect<void, unknown>).then(
    () => process.exit(0),
    (e) => {
      process.stderr.write(`child failed: ${String(e)}\n`)
      process.exit(1)
    }
  )
}

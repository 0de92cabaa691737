/**
 * Resume on poll: a task runs while someone polls it. When the poller goes away the interest timeout pauses it; when
 * a poll with `resume: true` comes back, it continues from its checkpoint.
 *
 *   npx tsx examples/resume-on-poll.ts
 */
import { Effect, Layer, Schema } from "effect"
import { Task, TaskRunner, TaskStore } from "@vectorlink/task"

const Report = Task.make({
  name: "report",
  input: Schema.Struct({ pages: Schema.Int }),
  state: Schema.Struct({ page: Schema.Int }),
  success: Schema.String,
  initial: () => ({ page: 0 }),
  run: (input, task) =>
    Effect.gen(function* () {
      yield* task.total(input.pages)
      task.setDone(task.state.page)
      for (let page = task.state.page; page < input.pages; page++) {
        yield* Effect.sleep("20 millis") // rendering a page
        yield* task.progress(1)
        yield* task.checkpoint({ page: page + 1 })
      }
      return `${input.pages} pages`
    }),
  interestTimeout: "300 millis"
})

const program = Effect.gen(function* () {
  const runner = yield* TaskRunner.TaskRunner
  const id = yield* runner.start(Report, { pages: 60 })
  // A frontend polls every 100 ms for half a second…
  for (let i = 0; i < 5; i++) {
    const info = yield* runner.poll(id)
    yield* Effect.log(`poll: ${info.status} ${info.progress.done}/${info.progress.total ?? "?"}`)
    yield* Effect.sleep("100 millis")
  }
  // …then the user closes the tab.
  yield* Effect.sleep("1500 millis")
  const idle = yield* runner.status(id)
  yield* Effect.log(`nobody polled: ${idle.status} at ${idle.progress.done} (${idle.reason})`)
  // The user comes back: the poll resumes the task.
  yield* runner.poll(id, { resume: true })
  for (;;) {
    const info = yield* runner.poll(id)
    if (info.status !== "running") break
    yield* Effect.sleep("100 millis")
  }
  yield* Effect.log(`result: ${yield* runner.result(Report, id)}`)
})

const Runner = TaskRunner.layer({ tasks: [Report], flushInterval: "100 millis" }).pipe(
  Layer.provide(TaskStore.layerMemory)
)
Effect.runPromise(program.pipe(Effect.provide(Runner), Effect.scoped))

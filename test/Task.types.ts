/**
 * Type tests, checked by `tsc --noEmit` in `npm test`: each `@ts-expect-error` fails the build if the line compiles.
 */
import { Context, Effect, Schema } from "effect"
import { Task, TaskRunner } from "../src/index.js"

export const Typed = Task.make({
  name: "typed",
  input: Schema.Struct({ path: Schema.String }),
  state: Schema.Struct({ offset: Schema.Number, written: Schema.Number }),
  success: Schema.Struct({ count: Schema.Number }),
  error: Schema.TaggedError<{ readonly _tag: "Nope" }>()("Nope", {}),
  initial: () => ({ offset: 0, written: 0 }),
  run: (input, task) =>
    Effect.gen(function* () {
      const state: { readonly offset: number; readonly written: number } = task.state
      yield* task.checkpoint({ offset: state.offset + 1, written: 0 })
      // @ts-expect-error a checkpoint of the wrong shape does not compile
      yield* task.checkpoint({ offset: "1", written: 0 })
      // @ts-expect-error a checkpoint missing a field does not compile
      yield* task.checkpoint({ offset: 1 })
      // @ts-expect-error the input is typed
      input.path.toFixed()
      return { count: input.path.length }
    })
})

export const wrongSuccess = Task.make({
  name: "wrong-success",
  input: Schema.Struct({}),
  state: Schema.Struct({}),
  success: Schema.Number,
  initial: () => ({}),
  // @ts-expect-error the result must match the success Schema
  run: () => Effect.succeed("not a number")
})

export const wrongInitial = Task.make({
  name: "wrong-initial",
  input: Schema.Struct({}),
  state: Schema.Struct({ n: Schema.Number }),
  success: Schema.Number,
  // @ts-expect-error the initial state must match the state Schema
  initial: () => ({ n: "0" }),
  run: () => Effect.succeed(1)
})

export const usage = Effect.gen(function* () {
  const runner = yield* TaskRunner.TaskRunner
  const result: { readonly count: number } = yield* runner.run(Typed, { path: "x" })
  // @ts-expect-error start checks the input type
  yield* runner.start(Typed, { path: 1 })
  const awaited = runner.await(Typed, "id")
  // The task's own error is in the error channel of await.
  const handled = awaited.pipe(Effect.catchTag("Nope", () => Effect.succeed({ count: 0 })))
  return [result, handled] as const
})

class Flat extends Schema.TaggedError<Flat>()("Flat", {}) {}
class Db extends Context.Tag("Db")<Db, { readonly url: string }>() {}

/** A child with a typed error and a service. */
export const Leaf = Task.make({
  name: "leaf",
  input: Schema.Struct({ n: Schema.Number }),
  state: Schema.Struct({}),
  success: Schema.Struct({ doubled: Schema.Number }),
  error: Flat,
  initial: () => ({}),
  run: (input) => Effect.map(Db, () => ({ doubled: input.n * 2 }))
})

export const Parent = Task.make({
  name: "parent",
  input: Schema.Struct({}),
  state: Schema.Struct({}),
  success: Schema.Number,
  error: Flat,
  initial: () => ({}),
  run: (_, task) =>
    Effect.gen(function* () {
      // The child's success type flows into the parent.
      const { doubled }: { readonly doubled: number } = yield* task.child(Leaf, { n: 1 })
      // @ts-expect-error the child's input is typed
      yield* task.child(Leaf, { n: "1" })
      // The child's typed error is in the error channel of `child`, and can be caught by its tag.
      const recovered = yield* task
        .child(Leaf, { n: 2 })
        .pipe(Effect.catchTag("Flat", () => Effect.succeed({ doubled: 0 })))
      // @ts-expect-error the child's success is not any
      const wrong: string = recovered.doubled
      return doubled + wrong.length
    })
})

/** The child's services become the parent's requirements. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
export const parentNeedsDb: Same<Task.Services<typeof Parent>, Db> = true
// @ts-expect-error and nothing else
export const parentNeedsNothing: Same<Task.Services<typeof Parent>, never> = true

export const Undeclared = Task.make({
  name: "undeclared",
  input: Schema.Struct({}),
  state: Schema.Struct({}),
  success: Schema.Number,
  initial: () => ({}),
  // @ts-expect-error a parent that neither declares nor catches its child's typed error does not compile
  run: (_, task) => Effect.map(task.child(Leaf, { n: 1 }), (r) => r.doubled)
})

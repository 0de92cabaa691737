/**
 * What every command shares: the common options, and a runner over the chosen store with the config's definitions.
 */
import * as Args from "@effect/cli/Args"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as StoreUrl from "../../StoreUrl.js"
import { UnknownTaskKind } from "../../TaskError.js"
import * as TaskRunner from "../../TaskRunner.js"
import { TaskStore } from "../../TaskStore.js"
import { type Config, loadConfig } from "./config.js"

const store = Options.text("store").pipe(
  Options.withDescription(
    "Where tasks are kept: file:DIR, sqlite:FILE or postgres://USER@HOST/DB. Default: $VLTASK_STORE, else file:.vltask."
  ),
  Options.optional
)
const config = Options.file("config").pipe(
  Options.withDescription(
    "The module that exports the task definitions. Default: $VLTASK_CONFIG, else ./vltask.config.ts."
  ),
  Options.optional
)
const verbose = Options.boolean("verbose").pipe(
  Options.withDescription("On errors, print their causes and stack traces.")
)

/** The options every command takes. */
export const common = { store, config, verbose }

/** `--json`: one JSON value on stdout and nothing else there. */
export const json = Options.boolean("json").pipe(
  Options.withDescription("Print one JSON value on stdout (and nothing else there).")
)

/** The kind argument of commands that start a task. */
export const kindArg = Args.text({ name: "kind" }).pipe(
  Args.withDescription("The task's kind, as the config names it.")
)

/** `--input` of commands that start a task. */
export const inputOption = Options.text("input").pipe(
  Options.withDescription(
    "The task's whole input as a JSON object, checked against its Schema. Default: the config's input for the kind."
  ),
  Options.optional
)

/** The task id argument. */
export const taskId = Args.text({ name: "id" }).pipe(Args.withDescription("The task's id, as `vltask list` shows it."))

/** The parsed common options. */
export interface Common {
  readonly store: Option.Option<string>
  readonly config: Option.Option<string>
}

/** The store URL the options, the environment or the default name. */
export const storeUrl = (c: Common): string =>
  Option.getOrElse(c.store, () => process.env.VLTASK_STORE ?? StoreUrl.defaultUrl)

/** What a command works with. */
export interface Context {
  readonly runner: TaskRunner.TaskRunner["Type"]
  readonly store: TaskStore["Type"]
  readonly config: Config | undefined
  readonly url: string
}

/** Opens the store and a runner over it (with the config's definitions), for the length of `f`. */
export const withRunner = <A, E>(
  c: Common,
  requireConfig: boolean,
  f: (ctx: Context) => Effect.Effect<A, E, Scope.Scope>
) =>
  Effect.gen(function* () {
    const loaded = yield* loadConfig(c.config, requireConfig)
    const url = storeUrl(c)
    const layer = TaskRunner.layer({ tasks: loaded?.tasks ?? [] }).pipe(Layer.provideMerge(StoreUrl.layer(url)))
    return yield* Effect.gen(function* () {
      const runner = yield* TaskRunner.TaskRunner
      const taskStore = yield* TaskStore
      return yield* f({ runner, store: taskStore, config: loaded, url })
    }).pipe(Effect.scoped, Effect.provide(layer))
  })

/** Reads a task's whole record, which checks it (the file store's checksum): a damaged record fails `Corrupt`. */
export const verify = (ctx: Context, id: string) => Effect.asVoid(ctx.store.get(id))

/** The config's definition of `kind`. */
export const definition = (ctx: Context, kind: string) => {
  const task = ctx.config?.tasks.find((t) => t.name === kind)
  return task === undefined
    ? Effect.fail(new UnknownTaskKind({ kind, known: (ctx.config?.tasks ?? []).map((t) => t.name) }))
    : Effect.succeed(task)
}

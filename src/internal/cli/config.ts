/**
 * The CLI's configuration: the `vltask.config.ts` module with the task definitions, where it is looked for, and how
 * it is loaded.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { existsSync } from "node:fs"
import { resolve } from "node:path"
import type * as Task from "../../Task.js"
import { importConfig } from "./importConfig.js"

/**
 * What a `vltask.config.ts` module exports (as `default`, or as named `tasks` and `inputs`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Config {
  /** The task definitions the CLI can run and resume (tasks that need no services of their own). */
  readonly tasks: ReadonlyArray<Task.AnyNoContext>
  /** Default input per kind, used when `--input` is absent. */
  readonly inputs?: Readonly<Record<string, unknown>> | undefined
}

/**
 * The config file names looked for in the working directory.
 *
 * @since 0.1.0
 * @category utils
 */
export const configNames = ["vltask.config.ts", "vltask.config.mts", "vltask.config.js", "vltask.config.mjs"]

/**
 * No configuration module was found where one is needed.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConfigNotFound extends Schema.TaggedError<ConfigNotFound>()("ConfigNotFound", {
  path: Schema.String
}) {
  override get message(): string {
    return `No vltask config found (looked for ${this.path}). Create vltask.config.ts exporting { tasks: [...] }, or pass --config FILE.`
  }
}

/**
 * The configuration module failed to load or exports no tasks.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConfigInvalid extends Schema.TaggedError<ConfigInvalid>()("ConfigInvalid", {
  path: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `The vltask config ${this.path} cannot be used: ${this.detail}.`
  }
}

/** The config path given (`--config`, `$VLTASK_CONFIG`) or the first of `configNames` that exists here. */
export const findConfig = (given: Option.Option<string>): string | undefined => {
  const path = Option.getOrUndefined(given) ?? process.env.VLTASK_CONFIG
  if (path !== undefined) return resolve(path)
  return configNames.map((n) => resolve(n)).find((p) => existsSync(p))
}

/** Loads the config; `undefined` when there is none and none is `required`. */
export const loadConfig = (
  given: Option.Option<string>,
  required: boolean
): Effect.Effect<Config | undefined, ConfigNotFound | ConfigInvalid> =>
  Effect.gen(function* () {
    const path = findConfig(given)
    if (path === undefined || !existsSync(path)) {
      if (!required) return undefined
      return yield* new ConfigNotFound({ path: path ?? configNames.map((n) => resolve(n)).join(", ") })
    }
    const module = yield* Effect.tryPromise({
      try: () => importConfig(path),
      catch: (e) => new ConfigInvalid({ path, detail: e instanceof Error ? e.message : String(e) })
    })
    const candidate = (module.default ?? module) as Partial<Config>
    if (!Array.isArray(candidate.tasks)) {
      return yield* new ConfigInvalid({ path, detail: "it exports no `tasks` array" })
    }
    return { tasks: candidate.tasks, inputs: candidate.inputs }
  })

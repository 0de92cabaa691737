/**
 * The `vltask` command line: run tasks with a live progress bar, and list, show, watch, pause, cancel, resume, read
 * logs and results of tasks any process runs on the same store. Each command lives in `internal/cli/commands/`; the
 * program on Node is `internal/cli/main.ts`, loaded by `bin.ts`.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import { gc } from "./internal/cli/commands/gc.js"
import { list } from "./internal/cli/commands/list.js"
import { logs } from "./internal/cli/commands/logs.js"
import { remove } from "./internal/cli/commands/delete.js"
import { result } from "./internal/cli/commands/result.js"
import { resume } from "./internal/cli/commands/resume.js"
import { run } from "./internal/cli/commands/run.js"
import { show } from "./internal/cli/commands/show.js"
import { stopCommand } from "./internal/cli/commands/stop.js"
import { submit } from "./internal/cli/commands/submit.js"
import { watch } from "./internal/cli/commands/watch.js"
import { serve } from "./internal/cli/commands/serve.js"
import { worker } from "./internal/cli/commands/worker.js"
import type { Config } from "./internal/cli/config.js"
import { version } from "./internal/version.js"

export {
  /**
   * What a `vltask.config.ts` module exports (as `default`, or as named `tasks` and `inputs`).
   *
   * @since 0.1.0
   * @category models
   */
  type Config,
  /**
   * No configuration module was found where one is needed.
   *
   * @since 0.1.0
   * @category errors
   */
  ConfigNotFound,
  /**
   * The configuration module failed to load or exports no tasks.
   *
   * @since 0.1.0
   * @category errors
   */
  ConfigInvalid,
  /**
   * The config file names looked for in the working directory.
   *
   * @since 0.1.0
   * @category utils
   */
  configNames
} from "./internal/cli/config.js"
export {
  /**
   * The exit code for an error that reached the top.
   *
   * @since 0.1.0
   * @category utils
   */
  exitCodeOf,
  /**
   * Exit codes, distinct per kind of failure: 0 completed, 1 other failures (a store that failed), 2 usage, 3 not found,
   * 4 not resumable, 5 task failed or cancelled, 6 paused by request, 130 interrupted.
   *
   * @since 0.1.0
   * @category utils
   */
  exitCodes,
  /**
   * `--input` is not JSON or does not match the task's input Schema.
   *
   * @since 0.1.0
   * @category errors
   */
  InvalidInput,
  /**
   * An option's value is not what it must be (such as `gc --older-than 7x`).
   *
   * @since 0.1.0
   * @category errors
   */
  InvalidOption,
  /**
   * Prints an error as one line (and a hint); with `verbose`, its causes and stack trace too.
   *
   * @since 0.1.0
   * @category utils
   */
  report,
  /**
   * A task ended other than completed, or its run stopped because the store failed.
   *
   * @since 0.1.0
   * @category errors
   */
  TaskEnded
} from "./internal/cli/errors.js"
export {
  /**
   * `7d`, `12h`, `30m`, `90s`, or an Effect duration such as `2 hours`.
   *
   * @since 0.1.0
   * @category utils
   */
  parseDuration
} from "./internal/cli/commands/gc.js"

/**
 * Declares a CLI configuration (an identity function that gives you type checking).
 *
 * @since 0.1.0
 * @category constructors
 */
export const defineConfig = (config: Config): Config => config

/**
 * The whole command tree.
 *
 * @since 0.1.0
 * @category constructors
 */
export const command = Command.make("vltask").pipe(
  Command.withDescription("Durable, resumable, observable long-running tasks"),
  Command.withSubcommands([
    run,
    list,
    show,
    watch,
    stopCommand("pause"),
    stopCommand("cancel"),
    resume,
    logs,
    result,
    remove,
    gc,
    submit,
    worker,
    serve
  ])
)

/**
 * Parses `argv` (as `process.argv`) and runs the command.
 *
 * @since 0.1.0
 * @category constructors
 */
export const cli = Command.run(command, { name: "vltask", version })

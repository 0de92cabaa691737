/**
 * The `vltask` program: the CLI on Node, with `runMain` so that Ctrl-C interrupts the running fibers (which pauses
 * the tasks they run at their last checkpoint). `bin.ts` loads it.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import { cli, report } from "../../Cli.js"
import { tidyHelp } from "./help.js"

const verbose = process.argv.includes("--verbose")

/**
 * @effect/cli writes help with `Console.log` and usage errors with `Console.error`. Help is tidied (no per-type
 * boilerplate, `vltask` in USAGE) and keeps its ANSI styles only on a terminal without `NO_COLOR`
 * (https://no-color.org); usage errors are left to `report`, which prints them in the one-line form of every error.
 */
const colors = process.stdout.isTTY === true && (process.env.NO_COLOR ?? "") === ""
const plain = (value: unknown) => (typeof value === "string" ? value.replace(/\x1b\[[0-9;]*m/g, "") : value)
const help = (value: unknown) => (typeof value === "string" ? tidyHelp(value) : value)
const ownConsole = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Console.consoleWith((console) =>
    Effect.withConsole(effect, {
      ...console,
      log: (...args) => console.log(...args.map((a) => (colors ? help(a) : plain(help(a))))),
      error: () => Effect.void
    })
  )

/** Without `--verbose`, a log line on the terminal is one line: its level and message, without causes or fields. */
const oneLine = Logger.make(({ logLevel, message }) => {
  const text = (Array.isArray(message) ? message : [message]).map((m) => (typeof m === "string" ? m : String(m)))
  const level = logLevel._tag === "Warning" ? "warning" : logLevel.label.toLowerCase()
  process.stderr.write(`vltask: ${level}: ${text.join(" ")}\n`)
})

// runMain interrupts the program at the first SIGINT/SIGTERM and then stops listening, so a second signal would kill
// the process before its tasks are paused. One Ctrl-C in a terminal often arrives twice (directly, and relayed by npm
// or tsx): signals within a second of the first are absorbed; a later one forces the exit (the task is then left
// running-but-stale, which is still resumable).
let firstSignalAt: number | undefined
const absorbRepeatedSignals = () => {
  const now = Date.now()
  if (firstSignalAt === undefined) firstSignalAt = now
  else if (now - firstSignalAt > 1000) {
    process.stderr.write("vltask: interrupted again; exiting without waiting (the task stays resumable)\n")
    process.exit(130)
  }
}
process.on("SIGINT", absorbRepeatedSignals)
process.on("SIGTERM", absorbRepeatedSignals)

cli(process.argv).pipe(
  Effect.catchAll((error) => report(error, verbose)),
  Effect.catchAllDefect((defect) => report(defect, true)),
  // Task logs are kept in the store (`vltask logs`); the terminal shows the progress bar and only warnings and
  // errors (the level filter is on the terminal's logger alone, so tasks still capture every line).
  Effect.provide(
    Logger.replace(
      Logger.defaultLogger,
      verbose
        ? Logger.filterLogLevel(Logger.prettyLogger({ stderr: true }), (level) =>
            LogLevel.greaterThanEqual(level, LogLevel.Debug)
          )
        : Logger.filterLogLevel(oneLine, (level) => LogLevel.greaterThanEqual(level, LogLevel.Warning))
    )
  ),
  ownConsole,
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({
    disableErrorReporting: true,
    // Our own filtered logger replaces the default one; runMain must not add its unfiltered pretty logger.
    disablePrettyLogger: true,
    // Commands set process.exitCode (distinct codes per kind of error); runMain would otherwise exit with 0 or 1.
    teardown: (exit, onExit) =>
      onExit(typeof process.exitCode === "number" ? process.exitCode : exit._tag === "Failure" ? 1 : 0)
  })
)

/**
 * The CLI's own errors, its exit codes, and how an error that reaches the top is printed: one line (and a hint), with
 * its causes and stack traces only under `--verbose`.
 */
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

/**
 * `--input` is not JSON or does not match the task's input Schema.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidInput extends Schema.TaggedError<InvalidInput>()("InvalidInput", {
  kind: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `Invalid input for ${JSON.stringify(this.kind)}: ${this.detail}. Pass --input with a JSON object.`
  }
}

/**
 * An option's value is not what it must be (such as `gc --older-than 7x`).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidOption extends Schema.TaggedError<InvalidOption>()("InvalidOption", {
  option: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `${this.option}: ${this.detail}.`
  }
}

/**
 * A task ended other than completed (for `run`, `resume`, `watch`, `result`), or its run stopped because the store
 * failed (`status: "stopped"`).
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskEnded extends Schema.TaggedError<TaskEnded>()("TaskEnded", {
  id: Schema.String,
  status: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return this.status === "stopped"
      ? `Task ${this.id} stopped: ${this.detail} Resume it with \`vltask resume ${this.id}\` once that is fixed.`
      : `Task ${this.id} ${this.status}: ${this.detail}`
  }
}

/**
 * Exit codes, distinct per kind of failure.
 *
 * @since 0.1.0
 * @category utils
 */
export const exitCodes = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  notResumable: 4,
  taskFailed: 5,
  paused: 6,
  interrupted: 130
} as const

/**
 * The exit code for an error that reached the top.
 *
 * @since 0.1.0
 * @category utils
 */
export const exitCodeOf = (error: { readonly _tag?: string }): number => {
  switch (error._tag) {
    case "ValidationError":
    case "InvalidTaskId":
    case "InvalidStoreUrl":
    case "InvalidInput":
    case "InvalidOption":
    case "UnknownTaskKind":
    case "TaskKindMismatch":
    case "TaskInputMismatch":
    case "ConfigNotFound":
    case "ConfigInvalid":
      return exitCodes.usage
    case "TaskNotFound":
      return exitCodes.notFound
    case "TaskNotResumable":
    case "TaskNotCompleted":
    case "TaskStillRunning":
      return exitCodes.notResumable
    case "TaskEnded": {
      const status = (error as { readonly status?: string }).status
      return status === "paused" ? exitCodes.paused : status === "stopped" ? exitCodes.failure : exitCodes.taskFailed
    }
    default:
      return exitCodes.failure
  }
}

/** A hint printed under an error's one-line message, where the message alone does not say what to do. */
type Hinted = { readonly id?: string; readonly status?: string; readonly reason?: string }
const hints: Record<string, (error: Hinted) => string | undefined> = {
  TaskNotFound: () => "List the tasks of this store with `vltask list` (and check --store).",
  TaskNotResumable: (e) => `See the task with \`vltask show ${e.id ?? "<id>"}\`.`,
  TaskStoreError: (e) =>
    e.reason === "Corrupt" && e.id !== undefined
      ? `\`vltask delete ${e.id} --force\` forgets it and its log.`
      : "Run with --verbose for its causes.",
  TaskEnded: (e) => (e.status === "stopped" ? undefined : `See its logs with \`vltask logs ${e.id ?? "<id>"}\`.`)
}

/** The command the arguments name (for the hint under a usage error). */
const commandOf = (argv: ReadonlyArray<string>): string | undefined => argv.slice(2).find((a) => !a.startsWith("-"))

const plainText = (doc: HelpDoc.HelpDoc) =>
  HelpDoc.toAnsiText(doc)
    .replace(/\x1b\[[0-9;]*m/g, "")
    .replace(/\s+/g, " ")
    .trim()

/** An error and the errors it was caused by, each in a line, then the innermost stack trace. */
export const causes = (error: unknown): string => {
  const lines: Array<string> = []
  let current: unknown = error
  let innermost: unknown = error
  for (let depth = 0; current !== undefined && current !== null && depth < 8; depth++) {
    innermost = current
    if (typeof current !== "object") {
      lines.push(`${depth === 0 ? "" : "caused by: "}${String(current)}`)
      break
    }
    const e = current as Record<string, unknown> & { readonly errors?: ReadonlyArray<unknown> }
    const name = typeof e._tag === "string" ? e._tag : typeof e.name === "string" ? e.name : "Error"
    const details = ["code", "errno", "syscall", "address", "port", "path"]
      .filter((k) => e[k] !== undefined && (k !== "errno" || typeof e[k] === "string"))
      .map((k) => `${k}=${String(e[k])}`)
    lines.push(
      `${depth === 0 ? "" : "caused by: "}${name}: ${String(e.message ?? "")}${details.length === 0 ? "" : ` (${details.join(", ")})`}`
    )
    // A connection to "localhost" tries every address: Node reports them together.
    if (Array.isArray(e.errors)) for (const inner of e.errors) lines.push(`  ${causes(inner).split("\n", 1)[0]}`)
    current = e.cause
  }
  const stack = innermost instanceof Error ? innermost.stack : undefined
  return [...lines, ...(stack === undefined ? [] : [stack])].join("\n")
}

/**
 * Prints an error as one line (and a hint); with `verbose`, its causes and stack trace too.
 *
 * @since 0.1.0
 * @category utils
 */
export const report = (error: unknown, verbose: boolean): Effect.Effect<void> =>
  Effect.sync(() => {
    if (ValidationError.isValidationError(error)) {
      if (ValidationError.isHelpRequested(error)) {
        process.exitCode = exitCodes.ok
        return
      }
      // @effect/cli's own rendering of usage errors is suppressed (see main.ts): one line in our form instead.
      const text = "error" in error ? plainText(error.error) : (error as { readonly _tag: string })._tag
      const command = commandOf(process.argv)
      const known = command !== undefined && !/Invalid subcommand/.test(text)
      process.stderr.write(`vltask: ${text}\nhint: see \`vltask ${known ? `${command} ` : ""}--help\`.\n`)
      process.exitCode = exitCodes.usage
      return
    }
    const tagged = (typeof error === "object" && error !== null ? error : { message: String(error) }) as {
      readonly _tag?: string
      readonly message?: string
    }
    if (tagged._tag === "TaskEnded" && (error as TaskEnded).status === "paused") {
      // Paused by a request (another terminal, an interest timeout): information, with what to do next.
      const ended = error as TaskEnded
      process.stdout.write(`Paused ${ended.id} (${ended.detail}). Resume it with: vltask resume ${ended.id}\n`)
    } else {
      process.stderr.write(`vltask: ${tagged.message ?? String(error)}\n`)
      const hint = tagged._tag === undefined || verbose ? undefined : hints[tagged._tag]?.(tagged as Hinted)
      if (hint !== undefined) process.stderr.write(`hint: ${hint}\n`)
      if (verbose) process.stderr.write(`${causes(error)}\n`)
    }
    process.exitCode = exitCodeOf(tagged)
  })

/**
 * Process identity: who holds a lease or a lock, and whether that holder can still be alive. A holder on this host
 * whose process is gone is dead at once; a holder on another host is only presumed dead when its lease expires.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import { readFileSync } from "node:fs"
import { hostname } from "node:os"

/**
 * Who holds a lease: enough to tell, on the same host, whether the holder process still lives.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Holder = Schema.Struct({
  host: Schema.String,
  pid: Schema.Number,
  /** The holder process's start time (OS clock ticks since boot on Linux), so a reused pid is not mistaken for it. */
  processStart: Schema.String
})
/**
 * @since 0.1.0
 * @category models
 */
export type Holder = typeof Holder.Type

/**
 * The start time of process `pid` as the OS reports it (clock ticks since boot on Linux), or "" where unknown.
 *
 * @since 0.1.0
 * @category utils
 */
export const processStart = (pid: number): string => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // The command name (field 2) may contain spaces and parentheses: fields are counted after its closing ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return fields[19] ?? ""
  } catch {
    return ""
  }
}

// This process's start time never changes: read it once, not on every staleness check.
let ownStart: string | undefined

/**
 * This process as a holder, on `host` (default: the OS host name).
 *
 * @since 0.1.0
 * @category constructors
 */
export const self = (host: string = hostname()): Holder => ({
  host,
  pid: process.pid,
  processStart: (ownStart ??= processStart(process.pid))
})

/**
 * A holder printed for people: `pid 123 on host-a`.
 *
 * @since 0.1.0
 * @category utils
 */
export const describe = (holder: Holder): string => `pid ${holder.pid} on ${holder.host}`

/**
 * Whether `holder` may still be running, seen from `me`. Only same-host holders can be proven dead.
 *
 * @since 0.1.0
 * @category predicates
 */
export const mayBeAlive = (holder: Holder, me: Holder): boolean => {
  if (holder.host !== me.host) return true
  // Stryker disable next-line ConditionalExpression: this process is alive; the check below would say the same, slower.
  if (holder.pid === me.pid) return holder.processStart === me.processStart
  try {
    process.kill(holder.pid, 0)
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    // Stryker disable next-line all: the tests run as root, who may signal any process: EPERM never happens there.
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
  const start = processStart(holder.pid)
  // A start time that cannot be read (no /proc), now or when the lease was taken, proves nothing: maybe alive.
  // Stryker disable next-line all: a live process's /proc entry is always readable here.
  if (start === "") return true
  return holder.processStart === "" || start === holder.processStart
}

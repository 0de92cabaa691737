/**
 * Leases: who holds a task, and whether that holder can still be alive. A holder on this host whose process is gone
 * is dead at once; a holder on another host is only presumed dead when its lease expires.
 *
 * @since 0.1.0
 */
import { readFileSync } from "node:fs"
import { hostname } from "node:os"
import * as TaskId from "./TaskId.js"
import type * as TaskRecord from "./TaskRecord.js"

/** The start time of process `pid` as the OS reports it (clock ticks since boot on Linux), or "" where unknown. */
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

/** This process as a lease holder. */
export const self = (host: string = hostname()): TaskRecord.Holder => ({
  host,
  pid: process.pid,
  processStart: (ownStart ??= processStart(process.pid))
})

/** A holder printed for people: `pid 123 on host-a`. */
export const describe = (holder: TaskRecord.Holder): string => `pid ${holder.pid} on ${holder.host}`

/** Whether `holder` may still be running, seen from `me`. Only same-host holders can be proven dead. */
export const holderMayBeAlive = (holder: TaskRecord.Holder, me: TaskRecord.Holder): boolean => {
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

/** A fresh lease for `holder` until `now + durationMs`. */
export const make = (holder: TaskRecord.Holder, now: number, durationMs: number): TaskRecord.Lease => ({
  token: TaskId.make(now),
  holder,
  expiresAt: now + durationMs
})

/** True when a running task's lease can be taken over: expired, or held by a dead process on this host. */
export const isStale = (info: TaskRecord.TaskInfo, now: number, me: TaskRecord.Holder): boolean =>
  info.status === "running" &&
  (info.lease === undefined || info.lease.expiresAt <= now || !holderMayBeAlive(info.lease.holder, me))

/**
 * Renders a task's progress for people: a bar with percent, done/total, rate, ETA and message on a terminal, and
 * periodic plain lines when the output is not a terminal.
 *
 * @since 0.1.0
 */
import type * as TaskRecord from "../../TaskRecord.js"

const number = new Intl.NumberFormat("en-US")

/** `1:05`, `1:02:03` from milliseconds. */
export const clock = (ms: number): string => {
  const s = Math.max(0, Math.round(ms / 1000))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const sec = String(s % 60).padStart(2, "0")
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`
}

/** A rate for people: `1,234/s`, `12.5/s`, `0.20/s`. */
export const rate = (perSecond: number): string =>
  perSecond >= 100 ? `${number.format(Math.round(perSecond))}/s` : `${perSecond.toFixed(perSecond >= 10 ? 1 : 2)}/s`

/** The parts of a progress line, without the bar. */
export const describe = (info: TaskRecord.TaskInfo): string => {
  const p = info.progress
  const parts: Array<string> = []
  if (p.total !== undefined && p.total > 0) {
    parts.push(`${Math.floor((100 * p.done) / p.total)}%`.padStart(4))
    parts.push(`${number.format(p.done)}/${number.format(p.total)}`)
  } else parts.push(number.format(p.done))
  if (p.rate !== undefined) parts.push(rate(p.rate))
  if (p.eta !== undefined && info.status === "running") parts.push(`ETA ${clock(p.eta)}`)
  if (p.message !== undefined) parts.push(p.message)
  return parts.join("  ")
}

/** One terminal line: `status [#####.....] 42%  4,200/10,000  1,234/s  ETA 0:05  message`, cut to `width`. */
export const line = (info: TaskRecord.TaskInfo, width: number): string => {
  const p = info.progress
  const barWidth = 24
  const fraction = p.total !== undefined && p.total > 0 ? Math.min(1, p.done / p.total) : undefined
  const bar =
    fraction === undefined
      ? ""
      : `[${"#".repeat(Math.round(fraction * barWidth))}${".".repeat(barWidth - Math.round(fraction * barWidth))}] `
  const text = `${info.status.padEnd(9)} ${bar}${describe(info)}`
  return text.length > width ? text.slice(0, Math.max(0, width - 1)) + "…" : text
}

/** Where progress goes: a redrawn line on a terminal, a plain line every `plainEveryMs` elsewhere. */
export class Display {
  private lastPlain = 0
  private drawn = false

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly plainEveryMs = 2000
  ) {}

  get isTTY(): boolean {
    return this.out.isTTY === true
  }

  /** Shows the latest state; on a terminal redraws in place. */
  update(info: TaskRecord.TaskInfo, force = false): void {
    if (this.isTTY) {
      this.out.write(`\r\x1b[K${line(info, (this.out.columns ?? 100) - 1)}`)
      this.drawn = true
      return
    }
    const now = Date.now()
    if (!force && now - this.lastPlain < this.plainEveryMs) return
    this.lastPlain = now
    this.out.write(`${info.id} ${info.status} ${describe(info)}\n`)
  }

  /** Ends the live line so normal output can follow. */
  done(): void {
    if (this.isTTY && this.drawn) this.out.write("\n")
    this.drawn = false
  }
}

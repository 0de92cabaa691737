/**
 * Spawning the test children (`test/child/*.ts`) as real processes: each bundled once with esbuild so it starts fast.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { mkdirSync } from "node:fs"
import { join, resolve } from "node:path"
import { build } from "esbuild"

/** The child programs under `test/child/`. */
export type ChildEntry = "main" | "busy"

const bundled = new Map<ChildEntry, Promise<string>>()

/** The path of the bundled child script, built on first use. */
export const childScript = (entry: ChildEntry = "main"): Promise<string> => {
  const existing = bundled.get(entry)
  if (existing !== undefined) return existing
  const built = (async () => {
    // Inside the repository's node_modules, so the native drivers left out of the bundle resolve from there.
    const dir = resolve(import.meta.dirname, "../../node_modules/.cache/vltask-test")
    mkdirSync(dir, { recursive: true })
    const outfile = join(dir, `${entry}-${process.pid}-${Date.now()}.mjs`)
    await build({
      entryPoints: [resolve(import.meta.dirname, `../child/${entry}.ts`)],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      outfile,
      logLevel: "warning",
      external: ["better-sqlite3", "pg", "pg-native"],
      banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" }
    })
    return outfile
  })()
  bundled.set(entry, built)
  return built
}

/** A running child with its stdout split into lines. */
export class Child {
  readonly lines: Array<string> = []
  readonly exited: Promise<number | null>
  private waiters: Array<() => void> = []
  stderr = ""

  constructor(readonly process: ChildProcess) {
    let partial = ""
    process.stdout!.setEncoding("utf8")
    process.stdout!.on("data", (chunk: string) => {
      partial += chunk
      const parts = partial.split("\n")
      partial = parts.pop()!
      this.lines.push(...parts)
      for (const w of this.waiters.splice(0)) w()
    })
    process.stderr!.setEncoding("utf8")
    process.stderr!.on("data", (chunk: string) => {
      this.stderr += chunk
    })
    this.exited = new Promise((resolveExit) =>
      process.on("close", (code) => {
        for (const w of this.waiters.splice(0)) w()
        resolveExit(code)
      })
    )
  }

  /** Resolves with the first line (from `from` on) that matches, or rejects after `timeoutMs`. */
  async waitFor(match: (line: string) => boolean, timeoutMs = 15_000, from = 0): Promise<string> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const found = this.lines.slice(from).find(match)
      if (found !== undefined) return found
      if (this.process.exitCode !== null || this.process.signalCode !== null) {
        throw new Error(`child exited (${this.process.exitCode ?? this.process.signalCode}) before: ${this.stderr}`)
      }
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for a line; stderr: ${this.stderr}`)
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 200))
        this.waiters.push(() => {
          clearTimeout(t)
          r()
        })
      })
    }
  }

  /** The highest n of the "ACK n" lines seen so far (0 if none). */
  lastAck(): number {
    let n = 0
    for (const line of this.lines) if (line.startsWith("ACK ")) n = Math.max(n, Number(line.slice(4)))
    return n
  }
}

/** Spawns the bundled child `entry` (default `main`) with `args`. */
export const spawnChild = async (args: ReadonlyArray<string>, entry: ChildEntry = "main"): Promise<Child> => {
  const script = await childScript(entry)
  return new Child(spawn(process.execPath, [script, ...args], { stdio: ["ignore", "pipe", "pipe"] }))
}

/** The pid of a process that has just exited: a holder that is provably gone (until the pid is reused). */
export const deadPid = (): number => spawnSync(process.execPath, ["-e", "process.exit(0)"]).pid!

/** A live process that does nothing for a minute: a holder that is provably alive. Kill it when done. */
export const spawnSleeper = (): ChildProcess =>
  spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" })

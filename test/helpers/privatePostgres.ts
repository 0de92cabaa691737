/**
 * A Postgres server of a test's own (initdb in a temp directory, its own port), for what must not be done to the
 * machine's shared server: stopping and restarting it. Runs as the `postgres` user when the tests run as root
 * (initdb refuses root). `undefined` where the server binaries are not installed.
 */
import { execFileSync } from "node:child_process"
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir, userInfo } from "node:os"
import { join } from "node:path"

/** The directory of the Postgres server binaries, if installed (Debian's layout). */
const binaries = (): string | undefined => {
  const root = "/usr/lib/postgresql"
  if (!existsSync(root)) return undefined
  const version = readdirSync(root).sort().pop()
  return version === undefined ? undefined : join(root, version, "bin")
}

/** A free TCP port on loopback. */
const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port
      server.close(() => resolve(port))
    })
  })

export interface PrivatePostgres {
  /** A URL of its `postgres` database, as user `root`. */
  readonly url: string
  readonly stop: () => void
  readonly start: () => void
  /** Stops it for good and removes its data directory. */
  readonly destroy: () => void
}

export const startPrivatePostgres = async (): Promise<PrivatePostgres | undefined> => {
  const bin = binaries()
  if (bin === undefined) return undefined
  const asRoot = userInfo().uid === 0
  const dir = mkdtempSync(join(tmpdir(), "vltask-pg-"))
  const data = join(dir, "data")
  if (asRoot) {
    chmodSync(dir, 0o755)
    chownSync(
      dir,
      Number(execFileSync("id", ["-u", "postgres"]).toString()),
      Number(execFileSync("id", ["-g", "postgres"]).toString())
    )
  }
  const run = (tool: string, args: ReadonlyArray<string>) =>
    asRoot
      ? execFileSync("runuser", ["-u", "postgres", "--", join(bin, tool), ...args], { stdio: "pipe" })
      : execFileSync(join(bin, tool), args, { stdio: "pipe" })
  run("initdb", ["-D", data, "-A", "trust", "-U", "root", "--no-sync"])
  const port = await freePort()
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`
  const start = () => void run("pg_ctl", ["-D", data, "-o", options, "-l", join(dir, "log"), "-w", "start"])
  const stop = () => void run("pg_ctl", ["-D", data, "-m", "fast", "-w", "stop"])
  start()
  return {
    url: `postgres://root@127.0.0.1:${port}/postgres`,
    stop,
    start,
    destroy: () => {
      try {
        stop()
      } catch {
        // Already stopped.
      }
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

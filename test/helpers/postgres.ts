/**
 * The real Postgres server of this machine for the Postgres store's tests. Outside CI a suite whose server is
 * unreachable is skipped with a printed reason; under CI=true it runs (and fails if the server is down).
 */
import { randomBytes } from "node:crypto"
import { Socket } from "node:net"
import pg from "pg"

export const postgresUrl = process.env.VLTASK_TEST_POSTGRES ?? "postgres://root@127.0.0.1:5432/test"

const reachable = (url: string) =>
  new Promise<boolean>((resolve) => {
    const { hostname, port } = new URL(url)
    const socket = new Socket()
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(2000, () => done(false))
    socket.once("error", () => done(false))
    socket.connect(Number(port || 5432), hostname, () => done(true))
  })

/** Whether the Postgres suites run; prints why not when they are skipped. */
export const postgresAvailable = async (): Promise<boolean> => {
  if (process.env.CI === "true") return true
  const ok = await reachable(postgresUrl)
  if (!ok)
    process.stdout.write(`Skipping the Postgres store tests: no server at ${postgresUrl} (set VLTASK_TEST_POSTGRES).\n`)
  return ok
}

/** This test process's family of table prefixes: every store it makes is `<family><n>_`, dropped by `dropTables`. */
const family = `vltask_t${randomBytes(4).toString("hex")}`
let counter = 0

/** A table prefix no other test uses, so every test gets a fresh, empty store in the shared database. */
export const freshPrefix = () => `${family}${++counter}_`

/** A store URL with a fresh table prefix. */
export const freshUrl = () => {
  const url = new URL(postgresUrl)
  url.searchParams.set("vltask_prefix", freshPrefix())
  return url.toString()
}

/** Drops every table this test process created (call in `afterAll`). */
export const dropTables = async () => {
  const client = new pg.Client({ connectionString: postgresUrl })
  await client.connect()
  try {
    const { rows } = await client.query<{ tablename: string }>(
      "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE $1",
      [`${family}%`]
    )
    for (const { tablename } of rows) await client.query(`DROP TABLE IF EXISTS "${tablename}"`)
  } finally {
    await client.end()
  }
}

import { afterAll, describe } from "@effect/vitest"
import * as Postgres from "../src/TaskStore/Postgres.js"
import { conformance } from "./TaskStore.conformance.js"
import { dropTables, freshPrefix, postgresAvailable, postgresUrl } from "./helpers/postgres.js"

const available = await postgresAvailable()

if (available)
  conformance("postgres", () => Postgres.layer({ url: postgresUrl, tablePrefix: freshPrefix(), maxConnections: 4 }))
else describe.skip("TaskStore conformance: postgres (no server)", () => {})

afterAll(async () => {
  if (available) await dropTables()
}, 60_000)

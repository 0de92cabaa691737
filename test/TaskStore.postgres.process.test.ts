import { afterAll, describe } from "@effect/vitest"
import { dropTables, postgresAvailable } from "./helpers/postgres.js"
import { processSuite } from "./processSuite.js"

const available = await postgresAvailable()

if (available) processSuite("postgres", { writers: 8 })
else describe.skip("postgres store across processes (no server)", () => {})

afterAll(async () => {
  if (available) await dropTables()
}, 60_000)

import { processSuite } from "./processSuite.js"

// A SQLite writer frozen inside a transaction holds the database's write lock: other writers wait (busy timeout)
// until it continues. Statements are short, so the freeze lands between them nearly always; the test then proceeds.
processSuite("sqlite", { writers: 8 })

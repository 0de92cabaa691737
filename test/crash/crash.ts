/**
 * `npm run test:crash [-- --kills N] [-- --store file]`: the long SIGKILL run. Ends with exactly one summary line.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { locationIn, runCrashes, type StoreKind, summary } from "./harness.js"

const { values } = parseArgs({
  options: { kills: { type: "string", default: "1000" }, store: { type: "string", default: "file" } },
  allowPositionals: true
})
const kind = values.store as StoreKind
if (kind !== "file" && kind !== "sqlite" && kind !== "postgres") {
  process.stderr.write(`unknown store ${JSON.stringify(values.store)}; use --store file, sqlite or postgres\n`)
  process.exit(2)
}
const kills = Number(values.kills)
const directory = mkdtempSync(join(tmpdir(), "vltask-crash-"))
try {
  const result = await runCrashes({
    kind,
    location: locationIn(kind, directory),
    kills,
    onRound: (round) => {
      if ((round + 1) % 100 === 0) process.stderr.write(`${round + 1}/${kills} kills\n`)
    }
  })
  process.stdout.write(summary(kind, result) + "\n")
  process.exitCode = result.unreadable === 0 && result.lost_acked === 0 && result.orphans === 0 ? 0 : 1
} finally {
  rmSync(directory, { recursive: true, force: true })
}

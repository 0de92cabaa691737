/**
 * How long the built `vltask` takes to answer: `--version`, and `list` on a file store with a TypeScript config in
 * the working directory (as a user's project has). Wall time of the whole process, median of repeated runs.
 */
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { median } from "./util.js"

const bin = join(import.meta.dirname, "..", "dist", "esm", "bin.js")

const time = (args: ReadonlyArray<string>, cwd: string, runs: number) => {
  const times: Array<number> = []
  for (let i = 0; i < runs; i++) {
    const start = performance.now()
    execFileSync(process.execPath, [bin, ...args], { cwd, stdio: "ignore" })
    times.push(performance.now() - start)
  }
  return median(times)
}

export const cliStartup = async () => {
  // In the repository (not under node_modules), so the config's imports resolve as in a user's project.
  const dir = mkdtempSync(join(import.meta.dirname, "..", ".bench-cli-"))
  try {
    writeFileSync(
      join(dir, "vltask.config.ts"),
      `import { Effect, Schema } from "effect"
import { Task } from "@vectorlink/task"
import { defineConfig } from "@vectorlink/task/Cli"
const Add = Task.make({
  name: "add",
  input: Schema.Struct({ a: Schema.Int }),
  state: Schema.Struct({}),
  success: Schema.Int,
  initial: () => ({}),
  run: (input: { readonly a: number }) => Effect.succeed(input.a)
})
export default defineConfig({ tasks: [Add] })
`
    )
    time(["--version"], dir, 2) // warm the file cache
    return {
      cli_startup_ms: time(["--version"], dir, 15),
      cli_list_ms: time(["list", "--store", "file:store"], dir, 9)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

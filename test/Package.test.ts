/**
 * The package as a user meets it: `npm pack`, the tarball installed into a fresh CommonJS project (no `"type"`, no
 * tsx) with `effect`, and used from plain Node ESM, `require()`, a strict TypeScript program, an esbuild bundle, and the
 * `vltask` binary with a TypeScript config. Needs the build (`npm test` builds first) and the npm registry or cache.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"

const repo = resolve(import.meta.dirname, "..")
const lock = JSON.parse(readFileSync(join(repo, "package-lock.json"), "utf8")) as {
  packages: Record<string, { version: string }>
}
/** The versions this repository tests with: the consumer gets the same, from the npm cache when it has them. */
const locked = (name: string) => `${name}@${lock.packages[`node_modules/${name}`]!.version}`

let dir = ""
let tarball = ""
const run = (command: string, args: ReadonlyArray<string>, cwd = dir) =>
  execFileSync(command, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 240_000 })
const node = (...args: ReadonlyArray<string>) => run(process.execPath, args)
const bin = (name: string) => join(dir, "node_modules", ".bin", name)

/** The README's "A task in 20 lines" block, as the user copies it. */
const readmeExample = (() => {
  const readme = readFileSync(join(repo, "README.md"), "utf8")
  return /## A task in 20 lines\n\n```ts\n([\s\S]*?)```/.exec(readme)![1]!
})()

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "vltask-consumer-"))
  const packed = run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], repo)
  tarball = join(dir, (JSON.parse(packed) as Array<{ filename: string }>)[0]!.filename)
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", private: true }))
  run("npm", [
    "install",
    tarball,
    locked("effect"),
    locked("typescript"),
    "--no-audit",
    "--no-fund",
    "--prefer-offline",
    "--loglevel=error"
  ])
}, 300_000)

afterAll(() => {
  if (dir !== "") rmSync(dir, { recursive: true, force: true })
})

describe("the packed package in a fresh CommonJS project", () => {
  it("the tarball holds the build, the declarations, the sources for the maps and the license; no tests", () => {
    const files = run("tar", ["tzf", tarball])
      .split("\n")
      .filter((f) => f !== "")
    for (const f of [
      "dist/esm/index.js",
      "dist/esm/index.js.map",
      "dist/dts/index.d.ts",
      "dist/esm/bin.js",
      "LICENSE"
    ]) {
      assert.include(files, `package/${f}`)
    }
    assert.deepStrictEqual(
      files.filter((f) => /(^|\/)test\/|\.test\.|\/internal\/.*\.d\.ts$|tsbuildinfo/.test(f) && !f.includes("/dts/")),
      []
    )
  })

  it("installs one copy of effect and compiles nothing: no SQL driver, no native build", () => {
    const copies = JSON.parse(run("npm", ["query", "#effect"])) as Array<{ version: string }>
    assert.strictEqual(copies.length, 1, "one effect")
    assert.isFalse(existsSync(join(dir, "node_modules", "better-sqlite3")), "the SQLite driver is opt-in")
    assert.isFalse(existsSync(join(dir, "node_modules", "pg")), "the Postgres driver is opt-in")
    const builds = readdirSync(join(dir, "node_modules"), { recursive: true }).filter((p) =>
      String(p).endsWith(join("build", "Release"))
    )
    assert.deepStrictEqual(builds, [])
  })

  it("plain Node ESM runs the README example on the memory store and on the file store, and prints 5", () => {
    writeFileSync(join(dir, "example.ts"), readmeExample)
    const onFile = readmeExample
      .replace("TaskStore.layerMemory", 'File.layer({ directory: "tasks-dir" })')
      .replace(
        'import { Task, TaskRunner, TaskStore } from "@vectorlink/task"',
        'import { Task, TaskRunner } from "@vectorlink/task"\nimport * as File from "@vectorlink/task/TaskStore/File"'
      )
    assert.notStrictEqual(onFile, readmeExample)
    writeFileSync(join(dir, "example-file.ts"), onFile)
    // Types stripped only (no bundling): Node resolves every import from node_modules itself.
    run(bin("esbuild"), ["example.ts", "example-file.ts", "--format=esm", "--outdir=.", "--out-extension:.js=.mjs"])
    assert.strictEqual(node("example.mjs").trim(), "5")
    assert.strictEqual(node("example-file.mjs").trim(), "5")
    assert.isTrue(existsSync(join(dir, "tasks-dir", "tasks", "count-1.task")), "the file store kept the task")
  })

  it("require() of the package works", () => {
    writeFileSync(
      join(dir, "required.cjs"),
      `const { Task, TaskRunner, TaskStore } = require("@vectorlink/task")
const File = require("@vectorlink/task/TaskStore/File")
console.log([typeof Task.make, typeof TaskRunner.layer, typeof TaskStore.makeMemory, typeof File.layer].join(" "))`
    )
    assert.strictEqual(node("required.cjs").trim(), "function function object function")
  })

  it("a strict TypeScript program type-checks against the declarations, without @types/node", () => {
    writeFileSync(join(dir, "typed.mts"), readmeExample)
    writeFileSync(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          lib: ["ES2022", "DOM"],
          module: "NodeNext",
          moduleResolution: "NodeNext",
          types: [],
          strict: true,
          exactOptionalPropertyTypes: true,
          noUncheckedIndexedAccess: true,
          noImplicitOverride: true,
          noImplicitReturns: true,
          noPropertyAccessFromIndexSignature: true,
          noUnusedLocals: true,
          noUnusedParameters: true,
          verbatimModuleSyntax: true,
          isolatedModules: true,
          skipLibCheck: true,
          noEmit: true
        },
        files: ["typed.mts"]
      })
    )
    assert.isFalse(existsSync(join(dir, "node_modules", "@types", "node")))
    run(bin("tsc"), ["-p", "tsconfig.json"])
  })

  it("an esbuild bundle with packages external runs", () => {
    run(bin("esbuild"), [
      "example.ts",
      "--bundle",
      "--platform=node",
      "--packages=external",
      "--format=esm",
      "--outfile=bundled.mjs"
    ])
    assert.strictEqual(node("bundled.mjs").trim(), "5")
  })

  it("vltask --version, and list and run with a vltask.config.ts in a CommonJS project", () => {
    const project = join(dir, "cli")
    mkdirSync(project)
    writeFileSync(
      join(project, "vltask.config.ts"),
      `import { Effect, Schema } from "effect"
import { Task } from "@vectorlink/task"
import { defineConfig } from "@vectorlink/task/Cli"

const Add = Task.make({
  name: "add",
  input: Schema.Struct({ a: Schema.Int, b: Schema.Int }),
  state: Schema.Struct({}),
  success: Schema.Int,
  initial: () => ({}),
  run: (input: { readonly a: number; readonly b: number }) => Effect.succeed(input.a + input.b)
})

export default defineConfig({ tasks: [Add], inputs: { add: { a: 2, b: 3 } } })
`
    )
    const vltask = (...args: ReadonlyArray<string>) => run(bin("vltask"), args, project)
    assert.strictEqual(vltask("--version").trim(), JSON.parse(readFileSync(join(repo, "package.json"), "utf8")).version)
    assert.strictEqual(vltask("list", "--store", "file:store").trim(), "No tasks.")
    assert.include(vltask("run", "add", "--id", "sum", "--store", "file:store"), "Completed sum: 5")
    assert.match(vltask("list", "--store", "file:store"), /sum\s+add\s+completed/)
    assert.deepStrictEqual(
      readdirSync(project).filter((f) => f.endsWith(".mjs")),
      [],
      "the compiled config is removed after loading"
    )
  })
})

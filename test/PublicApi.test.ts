/**
 * What users may import: the modules `package.json` exports, named one by one, and nothing under `src/internal/`.
 * Every export of a public module says since when it exists and what kind of thing it is, as Effect's own do.
 */
import { assert, describe, it } from "@effect/vitest"
import { readdirSync, readFileSync, statSync } from "node:fs"
import { join, relative } from "node:path"

const root = join(import.meta.dirname, "..")
type Entry = { readonly types: string; readonly import: string; readonly default: string }
const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  exports: Record<string, Entry | string>
}

/** The source module a built entry point comes from: `./dist/esm/X.js` → `src/X.ts`. */
const sourceOf = (entry: Entry) => entry.import.replace(/^\.\/dist\/esm\//, "src/").replace(/\.js$/, ".ts")

/** Every `.ts` file under `dir`, relative to `src/`. */
const sources = (dir: string): Array<string> =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    return statSync(path).isDirectory()
      ? sources(path)
      : name.endsWith(".ts")
        ? [relative(join(root, "src"), path)]
        : []
  })

/** The exported names of a module whose JSDoc lacks `@since` or `@category`. */
const undocumented = (text: string): Array<string> => {
  const lines = text.split("\n")
  const missing: Array<string> = []
  lines.forEach((line, i) => {
    const match = /^export (?:const|function|class|interface|type|declare) (\w+)/.exec(line)
    if (match === null) return
    let j = i - 1
    while (j >= 0 && lines[j]!.trim().startsWith("//")) j--
    let doc = ""
    if (j >= 0 && lines[j]!.trim().endsWith("*/")) {
      let k = j
      while (k >= 0 && !lines[k]!.includes("/**")) k--
      doc = lines.slice(k, j + 1).join("\n")
    }
    if (!/@since \d+\.\d+\.\d+/.test(doc) || !/@category \w+/.test(doc)) missing.push(match[1]!)
  })
  return missing
}

describe("public API", () => {
  const exported = Object.entries(manifest.exports).flatMap(([subpath, entry]) =>
    typeof entry === "string" ? [] : [[subpath, sourceOf(entry), entry] as const]
  )
  it("is an explicit list of built modules (no wildcard) with their types, each from a file outside src/internal/", () => {
    assert.strictEqual(manifest.exports["./package.json"], "./package.json")
    for (const [subpath, file, entry] of exported) {
      assert.notInclude(subpath, "*", "no wildcard export")
      assert.notInclude(file, "/internal/", `${subpath} is internal`)
      assert.deepStrictEqual(Object.keys(entry), ["types", "import", "default"], `${subpath}: types first`)
      assert.strictEqual(entry.default, entry.import)
      assert.strictEqual(entry.types, entry.import.replace("/esm/", "/dts/").replace(/\.js$/, ".d.ts"))
      assert.isTrue(statSync(join(root, file)).isFile(), `${subpath} → ${file} exists`)
    }
  })

  it("every module outside src/internal/ is exported, or is the CLI's entry point", () => {
    const files = new Set(exported.map(([, file]) => relative(join(root, "src"), join(root, file))))
    const unexported = sources(join(root, "src")).filter(
      (f) => !f.startsWith("internal/") && !files.has(f) && f !== "bin.ts"
    )
    assert.deepStrictEqual(unexported, [], "a module users cannot import belongs under src/internal/")
  })

  it("every export of a public module has a JSDoc with @since and @category", () => {
    const missing = exported.flatMap(([subpath, file]) =>
      undocumented(readFileSync(join(root, file), "utf8")).map((name) => `${subpath}: ${name}`)
    )
    assert.deepStrictEqual(missing, [])
  })
})

/**
 * Extracts every ```ts block of README.md and docs/*.md into .snippets/, where `npm run typecheck` compiles them:
 * a code block in the documentation that does not compile fails `npm test`.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { basename, join, resolve } from "node:path"

const root = resolve(import.meta.dirname, "..")
const out = join(root, ".snippets")
rmSync(out, { recursive: true, force: true })
mkdirSync(out)

const docs = [
  join(root, "README.md"),
  ...readdirSync(join(root, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => join(root, "docs", f))
]
let count = 0
for (const doc of docs) {
  const text = readFileSync(doc, "utf8")
  const blocks = [...text.matchAll(/^```(?:ts|typescript)\s*\n([\s\S]*?)^```/gm)]
  blocks.forEach((block, i) => {
    const name = `${basename(doc, ".md")}-${String(i + 1).padStart(2, "0")}.ts`
    // Each block is its own module, so blocks may reuse names.
    writeFileSync(join(out, name), `// From ${basename(doc)}, block ${i + 1}\n${block[1]}\nexport {}\n`)
    count++
  })
}
process.stdout.write(`extracted ${count} TypeScript blocks from ${docs.length} documents into .snippets/\n`)

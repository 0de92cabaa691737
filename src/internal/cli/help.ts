/**
 * The help text: a command's description with its examples, and @effect/cli's rendering tidied (no per-type
 * boilerplate under every option, `vltask` in USAGE).
 */
import * as HelpDoc from "@effect/cli/HelpDoc"

/** A command's description followed by an EXAMPLES section. */
export const described = (text: string, examples: ReadonlyArray<string>): HelpDoc.HelpDoc =>
  HelpDoc.sequence(
    HelpDoc.p(text),
    HelpDoc.sequence(HelpDoc.h1("EXAMPLES"), HelpDoc.blocks(examples.map((e) => HelpDoc.p(`$ ${e}`))))
  )

/** What @effect/cli says under every option of a type, which tells a reader nothing the option's line does not. */
const boilerplate = new Set([
  "A user-defined piece of text.",
  "A true or false value.",
  "An integer.",
  "A file.",
  "This setting is optional."
])

const ansi = /\x1b\[[0-9;]*m/g

/** Removes the boilerplate paragraphs, says `Default: X` for defaults, and puts `vltask` in front of USAGE lines. */
export const tidyHelp = (text: string): string => {
  const out: Array<string> = []
  for (const line of text.split("\n")) {
    const plain = line.replace(ansi, "").trim()
    if (boilerplate.has(plain)) {
      // Drop the paragraph and the blank line that separated it from the next one.
      continue
    }
    const defaults = /^This setting is optional\. Defaults to: (.*)$/.exec(plain)
    if (defaults !== null) {
      out.push(`  Default: ${defaults[1]}`)
      continue
    }
    out.push(/^\$ (?!vltask\b)/.test(plain) ? line.replace("$ ", "$ vltask ") : line)
  }
  // Collapse the blank lines left where paragraphs were removed.
  return out.join("\n").replace(/\n{3,}/g, "\n\n")
}

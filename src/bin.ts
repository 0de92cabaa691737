#!/usr/bin/env node
/**
 * The `vltask` executable. `--version` answers at once; everything else loads the CLI (and Effect) first.
 *
 * @since 0.1.0
 */
import { version } from "./internal/version.js"

const args = process.argv.slice(2)
if (args.length === 1 && args[0] === "--version") process.stdout.write(`${version}\n`)
else await import("./internal/cli/main.js")

/**
 * This package's version, from its package.json (read once, at load, so the CLI can print it without loading Effect).
 * The file is two levels up from the sources (`src/internal/`) and three from the build (`dist/esm/internal/`).
 */
import { existsSync, readFileSync } from "node:fs"

const manifest = ["../../package.json", "../../../package.json"]
  .map((relative) => new URL(relative, import.meta.url))
  .find(
    (url) => existsSync(url) && (JSON.parse(readFileSync(url, "utf8")) as { name?: string }).name === "@vectorlink/task"
  )

export const version: string =
  manifest === undefined ? "unknown" : (JSON.parse(readFileSync(manifest, "utf8")) as { version: string }).version

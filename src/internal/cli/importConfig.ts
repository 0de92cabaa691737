/**
 * Loading the user's `vltask.config.*` module, whatever kind of project it sits in. A TypeScript config is bundled by
 * esbuild (its own imports of packages stay imports) into an ES module beside it, imported, and removed: so it loads in
 * ES and CommonJS projects and without a package.json, with no TypeScript loader installed. A JavaScript config is
 * imported as Node sees it (ES module or CommonJS). Errors keep their real cause: esbuild's file:line:column for a
 * syntax error, Node's message for a bad import, with the temporary file's name replaced by the config's.
 */
import { randomBytes } from "node:crypto"
import { rmSync, writeFileSync } from "node:fs"
import { basename, dirname, join } from "node:path"
import { pathToFileURL } from "node:url"

/** Why a config module could not be loaded, in one or a few lines. */
export class ConfigLoadError extends Error {}

const isTypeScript = (path: string) => /\.[mc]?ts$/.test(path)

interface EsbuildMessage {
  readonly text: string
  readonly location: { readonly file: string; readonly line: number; readonly column: number } | null
}

/** esbuild's errors as `file:line:column: text` lines. */
const describeBuildFailure = (error: unknown): string => {
  const errors = (error as { errors?: ReadonlyArray<EsbuildMessage> }).errors
  if (errors === undefined || errors.length === 0) return String((error as Error).message ?? error)
  return errors
    .map((e) =>
      e.location === null ? e.text : `${e.location.file}:${e.location.line}:${e.location.column + 1}: ${e.text}`
    )
    .join("; ")
}

/** Imports the module at `path` (absolute) and returns its namespace. */
export const importConfig = async (path: string): Promise<Record<string, unknown>> => {
  if (!isTypeScript(path)) {
    try {
      return (await import(pathToFileURL(path).href)) as Record<string, unknown>
    } catch (error) {
      throw new ConfigLoadError(String((error as Error).message ?? error))
    }
  }
  const esbuild = await import("esbuild")
  let code: string
  try {
    const result = await esbuild.build({
      entryPoints: [path],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      packages: "external",
      write: false,
      sourcemap: "inline",
      logLevel: "silent",
      absWorkingDir: dirname(path)
    })
    code = result.outputFiles[0]!.text
  } catch (error) {
    throw new ConfigLoadError(describeBuildFailure(error))
  }
  // Beside the config, so that its imports of packages resolve from its own node_modules.
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}-${randomBytes(4).toString("hex")}.mjs`)
  writeFileSync(temp, code)
  try {
    return (await import(pathToFileURL(temp).href)) as Record<string, unknown>
  } catch (error) {
    throw new ConfigLoadError(
      String((error as Error).message ?? error)
        .split(temp)
        .join(path)
    )
  } finally {
    rmSync(temp, { force: true })
  }
}

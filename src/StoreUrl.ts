/**
 * Choosing a store by a short string, as the CLI and configuration do: `file:DIR`, `memory:`, `sqlite:FILE`,
 * `postgres://…`. The SQL backends are loaded when a string names them, so a program on the file store never loads (nor
 * needs installed) a database driver.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { resolve } from "node:path"
import type { TaskStoreError } from "./TaskError.js"
import * as File from "./TaskStore/File.js"
import { layerMemory, type TaskStore } from "./TaskStore.js"

/**
 * The store used when none is given: the file store in `./.vltask`.
 *
 * @since 0.1.0
 * @category defaults
 */
export const defaultUrl = "file:.vltask"

/**
 * The store string could not be understood or names a backend that is not available.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidStoreUrl extends Schema.TaggedError<InvalidStoreUrl>()("InvalidStoreUrl", {
  url: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Invalid store ${JSON.stringify(this.url)}: ${this.reason}. Use file:DIR, sqlite:FILE, postgres://… or memory:.`
  }
}

/**
 * The store string names a backend whose optional packages are not installed (or whose native module does not load
 * here). The message says what to install.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreBackendMissing extends Schema.TaggedError<StoreBackendMissing>()("StoreBackendMissing", {
  url: Schema.String,
  backend: Schema.String,
  install: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `The ${this.backend} store (${JSON.stringify(this.url)}) cannot be loaded: ${this.detail}. Install it with: ${this.install}`
  }
}

/** Loads a backend module; a missing optional package is a `StoreBackendMissing` naming the install command. */
const loadBackend = <M>(url: string, backend: string, install: string, load: () => Promise<M>) =>
  Effect.tryPromise({
    try: load,
    catch: (error) =>
      new StoreBackendMissing({
        url,
        backend,
        install,
        detail: String((error as Error | undefined)?.message ?? error).split("\n", 1)[0] ?? "it failed to load"
      })
  })

/**
 * A parsed store string.
 *
 * @since 0.1.0
 * @category models
 */
export type Parsed =
  | { readonly _tag: "file"; readonly directory: string }
  | { readonly _tag: "memory" }
  | { readonly _tag: "sqlite"; readonly filename: string }
  | { readonly _tag: "postgres"; readonly url: string; readonly tablePrefix: string | undefined }

/**
 * Parses a store string; relative paths are resolved against the working directory.
 *
 * @since 0.1.0
 * @category utils
 */
export const parse = (url: string): Effect.Effect<Parsed, InvalidStoreUrl> => {
  const fail = (reason: string) => Effect.fail(new InvalidStoreUrl({ url, reason }))
  if (url.startsWith("file:")) {
    const directory = url.slice("file:".length).replace(/^\/\/(?=\/)/, "")
    return directory === ""
      ? fail("the directory is missing")
      : Effect.succeed({ _tag: "file", directory: resolve(directory) })
  }
  if (url.startsWith("sqlite:")) {
    const filename = url.slice("sqlite:".length).replace(/^\/\/(?=\/)/, "")
    return filename === ""
      ? fail("the file name is missing")
      : Effect.succeed({ _tag: "sqlite", filename: resolve(filename) })
  }
  if (url.startsWith("postgres://") || url.startsWith("postgresql://")) {
    // `vltask_prefix` is ours (the store's table prefix); it is taken out before the URL reaches the driver.
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      return fail("it is not a valid URL")
    }
    const tablePrefix = parsed.searchParams.get("vltask_prefix") ?? undefined
    parsed.searchParams.delete("vltask_prefix")
    return Effect.succeed({ _tag: "postgres", url: parsed.toString(), tablePrefix })
  }
  if (url === "memory:" || url === "memory") return Effect.succeed({ _tag: "memory" })
  return fail("unknown scheme")
}

/**
 * The store layer a string names.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (url: string): Layer.Layer<TaskStore, InvalidStoreUrl | StoreBackendMissing | TaskStoreError> =>
  Layer.unwrapEffect(
    Effect.flatMap(
      parse(url),
      (parsed): Effect.Effect<Layer.Layer<TaskStore, TaskStoreError>, InvalidStoreUrl | StoreBackendMissing> => {
        switch (parsed._tag) {
          case "file":
            return Effect.succeed(File.layer({ directory: parsed.directory }))
          case "memory":
            return Effect.succeed(layerMemory)
          case "sqlite":
            return Effect.map(
              loadBackend(url, "SQLite", "npm install @effect/sql-sqlite-node", () => import("./TaskStore/Sqlite.js")),
              (Sqlite) => Sqlite.layer({ filename: parsed.filename })
            )
          case "postgres":
            return Effect.map(
              loadBackend(url, "Postgres", "npm install @effect/sql-pg", () => import("./TaskStore/Postgres.js")),
              (Postgres) => Postgres.layer({ url: parsed.url, tablePrefix: parsed.tablePrefix })
            )
        }
      }
    )
  )

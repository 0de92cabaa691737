import { NodeFileSystem } from "@effect/platform-node"
import { FileSystem } from "@effect/platform"
import { Effect, Layer } from "effect"

/** A fresh temporary directory, removed when the scope closes. */
export const tempDir = Effect.flatMap(FileSystem.FileSystem, (fs) =>
  fs.makeTempDirectoryScoped({ prefix: "vltask-test-" })
).pipe(Effect.provide(NodeFileSystem.layer))

/** Builds a layer over a fresh temporary directory that lives as long as the layer. */
export const inTempDir = <A, E, R>(f: (dir: string) => Layer.Layer<A, E, R>) =>
  Layer.unwrapScoped(Effect.map(tempDir, f))

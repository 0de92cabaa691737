import { TaskStore } from "../src/index.js"
import * as File from "../src/TaskStore/File.js"
import { conformance } from "./TaskStore.conformance.js"
import { inTempDir } from "./helpers/tempDir.js"

conformance("file", () => inTempDir((directory) => File.layer({ directory })))

// The memory store is the reference: keep both in one file's reach for a reader comparing them.
export const reference = TaskStore.layerMemory

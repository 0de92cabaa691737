import { TaskStore } from "../src/index.js"
import { conformance } from "./TaskStore.conformance.js"

conformance("memory", () => TaskStore.layerMemory, { writesAtOnce: "sync" })

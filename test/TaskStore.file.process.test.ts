import { fileIdle, processSuite } from "./processSuite.js"

processSuite("file", { writers: 4, idle: fileIdle })

/**
 * `npx tsx bench/fileSyscalls.ts`: every system call of the file store's `update`, timed, against the same calls in a
 * plain loop in the same process, alternated round by round — to tell what the calls cost inside the store from what
 * they cost alone. Prints µs per update: in all, in system calls, and per call.
 */
import { Effect, Layer } from "effect"
import fs from "node:fs"
import { join } from "node:path"
import { TaskStore } from "../src/index.js"
import * as FileSystemSync from "../src/internal/file/fileSystemSync.js"
import * as File from "../src/TaskStore/File.js"
import { runningRecord, scratchDir } from "./util.js"

const times = new Map<string, bigint>()
const timed = <F extends (...args: Array<any>) => any>(name: string, f: F): F =>
  ((...args: Array<any>) => {
    const start = process.hrtime.bigint()
    try {
      return f(...args)
    } finally {
      times.set(name, (times.get(name) ?? 0n) + process.hrtime.bigint() - start)
    }
  }) as F
const sys = Object.fromEntries(
  Object.entries(FileSystemSync.nodeSyscalls).map(([name, f]) => [name, timed(name, f)])
) as unknown as FileSystemSync.Syscalls

const report = (label: string, n: number, total: bigint) => {
  const us = (ns: bigint) => (Number(ns) / 1e3 / n).toFixed(0)
  const inCalls = [...times.values()].reduce((a, b) => a + b, 0n)
  const each = [...times.entries()].map(([name, ns]) => `${name.replace(/Sync$/, "")} ${us(ns)}`).join(", ")
  console.log(`${label}: ${us(total)} µs per update, ${us(inCalls)} in system calls (${each})`)
  times.clear()
}

const lease = { token: "01a220b5-41e9-7080-884f-f28554064fdc", holder: { host: "bench", pid: 1, processStart: "1" } }
const { dir, cleanup } = scratchDir("file-syscalls")
try {
  await Effect.runPromise(
    Effect.gen(function* () {
      const store = yield* TaskStore.TaskStore
      yield* store.create(runningRecord("a"))
      const raw = join(dir, "raw")
      fs.mkdirSync(raw)
      const dirFd = fs.openSync(raw, "r")
      // The lock is a hard link to a holder file, as the store's is (`internal/file/locks.ts`).
      const holder = join(raw, ".holder")
      fs.writeFileSync(holder, "")
      const body = Buffer.alloc(425, 1)
      const head = Buffer.alloc(68)
      const state = new Uint8Array(1050)
      let revision = 1
      const n = 1000
      for (let round = 0; round < 3; round++) {
        times.clear()
        let start = process.hrtime.bigint()
        for (let i = 0; i < n; i++) {
          const patch = { state, lease: { ...lease, expiresAt: i }, progress: { done: i }, updatedAt: i }
          revision = (yield* store.update("a", revision, patch)).revision
        }
        report("store.update", n, process.hrtime.bigint() - start)
        start = process.hrtime.bigint()
        for (let i = 0; i < n; i++) {
          sys.statSync(join(raw, "a.want"))
          sys.linkSync(holder, join(raw, "a.lock"))
          if (round > 0 || i > 0) {
            const fd = sys.openSync(join(raw, "a.task"), "r")
            sys.fstatSync(fd)
            sys.readSync(fd, head, 0, 68, 0)
            sys.closeSync(fd)
          }
          const temp = join(raw, `.tmp-${round}-${i}`)
          const fd = sys.openSync(temp, "wx", 0o644)
          sys.writeSync(fd, body, 0, body.length, 0)
          sys.fsyncSync(fd)
          sys.closeSync(fd)
          sys.renameSync(temp, join(raw, "a.task"))
          sys.fsyncSync(dirFd)
          sys.unlinkSync(join(raw, "a.lock"))
        }
        report("the same calls  ", n, process.hrtime.bigint() - start)
      }
      fs.closeSync(dirFd)
    }).pipe(
      Effect.provide(
        File.layerFileSystem({ directory: join(dir, "store") }).pipe(Layer.provide(FileSystemSync.layerWith(sys)))
      )
    )
  )
} finally {
  cleanup()
}

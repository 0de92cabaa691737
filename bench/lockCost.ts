/**
 * `npx tsx bench/lockCost.ts`: what the file store's per-task lock adds to a durable replace, measured on the bare
 * recipe (write a temp file, fsync, rename over the record, fsync the directory), alternated round by round in one
 * process: the recipe alone; inside a lock that is a symbolic link (the store's lock today: a new inode per write);
 * and inside a lock that is a hard link to a file made once (a directory entry only, no inode allocated or freed).
 * Prints the median µs per write of each.
 */
import fs from "node:fs"
import { join } from "node:path"
import { median, scratchDir } from "./util.js"

type Lock = "none" | "symlink" | "hard link"

const { dir, cleanup } = scratchDir("lock-cost")
try {
  const dirFd = fs.openSync(dir, "r")
  const body = Buffer.alloc(400, 1)
  const target = join(dir, "t.task")
  const lock = join(dir, "t.lock")
  const temp = join(dir, ".tmp")
  const holder = join(dir, ".holder")
  fs.writeFileSync(target, body)
  fs.writeFileSync(holder, "L:1:1:bench")

  const write = (kind: Lock) => {
    if (kind === "symlink") fs.symlinkSync("L:1:1:bench:1", lock)
    if (kind === "hard link") fs.linkSync(holder, lock)
    const fd = fs.openSync(temp, "wx", 0o644)
    fs.writeSync(fd, body, 0, body.length, 0)
    fs.fsyncSync(fd)
    fs.closeSync(fd)
    fs.renameSync(temp, target)
    fs.fsyncSync(dirFd)
    if (kind !== "none") fs.unlinkSync(lock)
  }

  const kinds: ReadonlyArray<Lock> = ["none", "symlink", "hard link"]
  const times = new Map<Lock, Array<number>>(kinds.map((k) => [k, []]))
  const perRound = 100
  for (let round = -1; round < 12; round++) {
    for (const kind of round % 2 === 0 ? kinds : [...kinds].reverse()) {
      const start = process.hrtime.bigint()
      for (let i = 0; i < perRound; i++) write(kind)
      // The first round warms the caches and is not counted.
      if (round >= 0) times.get(kind)!.push(Number(process.hrtime.bigint() - start) / 1e3 / perRound)
    }
  }
  fs.closeSync(dirFd)
  const none = median(times.get("none")!)
  console.log(
    kinds
      .map((kind) => {
        const us = median(times.get(kind)!)
        return `${kind === "none" ? "no lock" : kind} ${us.toFixed(0)} µs (${(us / none).toFixed(2)}×)`
      })
      .join(" | ")
  )
} finally {
  cleanup()
}

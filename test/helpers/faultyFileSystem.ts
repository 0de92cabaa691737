/**
 * The real system calls of the file store, logged and failed on demand: tests break a checkpoint at each of its
 * system calls. Nothing is simulated but the failure itself: every other call reaches the disk.
 */
import type { FileSystem } from "@effect/platform"
import type { Layer } from "effect"
import * as FileSystemSync from "../../src/internal/file/fileSystemSync.js"

export type Fault = "EIO" | "ENOSPC" | "EROFS" | "short"

/** Which call fails: the `at`-th counted one, and with `persistent` every later one of the same system call too. */
export interface Plan {
  readonly at: number
  readonly fault: Fault
  readonly persistent: boolean
}

export class Faults {
  /** Counted system calls as "name path" (descriptors shown as the path they were opened with), in order. */
  readonly log: Array<string> = []
  armed = false
  plan: Plan | undefined = undefined
  private failingMethod: string | undefined = undefined
  private matching: { readonly fault: Fault; readonly match: (call: string) => boolean } | undefined = undefined

  arm(plan?: Plan) {
    this.log.length = 0
    this.plan = plan
    this.failingMethod = undefined
    this.armed = true
  }

  /** Fails the first call (as "name path") that `match` picks, once. */
  armMatching(fault: Fault, match: (call: string) => boolean) {
    this.arm()
    this.matching = { fault, match }
  }

  disarm() {
    this.armed = false
    this.plan = undefined
    this.matching = undefined
  }

  /** Counts a call; returns the fault to apply to it, if any. */
  next(method: string, path: string): Fault | undefined {
    if (!this.armed) return undefined
    this.log.push(`${method} ${path}`)
    if (this.matching?.match(`${method} ${path}`) === true) {
      const fault = this.matching.fault
      this.matching = undefined
      return fault
    }
    const plan = this.plan
    if (plan === undefined) return undefined
    if (this.log.length === plan.at) {
      if (plan.fault === "short" && method !== "write") return undefined
      this.failingMethod = method
      return plan.fault
    }
    if (plan.persistent && this.failingMethod === method) return plan.fault
    return undefined
  }
}

const injected = (method: string, path: string, code: string) =>
  Object.assign(new Error(`${code}: injected fault, ${method} '${path}'`), { code, syscall: method })

/** `syscalls` with every call counted by `faults` and failed when its plan says so. */
export const faultySyscalls = (faults: Faults, syscalls: FileSystemSync.Syscalls = FileSystemSync.nodeSyscalls) => {
  const paths = new Map<number, string>()
  const guard =
    <F extends (...args: Array<any>) => any>(method: string, where: (first: any, second: any) => string, f: F) =>
    (...args: Parameters<F>): ReturnType<F> => {
      const path = where(args[0], args[1])
      const fault = faults.next(method, path)
      if (fault !== undefined && fault !== "short") throw injected(method, path, fault)
      return f(...args)
    }
  const byPath = (path: string) => path
  const byFd = (fd: number) => paths.get(fd) ?? `fd ${fd}`
  const wrapped: FileSystemSync.Syscalls = {
    openSync: guard("open", byPath, (path, flags, mode) => {
      const fd = syscalls.openSync(path, flags, mode)
      paths.set(fd, path)
      return fd
    }),
    // Closing is not counted: the store never relies on it (see FileSystemSync).
    closeSync: (fd) => {
      paths.delete(fd)
      syscalls.closeSync(fd)
    },
    readSync: guard("read", byFd, syscalls.readSync),
    writeSync: (fd, buffer, offset, length, position) => {
      const fault = faults.next("write", byFd(fd))
      if (fault === "short") return syscalls.writeSync(fd, buffer, offset, Math.ceil(length / 2), position)
      if (fault !== undefined) throw injected("write", byFd(fd), fault)
      return syscalls.writeSync(fd, buffer, offset, length, position)
    },
    fsyncSync: guard("fsync", byFd, syscalls.fsyncSync),
    fstatSync: guard("fstat", byFd, syscalls.fstatSync),
    ftruncateSync: guard("ftruncate", byFd, syscalls.ftruncateSync),
    statSync: guard("stat", byPath, syscalls.statSync),
    lstatSync: guard("lstat", byPath, syscalls.lstatSync),
    renameSync: guard("rename", byPath, syscalls.renameSync),
    unlinkSync: guard("unlink", byPath, syscalls.unlinkSync),
    rmdirSync: guard("rmdir", byPath, syscalls.rmdirSync),
    linkSync: guard("link", (_from: string, to: string) => to, syscalls.linkSync),
    symlinkSync: guard("symlink", (_target: string, path: string) => path, syscalls.symlinkSync),
    readlinkSync: guard("readlink", byPath, syscalls.readlinkSync),
    mkdirSync: guard("mkdir", byPath, syscalls.mkdirSync),
    readdirSync: guard("readdir", byPath, syscalls.readdirSync)
  }
  return wrapped
}

/** The file store's FileSystem with every system call routed through `faults`. */
export const layer = (faults: Faults): Layer.Layer<FileSystem.FileSystem> =>
  FileSystemSync.layerWith(faultySyscalls(faults))

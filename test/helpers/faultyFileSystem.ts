/**
 * A real FileSystem wrapped to log every operation and fail chosen ones, so tests can break a checkpoint at each of
 * its steps. Nothing is simulated but the failure itself: every other call reaches the disk.
 */
import { FileSystem } from "@effect/platform"
import { SystemError } from "@effect/platform/Error"
import * as FileSystemSync from "../../src/TaskStore/FileSystemSync.js"
import { Effect, Layer } from "effect"

export type Fault = "EIO" | "ENOSPC" | "EROFS" | "short"

/** Which operation fails: the `at`-th counted one, and with `persistent` every later one of the same method too. */
export interface Plan {
  readonly at: number
  readonly fault: Fault
  readonly persistent: boolean
}

export class Faults {
  /** Counted operations as "method path", in order. */
  readonly log: Array<string> = []
  armed = false
  plan: Plan | undefined = undefined
  private failingMethod: string | undefined = undefined

  arm(plan?: Plan) {
    this.log.length = 0
    this.plan = plan
    this.failingMethod = undefined
    this.armed = true
  }

  disarm() {
    this.armed = false
    this.plan = undefined
  }

  /** Counts an operation; returns the fault to apply to it, if any. */
  next(method: string, path: string): Fault | undefined {
    if (!this.armed) return undefined
    this.log.push(`${method} ${path}`)
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
  new SystemError({
    reason: "Unknown",
    module: "FileSystem",
    method,
    pathOrDescriptor: path,
    description: `injected ${code}`,
    cause: Object.assign(new Error(`${code}: injected fault, ${method} '${path}'`), { code })
  })

const wrapFile = (file: FileSystem.File, path: string, faults: Faults): FileSystem.File => {
  const guard = <A, E>(method: string, effect: Effect.Effect<A, E>) =>
    Effect.suspend((): Effect.Effect<A, E | SystemError> => {
      const fault = faults.next(method, path)
      return fault === undefined || fault === "short" ? effect : Effect.fail(injected(method, path, fault))
    })
  return {
    [FileSystem.FileTypeId]: FileSystem.FileTypeId,
    fd: file.fd,
    get stat() {
      return file.stat
    },
    seek: (offset, from) => file.seek(offset, from),
    get sync() {
      return guard("sync", file.sync)
    },
    read: (buffer) => guard("read", file.read(buffer)),
    readAlloc: (size) => guard("read", file.readAlloc(size)),
    truncate: (length) => guard("truncate", file.truncate(length)),
    write: (buffer) =>
      Effect.suspend(() => {
        const fault = faults.next("write", path)
        if (fault === "short") return file.write(buffer.subarray(0, Math.ceil(buffer.length / 2)))
        return fault === undefined ? file.write(buffer) : Effect.fail(injected("write", path, fault))
      }),
    writeAll: (buffer) => guard("write", file.writeAll(buffer))
  }
}

/** The file store's FileSystem with every path operation and file operation routed through `faults`. */
export const layer = (faults: Faults): Layer.Layer<FileSystem.FileSystem> =>
  Layer.effect(
    FileSystem.FileSystem,
    Effect.map(FileSystem.FileSystem, (fs): FileSystem.FileSystem => {
      const wrapped: Record<string, unknown> = {}
      for (const [name, value] of Object.entries(fs)) {
        if (typeof value !== "function") {
          wrapped[name] = value
          continue
        }
        // Counted when the operation runs, not when its effect is built.
        wrapped[name] = (...args: Array<unknown>) =>
          Effect.suspend(() => {
            const path = String(name === "symlink" ? args[1] : args[0])
            const fault = faults.next(name, path)
            if (fault !== undefined && fault !== "short") return Effect.fail(injected(name, path, fault))
            const result = (value as (...a: Array<unknown>) => Effect.Effect<unknown, unknown, unknown>)(...args)
            return name === "open"
              ? Effect.map(result as Effect.Effect<FileSystem.File, unknown>, (file) => wrapFile(file, path, faults))
              : result
          })
      }
      return wrapped as unknown as FileSystem.FileSystem
    })
  ).pipe(Layer.provide(FileSystemSync.layer))

/**
 * A `FileSystem` whose operations are direct synchronous system calls, taken from a `Syscalls` object: Node's own
 * `node:fs` in production, a fault-injecting or power-loss-simulating one in tests.
 *
 * Why synchronous: a checkpoint of the file store is about a dozen small file operations around two fsyncs. Through
 * Node's thread pool each costs a hand-off of 50–100 µs on a small machine, several times the cost of the call itself,
 * which made a checkpoint five times slower than the fsyncs it waits for. Called directly they cost microseconds; the
 * fsyncs (which dominate) block the event loop for as long as the disk takes, exactly as long as the checkpointing
 * task waits anyway.
 *
 * Why injectable: every operation the file store makes reaches the disk through exactly these calls, so a test that
 * replaces them sees (and can fail, or forget on a simulated power cut) the real system calls, not a wrapper's.
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { type PlatformError, SystemError, type SystemErrorReason } from "@effect/platform/Error"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as fs from "node:fs"

const { O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY } = fs.constants

/** `node:fs` flag strings as the file store uses them. */
const flagBits: Record<string, number> = {
  r: O_RDONLY,
  "r+": O_RDWR,
  w: O_WRONLY | O_CREAT | O_TRUNC,
  wx: O_WRONLY | O_CREAT | O_TRUNC | O_EXCL,
  a: O_WRONLY | O_CREAT | O_APPEND,
  ax: O_WRONLY | O_CREAT | O_APPEND | O_EXCL
}

/**
 * Every open of the store's files: never through a symbolic link (a `.log` planted as a link to another file must not
 * be appended to: `ELOOP`), and never blocking (a FIFO planted as a `.want` must not hang the process; it is then
 * refused by `refuseSpecial`).
 */
const openFlags = (flags: string): number => {
  const bits = flagBits[flags]
  if (bits === undefined) throw new Error(`unsupported open flags ${JSON.stringify(flags)}`)
  return bits | O_NOFOLLOW | O_NONBLOCK
}

/** The synchronous system calls the file store makes, with `node:fs` signatures. */
export interface Syscalls {
  readonly openSync: (path: string, flags: string, mode?: number) => number
  readonly closeSync: (fd: number) => void
  readonly readSync: (fd: number, buffer: Uint8Array, offset: number, length: number, position: number | null) => number
  readonly writeSync: (
    fd: number,
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number | null
  ) => number
  readonly fsyncSync: (fd: number) => void
  readonly fstatSync: (fd: number) => fs.Stats
  readonly ftruncateSync: (fd: number, length: number) => void
  /** `undefined` when nothing is at `path` (no error to build and throw: the lock's hot path asks this every time). */
  readonly statSync: (path: string) => fs.Stats | undefined
  /** `undefined` when nothing is at `path`, as `statSync`. */
  readonly lstatSync: (path: string) => fs.Stats | undefined
  readonly renameSync: (from: string, to: string) => void
  readonly unlinkSync: (path: string) => void
  readonly rmdirSync: (path: string) => void
  readonly linkSync: (from: string, to: string) => void
  readonly symlinkSync: (target: string, path: string) => void
  readonly readlinkSync: (path: string) => string
  readonly mkdirSync: (path: string) => void
  readonly readdirSync: (path: string) => Array<string>
}

/** Node's own system calls. */
export const nodeSyscalls: Syscalls = {
  openSync: (path, flags, mode) => fs.openSync(path, openFlags(flags), mode),
  closeSync: fs.closeSync,
  readSync: (fd, buffer, offset, length, position) => fs.readSync(fd, buffer, offset, length, position),
  writeSync: (fd, buffer, offset, length, position) => fs.writeSync(fd, buffer, offset, length, position),
  fsyncSync: fs.fsyncSync,
  fstatSync: (fd) => fs.fstatSync(fd),
  ftruncateSync: fs.ftruncateSync,
  statSync: (path) => fs.statSync(path, { throwIfNoEntry: false }),
  lstatSync: (path) => fs.lstatSync(path, { throwIfNoEntry: false }),
  renameSync: fs.renameSync,
  unlinkSync: fs.unlinkSync,
  rmdirSync: (path) => fs.rmdirSync(path),
  linkSync: fs.linkSync,
  symlinkSync: (target, path) => fs.symlinkSync(target, path),
  readlinkSync: (path) => fs.readlinkSync(path, "utf8"),
  mkdirSync: (path) => fs.mkdirSync(path),
  readdirSync: (path) => fs.readdirSync(path, "utf8")
}

/** `stat` that throws `ENOENT` as Node's does when nothing is at `path`. */
const statOrThrow = (sys: Syscalls, path: string): fs.Stats => {
  const stats = sys.statSync(path)
  if (stats !== undefined) return stats
  throw Object.assign(new Error(`ENOENT: no such file or directory, stat '${path}'`), {
    code: "ENOENT",
    errno: -2,
    syscall: "stat",
    path
  })
}

const reasonOf = (code: string | undefined): SystemErrorReason => {
  switch (code) {
    case "ENOENT":
      return "NotFound"
    case "EACCES":
    case "EPERM":
      return "PermissionDenied"
    case "EEXIST":
      return "AlreadyExists"
    case "EISDIR":
    case "ENOTDIR":
    case "ELOOP":
      return "BadResource"
    case "EBUSY":
      return "Busy"
    default:
      return "Unknown"
  }
}

/** A thrown errno error as the platform's `SystemError`. */
export const systemError = (method: string, path: string | number, e: unknown): SystemError => {
  const err = e as NodeJS.ErrnoException
  return new SystemError({
    reason: reasonOf(err.code),
    module: "FileSystem",
    method,
    pathOrDescriptor: path,
    ...(err.syscall === undefined ? {} : { syscall: err.syscall }),
    description: err.message,
    cause: err
  })
}

/** The errno code of a thrown error, if it has one. */
export const codeOf = (e: unknown): string | undefined => (e as NodeJS.ErrnoException | undefined)?.code

/** Runs a synchronous call, turning a thrown errno error into the platform's `SystemError`. */
const call = <A>(method: string, path: string | number, f: () => A): Effect.Effect<A, PlatformError> =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(f())
    } catch (e) {
      return Effect.fail(systemError(method, path, e))
    }
  })

const info = (s: fs.Stats): FileSystem.File.Info => ({
  type: s.isFile()
    ? "File"
    : s.isDirectory()
      ? "Directory"
      : s.isSymbolicLink()
        ? "SymbolicLink"
        : s.isBlockDevice()
          ? "BlockDevice"
          : s.isCharacterDevice()
            ? "CharacterDevice"
            : s.isFIFO()
              ? "FIFO"
              : s.isSocket()
                ? "Socket"
                : "Unknown",
  mtime: Option.some(s.mtime),
  atime: Option.some(s.atime),
  birthtime: Option.some(s.birthtime),
  dev: s.dev,
  ino: Option.some(s.ino),
  mode: s.mode,
  nlink: Option.some(s.nlink),
  uid: Option.some(s.uid),
  gid: Option.some(s.gid),
  rdev: Option.some(s.rdev),
  size: FileSystem.Size(s.size),
  blksize: Option.some(FileSystem.Size(s.blksize)),
  blocks: Option.some(s.blocks)
})

/** Writes all of `buffer`; a write that makes no progress is the disk being full. */
export const writeAll = (sys: Syscalls, fd: number, buffer: Uint8Array, position: number | null): number => {
  let offset = 0
  while (offset < buffer.length) {
    const n = sys.writeSync(fd, buffer, offset, buffer.length - offset, position === null ? null : position + offset)
    if (n <= 0) throw Object.assign(new Error("write returned 0 bytes: the disk is probably full"), { code: "ENOSPC" })
    offset += n
  }
  return offset
}

const makeFile = (sys: Syscalls, fd: number, append: boolean): FileSystem.File => {
  let position = 0
  return {
    [FileSystem.FileTypeId]: FileSystem.FileTypeId,
    fd: FileSystem.FileDescriptor(fd),
    stat: call("stat", fd, () => info(sys.fstatSync(fd))),
    seek: (offset, from) =>
      Effect.sync(() => {
        position = from === "start" ? Number(offset) : position + Number(offset)
      }),
    sync: call("sync", fd, () => sys.fsyncSync(fd)),
    read: (buffer) =>
      call("read", fd, () => {
        const n = sys.readSync(fd, buffer, 0, buffer.length, position)
        position += n
        return FileSystem.Size(n)
      }),
    readAlloc: (size) =>
      call("readAlloc", fd, () => {
        const buffer = Buffer.allocUnsafe(Number(size))
        const n = sys.readSync(fd, buffer, 0, buffer.length, position)
        position += n
        return n === 0 ? Option.none() : Option.some(buffer.subarray(0, n))
      }),
    truncate: (length) => call("truncate", fd, () => sys.ftruncateSync(fd, Number(length ?? 0))),
    write: (buffer) =>
      call("write", fd, () => {
        const n = sys.writeSync(fd, buffer, 0, buffer.length, append ? null : position)
        if (!append) position += n
        return FileSystem.Size(n)
      }),
    writeAll: (buffer) =>
      call("writeAll", fd, () => {
        const n = writeAll(sys, fd, buffer, append ? null : position)
        if (!append) position += n
      })
  }
}

/** Closes without failing: every write the store relies on was fsynced (and checked) before, reads are done. */
export const closeQuietly = (sys: Syscalls, fd: number) => {
  try {
    sys.closeSync(fd)
  } catch {
    // EIO/EINTR from close(2) says nothing about data that was already synced; the descriptor is released anyway.
  }
}

/**
 * Closes and refuses a descriptor that is neither a regular file nor a directory (a FIFO, a socket, a device planted
 * in the store's directory): an `EFTYPE` error naming the path.
 */
const refuseSpecial = (sys: Syscalls, fd: number, path: string): number => {
  const stats = sys.fstatSync(fd)
  if (stats.isFile() || stats.isDirectory()) return fd
  closeQuietly(sys, fd)
  const kind = stats.isFIFO() ? "a FIFO" : stats.isSocket() ? "a socket" : "a device"
  throw Object.assign(new Error(`EFTYPE: ${path} is ${kind}, not a regular file`), {
    code: "EFTYPE",
    syscall: "open",
    path
  })
}

/**
 * Opens a file of the store: no symbolic link followed, no blocking, nothing but regular files and directories. A
 * file created by this very open (`wx`: `O_CREAT | O_EXCL`) is a new regular file: no need to look.
 */
export const openFile = (sys: Syscalls, path: string, flags: string, mode?: number): number => {
  const fd = sys.openSync(path, flags, mode)
  return flags.endsWith("x") ? fd : refuseSpecial(sys, fd, path)
}

export const readAll = (sys: Syscalls, path: string): Buffer => {
  const fd = openFile(sys, path, "r")
  try {
    const size = sys.fstatSync(fd).size
    let buffer = Buffer.allocUnsafe(Math.max(size, 4096))
    let filled = 0
    for (;;) {
      if (filled === buffer.length) {
        const grown = Buffer.allocUnsafe(buffer.length * 2)
        buffer.copy(grown, 0, 0, filled)
        buffer = grown
      }
      const n = sys.readSync(fd, buffer, filled, buffer.length - filled, filled)
      if (n === 0) return buffer.subarray(0, filled)
      filled += n
    }
  } finally {
    closeQuietly(sys, fd)
  }
}

const writeWhole = (sys: Syscalls, path: string, data: Uint8Array, flag: string, mode: number | undefined) => {
  const fd = openFile(sys, path, flag, mode)
  try {
    writeAll(sys, fd, data, flag.startsWith("a") ? null : 0)
  } finally {
    closeQuietly(sys, fd)
  }
}

const removeTree = (sys: Syscalls, path: string) => {
  // Nothing there: the unlink below says so (ENOENT), as a removal of a missing file must.
  if (sys.lstatSync(path)?.isDirectory() === true) {
    for (const name of sys.readdirSync(path)) removeTree(sys, `${path}/${name}`)
    sys.rmdirSync(path)
  } else sys.unlinkSync(path)
}

const makeDirectories = (sys: Syscalls, path: string) => {
  try {
    sys.mkdirSync(path)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code === "EEXIST" && statOrThrow(sys, path).isDirectory()) return
    if (code !== "ENOENT") throw e
    const parent = path.slice(0, path.lastIndexOf("/"))
    if (parent === "" || parent === path) throw e
    makeDirectories(sys, parent)
    sys.mkdirSync(path)
  }
}

/** The `FileSystem`s of this module and their system calls. */
const made = new WeakMap<FileSystem.FileSystem, Syscalls>()

/**
 * The system calls under a `FileSystem` of this module, or `undefined` for any other (a wrapper of one too: what it
 * changes must be seen): with them the file store runs its hot path (`update`, `create`) as straight-line calls,
 * without an effect per call.
 */
export const syscallsOf = (fs: FileSystem.FileSystem): Syscalls | undefined => made.get(fs)

/** Node's `FileSystem` with every operation the file store uses made a direct call into `syscalls`. */
export const layerWith = (syscalls: Syscalls): Layer.Layer<FileSystem.FileSystem> =>
  Layer.effect(
    FileSystem.FileSystem,
    Effect.map(FileSystem.FileSystem, (node): FileSystem.FileSystem => {
      const sys = syscalls
      const fs: FileSystem.FileSystem = {
        ...node,
        exists: (path) =>
          call("exists", path, () => {
            try {
              return sys.statSync(path) !== undefined
            } catch (e) {
              const code = (e as NodeJS.ErrnoException).code
              if (code === "ENOENT" || code === "ENOTDIR") return false
              throw e
            }
          }),
        link: (from, to) => call("link", from, () => sys.linkSync(from, to)),
        makeDirectory: (path, options) =>
          call("makeDirectory", path, () =>
            options?.recursive === true ? makeDirectories(sys, path.replace(/\/+$/, "")) : sys.mkdirSync(path)
          ),
        open: (path, options) =>
          Effect.acquireRelease(
            call("open", path, () => openFile(sys, path, options?.flag ?? "r", options?.mode)),
            (fd) => Effect.sync(() => closeQuietly(sys, fd))
          ).pipe(Effect.map((fd) => makeFile(sys, fd, options?.flag?.startsWith("a") ?? false))),
        readDirectory: (path) => call("readDirectory", path, () => sys.readdirSync(path)),
        readFile: (path) => call("readFile", path, () => readAll(sys, path)),
        readFileString: (path, encoding) =>
          call("readFile", path, () => readAll(sys, path).toString((encoding ?? "utf8") as BufferEncoding)),
        readLink: (path) => call("readLink", path, () => sys.readlinkSync(path)),
        // A file or a link (the hot case: a lock) goes in one unlink; a directory only when asked to.
        remove: (path, options) =>
          call("remove", path, () => (options?.recursive === true ? removeTree(sys, path) : sys.unlinkSync(path))),
        rename: (from, to) => call("rename", from, () => sys.renameSync(from, to)),
        stat: (path) => call("stat", path, () => info(statOrThrow(sys, path))),
        symlink: (target, path) => call("symlink", path, () => sys.symlinkSync(target, path)),
        writeFile: (path, data, options) =>
          call("writeFile", path, () => writeWhole(sys, path, data, options?.flag ?? "w", options?.mode)),
        writeFileString: (path, data, options) =>
          call("writeFile", path, () =>
            writeWhole(sys, path, Buffer.from(data, "utf8"), options?.flag ?? "w", options?.mode)
          )
      }
      made.set(fs, sys)
      return fs
    })
  ).pipe(Layer.provide(NodeFileSystem.layer))

/** Node's `FileSystem`, with the operations the file store uses made direct system calls. */
export const layer: Layer.Layer<FileSystem.FileSystem> = layerWith(nodeSyscalls)

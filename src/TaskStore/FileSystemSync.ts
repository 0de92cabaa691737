/**
 * A `FileSystem` whose operations on the file store's hot path are direct synchronous system calls, the rest being
 * Node's usual asynchronous implementation.
 *
 * Why: a checkpoint of the file store is about a dozen small file operations around two fsyncs. Through Node's thread
 * pool each costs a hand-off of 50–100 µs on a small machine, several times the cost of the call itself, which made a
 * checkpoint five times slower than the fsyncs it waits for. Called directly they cost microseconds; the fsyncs
 * (which dominate) block the event loop for as long as the disk takes, exactly as long as the checkpointing task waits
 * anyway. Tests wrap this service like any `FileSystem` to inject faults.
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

/** Runs a synchronous call, turning a thrown errno error into the platform's `SystemError`. */
const call = <A>(method: string, path: string | number, f: () => A): Effect.Effect<A, PlatformError> =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(f())
    } catch (e) {
      const err = e as NodeJS.ErrnoException
      return Effect.fail(
        new SystemError({
          reason: reasonOf(err.code),
          module: "FileSystem",
          method,
          pathOrDescriptor: path,
          ...(err.syscall === undefined ? {} : { syscall: err.syscall }),
          description: err.message,
          cause: err
        })
      )
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

const makeFile = (fd: number, append: boolean): FileSystem.File => {
  let position = 0
  return {
    [FileSystem.FileTypeId]: FileSystem.FileTypeId,
    fd: FileSystem.FileDescriptor(fd),
    stat: call("stat", fd, () => info(fs.fstatSync(fd))),
    seek: (offset, from) =>
      Effect.sync(() => {
        position = from === "start" ? Number(offset) : position + Number(offset)
      }),
    sync: call("sync", fd, () => fs.fsyncSync(fd)),
    read: (buffer) =>
      call("read", fd, () => {
        const n = fs.readSync(fd, buffer, 0, buffer.length, position)
        position += n
        return FileSystem.Size(n)
      }),
    readAlloc: (size) =>
      call("readAlloc", fd, () => {
        const buffer = Buffer.allocUnsafe(Number(size))
        const n = fs.readSync(fd, buffer, 0, buffer.length, position)
        position += n
        return n === 0 ? Option.none() : Option.some(buffer.subarray(0, n))
      }),
    truncate: (length) => call("truncate", fd, () => fs.ftruncateSync(fd, Number(length ?? 0))),
    write: (buffer) =>
      call("write", fd, () => {
        const n = fs.writeSync(fd, buffer, 0, buffer.length, append ? null : position)
        if (!append) position += n
        return FileSystem.Size(n)
      }),
    writeAll: (buffer) =>
      call("writeAll", fd, () => {
        let offset = 0
        while (offset < buffer.length) {
          const n = fs.writeSync(fd, buffer, offset, buffer.length - offset, append ? null : position)
          if (n <= 0) throw Object.assign(new Error("write returned 0 bytes"), { code: "ENOSPC" })
          offset += n
          if (!append) position += n
        }
      })
  }
}

const unlinkOrRm = (path: string) => {
  try {
    fs.unlinkSync(path)
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code !== "EISDIR" && code !== "EPERM") throw e
    fs.rmSync(path)
  }
}

/** Node's `FileSystem`, with the operations the file store uses most made synchronous. */
export const layer: Layer.Layer<FileSystem.FileSystem> = Layer.effect(
  FileSystem.FileSystem,
  Effect.map(FileSystem.FileSystem, (node): FileSystem.FileSystem => ({
    ...node,
    exists: (path) => call("exists", path, () => fs.existsSync(path)),
    link: (from, to) => call("link", from, () => fs.linkSync(from, to)),
    open: (path, options) =>
      Effect.acquireRelease(
        call("open", path, () => fs.openSync(path, options?.flag ?? "r", options?.mode)),
        (fd) => Effect.sync(() => fs.closeSync(fd))
      ).pipe(Effect.map((fd) => makeFile(fd, options?.flag?.startsWith("a") ?? false))),
    readFile: (path) => call("readFile", path, () => fs.readFileSync(path)),
    readFileString: (path, encoding) =>
      call("readFile", path, () => fs.readFileSync(path, (encoding ?? "utf8") as BufferEncoding)),
    readLink: (path) => call("readLink", path, () => fs.readlinkSync(path)),
    // A file or a link (the hot case: a lock) goes in one unlink; anything else the way rm does it.
    remove: (path, options) =>
      call("remove", path, () =>
        options?.recursive === true ? fs.rmSync(path, { recursive: true }) : unlinkOrRm(path)
      ),
    rename: (from, to) => call("rename", from, () => fs.renameSync(from, to)),
    stat: (path) => call("stat", path, () => info(fs.statSync(path))),
    symlink: (target, path) => call("symlink", path, () => fs.symlinkSync(target, path))
  }))
).pipe(Layer.provide(NodeFileSystem.layer))

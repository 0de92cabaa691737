/**
 * Where the file store keeps what, and how its I/O errors are told: the one place that names files.
 *
 * - `<id>.task`: the record (format in `recordFile.ts`), replaced by write-temp, fsync, rename, fsync(dir).
 * - `<id>.log`: the task's log lines, one JSON object per line, appended.
 * - `<id>.lock`: present while one process reads-checks-writes the record: a hard link to that store's holder file,
 *   whose content names it (a symbolic link whose target names the holder, from versions before, is read the same).
 *   A task running in that process keeps it between back-to-back writes until the event loop turns (`Locks.keep`).
 * - `.holder-<pid>-<start>-<store>`: a store's holder file, made when it opens, removed when it closes; swept when a
 *   store opens if the process that made it is gone.
 * - `<id>.want`: a hint left by a process waiting for the lock, so the holder lets it in (fairness).
 * - `.tmp/.tmp-<pid>-<start>-<n>`: a file being written, in a directory of its own: a temp file made, written and
 *   renamed beside the records would give every watcher of their directory (runners of versions before `.signals/`)
 *   three more events at every write. Renamed into the records' directory when whole. Swept when a store opens if
 *   the process that made it is gone, as are temp files of versions before, which were made beside the records.
 * - `.break-<pid>-<start>-<rand>`: a lock being broken; swept likewise.
 * - `.signals/<id>`: made and removed at once to announce a request or a queued task to the processes watching this
 *   directory (`changes.ts`), in a directory of its own so that they are not woken by every write of every record.
 *   One left by a crash between the two is removed when a store opens.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as PlatformError from "@effect/platform/Error"
import { join, sep } from "node:path"
import type * as Holder from "../../Holder.js"
import { TaskStoreError } from "../../TaskError.js"

export const recordSuffix = ".task"
export const logSuffix = ".log"
export const lockSuffix = ".lock"
export const wantSuffix = ".want"
export const tempPrefix = ".tmp-"
/** The directory, inside the records' one, of the files being written. */
const tempDirName = ".tmp"
/** The directory, inside the records' one, of the announcements (`changes.ts`). */
const signalDirName = ".signals"
export const breakPrefix = ".break-"
export const holderPrefix = ".holder-"

/** The errno of a platform error, from the Node error underneath or from its reason. */
export const errnoOf = (error: PlatformError.PlatformError): string | undefined => {
  if (error._tag === "SystemError") {
    const code = (error.cause as NodeJS.ErrnoException | undefined)?.code
    if (typeof code === "string") return code
    switch (error.reason) {
      case "NotFound":
        return "ENOENT"
      case "AlreadyExists":
        return "EEXIST"
      case "PermissionDenied":
        return "EACCES"
      case "WriteZero":
        return "ENOSPC"
      default:
        return undefined
    }
  }
  return undefined
}

export const isNotFound = (error: PlatformError.PlatformError) => errnoOf(error) === "ENOENT"
export const isExists = (error: PlatformError.PlatformError) => errnoOf(error) === "EEXIST"

/** A store directory: its files' paths, this process as their writer, and errors that name the file. */
export interface Layout {
  readonly fs: FileSystem.FileSystem
  /** The directory of the records (`<store>/tasks`). */
  readonly dir: string
  /** The directory of the files being written (`<store>/tasks/.tmp`). */
  readonly tempDir: string
  /** The directory of the announcements (`<store>/tasks/.signals`). */
  readonly signalDir: string
  /** This process, as it signs locks and temp files. */
  readonly me: Holder.Holder
  readonly recordPath: (id: string) => string
  readonly logPath: (id: string) => string
  readonly lockPath: (id: string) => string
  readonly wantPath: (id: string) => string
  /** The file that announces a change of `id` (`changes.ts`). */
  readonly signalPath: (id: string) => string
  /** A fresh temp file name, unique in this process, that tells which process made it. */
  readonly tempPath: () => string
  /** A platform error as the store's error for `operation` on `path`. */
  readonly io: (operation: string, path: string, id?: string) => (error: PlatformError.PlatformError) => TaskStoreError
}

/** The layout of `dir`. */
export const make = (fs: FileSystem.FileSystem, dir: string, me: Holder.Holder): Layout => {
  let tempCounter = 0
  // Names appended to the directory as it is, normalized once here: `join` would normalize it again at every call,
  // a few of which every checkpoint makes. Ids are valid task ids (`TaskStore.make` checks them), never `..` or a path.
  const prefix = join(dir, sep)
  const tempDir = join(dir, tempDirName)
  const tempName = `${join(tempDir, sep)}${tempPrefix}${me.pid}-${me.processStart}-`
  const signalDir = join(dir, signalDirName)
  const signalPrefix = join(signalDir, sep)
  return {
    fs,
    dir,
    tempDir,
    signalDir,
    me,
    recordPath: (id) => prefix + id + recordSuffix,
    logPath: (id) => prefix + id + logSuffix,
    lockPath: (id) => prefix + id + lockSuffix,
    wantPath: (id) => prefix + id + wantSuffix,
    signalPath: (id) => signalPrefix + id,
    // Stryker disable next-line UpdateOperator: counting down gives unique names too.
    tempPath: () => tempName + ++tempCounter,
    io: (operation, path, id) => (error) => {
      const errno = errnoOf(error)
      return new TaskStoreError({
        reason: "Io",
        operation,
        path,
        // The system's own words ("ENOSPC: no space left on device, write") rather than the platform's wrapper.
        detail: (error.cause instanceof Error ? error.cause.message : undefined) ?? error.message,
        cause: error,
        ...(errno === undefined ? {} : { errno }),
        ...(id === undefined ? {} : { id })
      })
    }
  }
}

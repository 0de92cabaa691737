/**
 * A power cut, simulated at the system-call layer of the file store.
 *
 * Every call reaches a real directory, and a model beside it keeps what the disk would still hold after a power cut,
 * the way crash-consistency checkers (ALICE, CrashMonkey) model a POSIX file system at its weakest:
 *
 * - a file's data is durable only as of its last `fsync` (a file never synced is empty);
 * - a directory's entries (creates, renames, links, unlinks) are durable only as of the directory's last `fsync`;
 * - a symbolic link's target is durable with the entry that names it.
 *
 * `cutAt(k)` makes the k-th call from then on (and every call after it) fail with EIO, as if the machine died
 * there; `materialize(dir)` writes what a reboot would find into `dir`. After a reboot no process of before is alive:
 * locks and temp files that name this process are given another process start time.
 */
import * as fs from "node:fs"
import { join, relative, sep } from "node:path"
import * as Holder from "../../src/Holder.js"
import * as FileSystemSync from "../../src/internal/file/fileSystemSync.js"

class FileNode {
  readonly kind = "file"
  current: Buffer = Buffer.alloc(0)
  durable: Buffer = Buffer.alloc(0)
}

class DirNode {
  readonly kind = "dir"
  current = new Map<string, Node>()
  durable = new Map<string, Node>()
}

class LinkNode {
  readonly kind = "link"
  constructor(readonly target: string) {}
}

type Node = FileNode | DirNode | LinkNode

const powerLost = (method: string, path: string) =>
  Object.assign(new Error(`EIO: the power is off, ${method} '${path}'`), { code: "EIO", syscall: method })

export class PowerLoss {
  private readonly root = new DirNode()
  private readonly fds = new Map<number, { readonly node: FileNode | DirNode; readonly path: string }>()
  /** Calls since the last `cutAt`. */
  calls = 0
  private cut: number | undefined = undefined
  /** Set once a call has failed for the cut: nothing after it reached the disk. */
  off = false

  /** `base` must be an empty, existing directory: everything the model knows happens below it. */
  constructor(readonly base: string) {
    if (fs.readdirSync(base).length !== 0) throw new Error(`${base} is not empty`)
  }

  /** From now on, the `k`-th call (1-based) and every later one fail; `undefined` only counts. */
  cutAt(k: number | undefined) {
    this.calls = 0
    this.cut = k
    this.off = false
  }

  private step(method: string, path: string) {
    this.calls++
    if (this.off || (this.cut !== undefined && this.calls >= this.cut)) {
      this.off = true
      throw powerLost(method, path)
    }
  }

  private parts(path: string): Array<string> {
    const rel = relative(this.base, path)
    if (rel.startsWith("..")) throw new Error(`${path} is outside the simulated disk ${this.base}`)
    return rel === "" ? [] : rel.split(sep)
  }

  private lookup(path: string): Node | undefined {
    let node: Node | undefined = this.root
    for (const part of this.parts(path)) {
      if (node?.kind !== "dir") return undefined
      node = node.current.get(part)
    }
    return node
  }

  private parent(path: string): { readonly dir: DirNode; readonly name: string } {
    const parts = this.parts(path)
    const name = parts.pop()
    let node: Node | undefined = this.root
    for (const part of parts) node = node?.kind === "dir" ? node.current.get(part) : undefined
    if (node?.kind !== "dir" || name === undefined) throw new Error(`model: no directory holds ${path}`)
    return { dir: node, name }
  }

  private fd(fd: number) {
    const entry = this.fds.get(fd)
    if (entry === undefined) throw new Error(`model: unknown descriptor ${fd}`)
    return entry
  }

  /** The system calls to hand to `FileSystemSync.layerWith`. */
  readonly syscalls: FileSystemSync.Syscalls = ((sys: FileSystemSync.Syscalls) => ({
    openSync: (path, flags, mode) => {
      this.step("open", path)
      const fd = sys.openSync(path, flags, mode)
      let node = this.lookup(path)
      if (node === undefined) {
        node = new FileNode()
        const { dir, name } = this.parent(path)
        dir.current.set(name, node)
      }
      if (node.kind === "link") throw new Error(`model: ${path} opened through a link`)
      if (node.kind === "file" && flags.includes("w")) node.current = Buffer.alloc(0)
      this.fds.set(fd, { node, path })
      return fd
    },
    closeSync: (fd) => {
      this.fds.delete(fd)
      sys.closeSync(fd)
    },
    readSync: (fd, buffer, offset, length, position) => {
      this.step("read", this.fd(fd).path)
      return sys.readSync(fd, buffer, offset, length, position)
    },
    writeSync: (fd, buffer, offset, length, position) => {
      const { node, path } = this.fd(fd)
      this.step("write", path)
      const n = sys.writeSync(fd, buffer, offset, length, position)
      if (node.kind === "file") {
        const at = position ?? node.current.length
        const end = Math.max(node.current.length, at + n)
        const next = Buffer.alloc(end)
        node.current.copy(next)
        Buffer.from(buffer.buffer, buffer.byteOffset + offset, n).copy(next, at)
        node.current = next
      }
      return n
    },
    fsyncSync: (fd) => {
      const { node, path } = this.fd(fd)
      this.step("fsync", path)
      sys.fsyncSync(fd)
      if (node.kind === "file") node.durable = Buffer.from(node.current)
      else node.durable = new Map(node.current)
    },
    fstatSync: (fd) => {
      this.step("fstat", this.fd(fd).path)
      return sys.fstatSync(fd)
    },
    ftruncateSync: (fd, length) => {
      const { node, path } = this.fd(fd)
      this.step("ftruncate", path)
      sys.ftruncateSync(fd, length)
      if (node.kind === "file") {
        const next = Buffer.alloc(length)
        node.current.copy(next, 0, 0, Math.min(length, node.current.length))
        node.current = next
      }
    },
    statSync: (path) => {
      this.step("stat", path)
      return sys.statSync(path)
    },
    lstatSync: (path) => {
      this.step("lstat", path)
      return sys.lstatSync(path)
    },
    renameSync: (from, to) => {
      this.step("rename", from)
      sys.renameSync(from, to)
      const source = this.parent(from)
      const target = this.parent(to)
      const node = source.dir.current.get(source.name)!
      source.dir.current.delete(source.name)
      target.dir.current.set(target.name, node)
    },
    unlinkSync: (path) => {
      this.step("unlink", path)
      sys.unlinkSync(path)
      const { dir, name } = this.parent(path)
      dir.current.delete(name)
    },
    rmdirSync: (path) => {
      this.step("rmdir", path)
      sys.rmdirSync(path)
      const { dir, name } = this.parent(path)
      dir.current.delete(name)
    },
    linkSync: (from, to) => {
      this.step("link", to)
      sys.linkSync(from, to)
      const { dir, name } = this.parent(to)
      dir.current.set(name, this.lookup(from)!)
    },
    symlinkSync: (target, path) => {
      this.step("symlink", path)
      sys.symlinkSync(target, path)
      const { dir, name } = this.parent(path)
      dir.current.set(name, new LinkNode(target))
    },
    readlinkSync: (path) => {
      this.step("readlink", path)
      return sys.readlinkSync(path)
    },
    mkdirSync: (path) => {
      this.step("mkdir", path)
      sys.mkdirSync(path)
      const { dir, name } = this.parent(path)
      dir.current.set(name, new DirNode())
    },
    readdirSync: (path) => {
      this.step("readdir", path)
      return sys.readdirSync(path)
    }
  }))(FileSystemSync.nodeSyscalls)

  /** Writes into the empty directory `into` what the disk holds after the power cut. */
  materialize(into: string) {
    const me = Holder.self()
    const mine = `${me.pid}:${me.processStart}:`
    const rebooted = (text: string) => text.replace(`L:${mine}`, `L:${me.pid}:before-reboot:`)
    const renamed = (name: string) => name.replace(`-${me.pid}-${me.processStart}-`, `-${me.pid}-before-reboot-`)
    const write = (dir: DirNode, path: string) => {
      for (const [name, node] of dir.durable) {
        const target = join(path, renamed(name))
        if (node.kind === "dir") {
          fs.mkdirSync(target)
          write(node, target)
        } else if (node.kind === "file") fs.writeFileSync(target, node.durable)
        else fs.symlinkSync(rebooted(node.target), target)
      }
    }
    write(this.root, into)
  }
}

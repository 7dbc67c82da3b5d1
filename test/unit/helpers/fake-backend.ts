// An in-memory Backend for unit tests of the VFS: every capability, configurable like local (random writes) or like
// S3 (whole-object writes only), counting every call so tests can tell what reached the backend. Hard links share
// one node. `hold(method)` pauses the next call of a method until released, to stage races deterministically.
import { FsxError } from '../../../dist/errors.js'

const S_IFREG = 0o100000
const S_IFDIR = 0o040000
const S_IFLNK = 0o120000

interface Node {
  kind: 'file' | 'dir' | 'symlink'
  mode: number
  uid: number
  gid: number
  data: Buffer
  target?: string
  atimeMs: number
  mtimeMs: number
  ctimeMs: number
  ino: number
  version: number
  xattrs: Map<string, Buffer>
}

export interface FakeOptions {
  /** Like local/SFTP (true, default) or like S3 (false: no open(), whole-object writes). */
  randomWrite?: boolean
  /** Files of this host, like local (the Vfs leaves caching them to the kernel); default false: a remote backend
   *  (with randomWrite, like SFTP: fsx's data cache, and write-back through the journal). */
  hostFiles?: boolean
  /** Report inode numbers (default true). */
  ino?: boolean
  /** Report an etag that changes on every write (default false). */
  etag?: boolean
  /** Clock for mtimes (default Date.now). */
  now?: () => number
  /** write() resolves with the new file's attributes, as S3's does (default: with nothing). */
  writeAnswers?: boolean
}

function parent (p: string): string { return p.slice(0, p.lastIndexOf('/')) || '/' }
function err (code: string, p: string, op: string): FsxError { return new FsxError(code, `${op} ${p}: ${code}`, { path: p, op }) }

export class FakeBackend {
  readonly description = 'fake:'
  readonly capabilities
  readonly calls: Record<string, number> = {}
  /** Bytes returned by read() and handle reads. */
  readBytes = 0
  private readonly nodes = new Map<string, Node>()
  private nextIno = 2
  private readonly holds = new Map<string, { entered: () => void, wait: Promise<void> }>()
  private readonly now: () => number

  constructor (readonly opts: FakeOptions = {}) {
    this.now = opts.now ?? Date.now
    const rw = opts.randomWrite ?? true
    this.capabilities = { randomWrite: rw, symlinks: true, hardlinks: true, xattrs: true, chmod: true, chown: true, utimens: true, statfs: false, atomicRename: true, realDirectories: true, ...(opts.hostFiles === true ? { hostFiles: true } : {}) }
    this.nodes.set('/', this.node('dir', 0o755))
    if (!rw) (this as any).open = undefined
  }

  private node (kind: Node['kind'], perm: number, data = Buffer.alloc(0)): Node {
    const t = this.now()
    const type = kind === 'dir' ? S_IFDIR : kind === 'symlink' ? S_IFLNK : S_IFREG
    return { kind, mode: type | perm, uid: 0, gid: 0, data, atimeMs: t, mtimeMs: t, ctimeMs: t, ino: this.nextIno++, version: 1, xattrs: new Map() }
  }

  /** Pauses the next call of `method` after it is counted; resolves `entered` when it arrived; `release()` lets it go on. */
  hold (method: string): { entered: Promise<void>, release: () => void } {
    let entered!: () => void
    let release!: () => void
    const enteredP = new Promise<void>(resolve => { entered = resolve })
    const wait = new Promise<void>(resolve => { release = resolve })
    this.holds.set(method, { entered, wait })
    return { entered: enteredP, release }
  }

  /** While set, every call fails with this errno (a backend that cannot be reached). */
  down?: string

  private async call (method: string): Promise<void> {
    this.calls[method] = (this.calls[method] ?? 0) + 1
    if (this.down) throw Object.assign(new Error(`backend unreachable (${method})`), { code: this.down })
    const h = this.holds.get(method)
    if (h) {
      this.holds.delete(method)
      h.entered()
      await h.wait
    }
  }

  count (method: string): number { return this.calls[method] ?? 0 }

  // ---- direct access for tests (not counted): changes "made outside the mount" -------------------------------

  put (p: string, content: string | Buffer, mtimeMs?: number): void {
    const existing = this.nodes.get(p)
    const data = Buffer.from(content)
    if (existing) {
      existing.data = data
      existing.mtimeMs = mtimeMs ?? this.now()
      existing.version++
    } else {
      const n = this.node('file', 0o644, data)
      if (mtimeMs !== undefined) n.mtimeMs = mtimeMs
      this.nodes.set(p, n)
    }
  }

  putDir (p: string): void { this.nodes.set(p, this.node('dir', 0o755)) }
  drop (p: string): void { this.nodes.delete(p) }
  content (p: string): Buffer | undefined { return this.nodes.get(p)?.data }

  private get (p: string, op: string): Node {
    const n = this.nodes.get(p)
    if (!n) throw err(this.nodes.has(parent(p)) ? 'ENOENT' : 'ENOENT', p, op)
    return n
  }

  private nlink (n: Node): number {
    if (n.kind === 'dir') return 2
    let c = 0
    for (const m of this.nodes.values()) if (m === n) c++
    return c
  }

  private statOf (n: Node): any {
    const st: any = {
      kind: n.kind, size: n.kind === 'symlink' ? (n.target ?? '').length : n.kind === 'dir' ? 4096 : n.data.length,
      mode: n.mode, uid: n.uid, gid: n.gid, nlink: this.nlink(n), atimeMs: n.atimeMs, mtimeMs: n.mtimeMs, ctimeMs: n.ctimeMs
    }
    if (this.opts.ino ?? true) st.ino = n.ino
    if (this.opts.etag) st.etag = `"${n.ino}-${n.version}"`
    return st
  }

  async stat (p: string): Promise<any> {
    await this.call('stat')
    return this.statOf(this.get(p, 'stat'))
  }

  async list (p: string): Promise<any[]> {
    await this.call('list')
    if (this.get(p, 'list').kind !== 'dir') throw err('ENOTDIR', p, 'list')
    const prefix = p === '/' ? '/' : p + '/'
    const out = []
    for (const [k, n] of this.nodes) {
      if (k !== '/' && k.startsWith(prefix) && !k.slice(prefix.length).includes('/')) out.push({ name: k.slice(prefix.length), stat: this.statOf(n) })
    }
    return out
  }

  async read (p: string, offset: number, length: number): Promise<Buffer> {
    await this.call('read')
    const n = this.get(p, 'read')
    if (n.kind === 'dir') throw err('EISDIR', p, 'read')
    const b = Buffer.from(n.data.subarray(offset, offset + length))
    this.readBytes += b.length
    return b
  }

  async write (p: string, source: Buffer | { file: string, size: number }, attrs: any = {}): Promise<any> {
    await this.call('write')
    const { readFile } = await import('node:fs/promises')
    const data = Buffer.isBuffer(source) ? Buffer.from(source) : (await readFile(source.file)).subarray(0, source.size)
    const existing = this.nodes.get(p)
    if (existing?.kind === 'dir') throw err('EISDIR', p, 'write')
    if (!this.nodes.get(parent(p))) throw err('ENOENT', p, 'write')
    if (existing) {
      existing.data = data
      existing.mtimeMs = attrs.mtimeMs ?? this.now()
      existing.version++
    } else {
      const n = this.node('file', (attrs.mode ?? 0o644) & 0o7777, data)
      this.nodes.set(p, n)
    }
    if (this.opts.writeAnswers === true) return this.statOf(this.nodes.get(p)!)
  }

  async open (p: string, flags: any, mode: number): Promise<any> {
    await this.call('open')
    let n = this.nodes.get(p)
    if (n && flags.create && flags.exclusive) throw err('EEXIST', p, 'open')
    if (!n) {
      if (!flags.create) throw err('ENOENT', p, 'open')
      n = this.node('file', mode & 0o7777)
      this.nodes.set(p, n)
    }
    if (n.kind === 'dir' && flags.write) throw err('EISDIR', p, 'open')
    if (flags.truncate) { n.data = Buffer.alloc(0); n.version++ }
    const node = n
    const self = this
    return {
      async read (offset: number, length: number) {
        await self.call('handleRead')
        const b = Buffer.from(node.data.subarray(offset, offset + length))
        self.readBytes += b.length
        return b
      },
      async write (offset: number, data: Buffer) {
        await self.call('handleWrite')
        const end = offset + data.length
        if (end > node.data.length) { const g = Buffer.alloc(end); node.data.copy(g); node.data = g }
        data.copy(node.data, offset)
        node.mtimeMs = self.now()
        node.version++
        return data.length
      },
      async truncate (size: number) {
        await self.call('handleTruncate')
        const g = Buffer.alloc(size); node.data.copy(g, 0, 0, Math.min(size, node.data.length)); node.data = g
        node.version++
      },
      async sync () { await self.call('sync') },
      async close () { await self.call('close') }
    }
  }

  async truncate (p: string, size: number): Promise<void> {
    await this.call('truncate')
    const n = this.get(p, 'truncate')
    const g = Buffer.alloc(size); n.data.copy(g, 0, 0, Math.min(size, n.data.length)); n.data = g
    n.mtimeMs = this.now()
    n.version++
  }

  async remove (p: string): Promise<void> {
    await this.call('remove')
    if (this.get(p, 'unlink').kind === 'dir') throw err('EISDIR', p, 'unlink')
    this.nodes.delete(p)
  }

  async mkdir (p: string, mode: number): Promise<void> {
    await this.call('mkdir')
    if (this.nodes.has(p)) throw err('EEXIST', p, 'mkdir')
    this.nodes.set(p, this.node('dir', mode))
  }

  async rmdir (p: string): Promise<void> {
    await this.call('rmdir')
    if (this.get(p, 'rmdir').kind !== 'dir') throw err('ENOTDIR', p, 'rmdir')
    for (const k of this.nodes.keys()) if (k.startsWith(p + '/')) throw err('ENOTEMPTY', p, 'rmdir')
    this.nodes.delete(p)
  }

  async rename (from: string, to: string): Promise<void> {
    await this.call('rename')
    this.get(from, 'rename')
    const moves = [...this.nodes.entries()].filter(([k]) => k === from || k.startsWith(from + '/'))
    for (const k of [...this.nodes.keys()]) if (k === to || k.startsWith(to + '/')) this.nodes.delete(k)
    for (const [k] of moves) this.nodes.delete(k)
    for (const [k, v] of moves) this.nodes.set(to + k.slice(from.length), v)
  }

  async symlink (target: string, p: string): Promise<void> {
    await this.call('symlink')
    const n = this.node('symlink', 0o777)
    n.target = target
    this.nodes.set(p, n)
  }

  async readlink (p: string): Promise<string> {
    await this.call('readlink')
    const n = this.get(p, 'readlink')
    if (n.kind !== 'symlink') throw err('EINVAL', p, 'readlink')
    return n.target ?? ''
  }

  async link (existing: string, p: string): Promise<void> {
    await this.call('link')
    const n = this.get(existing, 'link')
    n.ctimeMs = this.now()
    this.nodes.set(p, n)
  }

  async chmod (p: string, mode: number): Promise<void> {
    await this.call('chmod')
    const n = this.get(p, 'chmod')
    n.mode = (n.mode & ~0o7777) | mode
  }

  async chown (p: string, uid: number, gid: number): Promise<void> {
    await this.call('chown')
    const n = this.get(p, 'chown')
    n.uid = uid
    n.gid = gid
  }

  async utimens (p: string, a: number | undefined, m: number | undefined): Promise<void> {
    await this.call('utimens')
    const n = this.get(p, 'utimens')
    if (a !== undefined) n.atimeMs = a
    if (m !== undefined) n.mtimeMs = m
  }

  async getxattr (p: string, name: string): Promise<Buffer> {
    await this.call('getxattr')
    const v = this.get(p, 'getxattr').xattrs.get(name)
    if (!v) throw err('ENODATA', p, 'getxattr')
    return v
  }

  async setxattr (p: string, name: string, value: Buffer): Promise<void> {
    await this.call('setxattr')
    const n = this.get(p, 'setxattr')
    n.xattrs.set(name, value)
    n.ctimeMs = 111
  }

  async listxattr (p: string): Promise<string[]> {
    await this.call('listxattr')
    return [...this.get(p, 'listxattr').xattrs.keys()]
  }

  async removexattr (p: string, name: string): Promise<void> {
    await this.call('removexattr')
    const n = this.get(p, 'removexattr')
    if (!n.xattrs.delete(name)) throw err('ENODATA', p, 'removexattr')
    n.ctimeMs = 222
  }

  counters (): Record<string, number> {
    return { reads: this.count('read') + this.count('handleRead'), readBytes: this.readBytes, ...this.calls }
  }

  /** Sends nothing (the fake defers nothing); counted, so tests see that `fsx flush` asks. */
  async flush (): Promise<void> { await this.call('flush') }

  async close (): Promise<void> {}
}

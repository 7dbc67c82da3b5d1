/**
 * SftpBackend: a directory on an SFTP server served through the Backend contract, over a pool of SSH connections
 * (connection.ts) with file handles that survive reconnects (file-handle.ts).
 *
 * Invariants:
 * - Backend paths ("/", "/a/b") are joined to the server root; a path with "." or ".." components is refused
 *   (EINVAL), so nothing above the root is named through fsx. (The server may still follow symlinks inside the root
 *   to elsewhere: the SSH account's own permissions are the real boundary, as with any SFTP client.)
 * - Every server round trip goes through `req` (a deadline per request). Path operations run through `run`, which
 *   waits for a connection at most `sftpTimeout` and repeats an idempotent request lost to a dying connection on a
 *   fresh one; a non-idempotent one (mkdir, remove, rename, link, symlink, exclusive create) fails with EIO, since
 *   its outcome is unknown.
 * - Errors leave here as errno errors made by `kit.fsxError` (see `fail`): SFTP status codes are translated, and
 *   where OpenSSH folds several errnos into one code, a follow-up lstat tells them apart.
 * - Attributes that come with a listing answer `stat` for `listingTtlMs` (not with consistency=strong); every change
 *   made through this backend forgets the paths it touches (`touched`), before it is sent and again once answered,
 *   and a listing that was in flight while a name of it was touched does not keep that name's attributes (they may
 *   be from before the change). Path operations first wait for the write-behind writes of open files at that path
 *   (`drainPath`), so stat sizes, utimens and renames see them; reads wait for them too (file-handle.ts).
 * - Open files follow renames: a rename gives the handles under `from` their new paths. Handles of a file whose
 *   name is removed or replaced (by rename or a whole-object write) are detached: they keep reaching that file on
 *   their session, but never reopen the name after a reconnect (ESTALE), and no longer count as handles of it.
 * - Stat: SFTP v3 has no nlink, ctime or inode. nlink is 1, except for files seen with more links (in a listing,
 *   whose long names carry the count, or made by `link`): their stat reads the count from the parent's listing.
 *   Times are whole seconds; ctime is mtime.
 */
import { randomBytes } from 'node:crypto'
import { open as openLocal } from 'node:fs/promises'
import os from 'node:os'
import type { SFTPWrapper } from 'ssh2'
import type {
  Backend, BackendKit, Capabilities, DirEntry, OpenFlags, Owner, Stat, StatFs, WriteAttrs, WriteSource
} from '@fsx/sdk'
import { Pool, request, isTransportError, type Session } from './connection.js'
import { SftpFileHandle, pflagsOf, type HandleHost } from './file-handle.js'
import type { SftpSettings } from './options.js'
import { describeTarget, hostKeyName, type SftpTarget } from './source.js'
import { loadSsh, openSession, prepareLogin } from './ssh.js'
import { NAME_MAX, PATH_MAX, STATUS, nameTooLong, statusOf } from './status.js'

const S_IFMT = 0o170000
/** How long a path seen as a directory is trusted when telling ENOENT from ENOTDIR (saves a round trip per miss). */
const KNOWN_DIR_TTL_MS = 10_000
/** Bound of the known-directory and multi-link memories. */
const MEMORY_MAX = 4096
/** Bytes read from a staging file per pipelined write step of a whole-object `write`, and steps in flight. */
const UPLOAD_BLOCK_BYTES = 1024 * 1024
const UPLOAD_BLOCKS_IN_FLIGHT = 4
/** Names of whole-file uploads in progress (`write`): left out of listings. */
const UPLOAD_TEMP = /^\.fsx-[0-9a-f]{12}\.tmp$/

/** ssh2's attributes as the server sends them (times in seconds). */
interface Attrs { mode?: number, uid?: number, gid?: number, size?: number, atime?: number, mtime?: number }

function kindOf (mode: number): Stat['kind'] {
  switch (mode & S_IFMT) {
    case 0o100000: return 'file'
    case 0o040000: return 'dir'
    case 0o120000: return 'symlink'
    default: return 'other'
  }
}

/** The contract's Stat from SFTP attributes. */
export function toStat (a: Attrs, nlink?: number): Stat {
  const mode = a.mode ?? 0o100644
  const size = a.size ?? 0
  const mtimeMs = (a.mtime ?? 0) * 1000
  return {
    kind: kindOf(mode),
    size,
    mode,
    uid: a.uid ?? 0,
    gid: a.gid ?? 0,
    nlink: nlink ?? 1,
    atimeMs: (a.atime ?? a.mtime ?? 0) * 1000,
    mtimeMs,
    ctimeMs: mtimeMs,
    blocks: Math.ceil(size / 512)
  }
}

/** The link count in an `ls -l` style long name ("-rw-r--r--    2 user group …"), if it is one. */
export function nlinkFromLongname (longname: string | undefined): number | undefined {
  const m = /^[-a-zA-Z?]{10}[+.@]?\s+(\d+)\s/.exec(longname ?? '')
  return m ? Number(m[1]) : undefined
}

function parentOf (p: string): string {
  const i = p.lastIndexOf('/')
  return i <= 0 ? '/' : p.slice(0, i)
}

function baseOf (p: string): string {
  return p.slice(p.lastIndexOf('/') + 1)
}

const MESSAGES: Record<string, string> = {
  ENOENT: 'no such file or directory',
  ENOTDIR: 'not a directory',
  EEXIST: 'already exists',
  ENOTEMPTY: 'directory not empty',
  EISDIR: 'is a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EINVAL: 'invalid argument',
  ENAMETOOLONG: 'file name too long',
  ENOTSUP: 'not supported by the server',
  ENOSPC: 'no space left on the server',
  EBADF: 'bad file handle',
  EBUSY: 'is the root of the mount',
  EIO: 'the server reported a failure'
}

type Counters = {
  requests: number, reads: number, writes: number, bytesRead: number, bytesWritten: number,
  reopens: number, retries: number, timeouts: number
}

export class SftpBackend implements Backend, HandleHost {
  readonly description: string
  readonly capabilities: Capabilities
  readonly stats: Counters = { requests: 0, reads: 0, writes: 0, bytesRead: 0, bytesWritten: 0, reopens: 0, retries: 0, timeouts: 0 }
  readonly timeoutMs: number
  readonly writeBehind: boolean
  private readonly handles = new Set<SftpFileHandle>()
  /** Backend paths recently seen as directories → when that stops being trusted. */
  private readonly knownDirs = new Map<string, number>()
  /** Backend paths of files known to have more than one link. */
  private readonly multiLinked = new Set<string>()
  /**
   * Attributes that came free with a directory listing, trusted for `listingTtlMs` (0: never kept): `ls -l` and
   * `find` then cost one listing instead of one round trip per name. Any change made through this backend forgets
   * the paths it touches.
   */
  private readonly listed = new Map<string, { st: Stat, until: number }>()
  private readonly listingTtlMs: number
  /**
   * Guards `listed` against listings that overlap a change: `touched` counts changes (`touchSeq`); while listings
   * are in flight it records the count per path touched, and the last subtree change's count. A listing stores a
   * name's attributes only if neither its path nor a subtree was touched since the listing began.
   */
  private touchSeq = 0
  private treeTouchSeq = 0
  private listingsInFlight = 0
  private readonly touchedDuringListing = new Map<string, number>()
  private readonly useLsetstat: boolean

  constructor (
    private readonly pool: Pool,
    private readonly kit: BackendKit,
    settings: SftpSettings,
    /** Absolute directory on the server that backend "/" names. */
    readonly root: string,
    description: string,
    extensions: Record<string, string>,
    /** The SSH login name: only root can give new files to the user who created them. */
    private readonly login = 'root'
  ) {
    this.description = description
    this.timeoutMs = settings.timeoutMs
    this.listingTtlMs = settings.listingTtlMs
    this.writeBehind = settings.writeBehind
    const has = (e: string): boolean => extensions[e] !== undefined
    this.useLsetstat = has('lsetstat@openssh.com')
    this.capabilities = {
      randomWrite: true,
      symlinks: true,
      hardlinks: has('hardlink@openssh.com'),
      xattrs: false,
      chmod: true,
      chown: true,
      utimens: true,
      statfs: has('statvfs@openssh.com'),
      atomicRename: has('posix-rename@openssh.com'),
      realDirectories: true,
      // ssh2 speaks names as UTF-8 strings: other names are refused (EILSEQ) by the VFS, and left out of listings.
      byteNames: false,
      specialFiles: false,
      owners: login === 'root'
    }
  }

  notices (): string[] {
    if (this.login === 'root') return []
    return [`sftp: logged in as ${this.login}, not root: files created through the mount belong to ${this.login} on the server, whoever creates them, and that account's permissions decide access`]
  }

  /**
   * Gives a node just created to `owner` when logged in as root (the only login that can). The VFS has applied the
   * setgid-directory rule to `owner` already.
   */
  private async giveTo (p: string, owner: Owner | undefined): Promise<void> {
    if (owner === undefined || this.login !== 'root') return
    await this.setNoFollow('chown', p, { uid: owner.uid, gid: owner.gid })
  }

  /** Connects (the first connection's failure is the caller's, as one line), resolves the root and checks it. */
  static async create (target: SftpTarget, settings: SftpSettings, kit: BackendKit): Promise<SftpBackend> {
    const ssh = await loadSsh()
    const username = target.user ?? os.userInfo().username
    const mk = (code: string, message: string): Error => kit.fsxError(code, message, { op: 'create' })
    const login = await prepareLogin(ssh, target.host, target.port, username, settings, mk)
    const where = hostKeyName(target.host, target.port)
    const pool = new Pool({ size: settings.connections, where, connect: async slot => await openSession(ssh, login, slot) })
    let first: Session
    try {
      first = await pool.start()
    } catch (err) {
      await pool.close()
      throw mk('EBACKEND', (err as Error).message)
    }
    try {
      let root = target.path
      if (target.homeRelative) {
        const home = await request<string>(first, settings.timeoutMs, 'realpath', (sftp, cb) => sftp.realpath('.', cb))
        root = (home.replace(/\/+$/, '') + target.path) || '/'
      }
      let st: Attrs
      try {
        st = await request<Attrs>(first, settings.timeoutMs, 'stat', (sftp, cb) => sftp.stat(root, cb))
      } catch (err) {
        const status = statusOf(err)
        if (status === STATUS.NO_SUCH_FILE) throw mk('ENOENT', `sftp: ${root} does not exist on ${where}`)
        if (status === STATUS.PERMISSION_DENIED) throw mk('EACCES', `sftp: ${root} on ${where}: permission denied`)
        throw mk('EBACKEND', `sftp: cannot stat ${root} on ${where}: ${(err as Error).message}`)
      }
      if (kindOf(st.mode ?? 0o040000) !== 'dir') throw mk('ENOTDIR', `sftp: ${root} on ${where} is not a directory`)
      return new SftpBackend(pool, kit, settings, root, describeTarget(target, username), first.extensions, username)
    } catch (err) {
      await pool.close()
      throw err
    }
  }

  // ---- plumbing ----------------------------------------------------------------------------------------------------

  error (code: string, op: string, p: string, message: string): Error {
    return this.kit.fsxError(code, `sftp ${op} ${p}: ${message}`, { path: p, op })
  }

  /** The server path for backend path `p`; EINVAL for "." / ".." components, NUL bytes or a relative path. */
  absPath (p: string, op: string): string {
    if (typeof p !== 'string' || !p.startsWith('/') || p.includes('\0')) throw this.error('EINVAL', op, String(p), 'not an absolute backend path')
    const parts = p.split('/').filter(c => c !== '')
    if (parts.some(c => c === '.' || c === '..')) throw this.error('EINVAL', op, p, '"." and ".." are not allowed in paths')
    const rel = parts.join('/')
    if (rel === '') return this.root
    return this.root === '/' ? '/' + rel : `${this.root}/${rel}`
  }

  /** A session for an open file's requests: it waits out a refused reconnect (a server restart) until `deadline`. */
  async acquire (deadline: number): Promise<Session> {
    return await this.pool.acquire(deadline, { failOnRefusal: false })
  }

  async req<T> (s: Session, what: string, fn: (sftp: SFTPWrapper, cb: (err?: Error | null, value?: any) => void) => void): Promise<T> {
    this.stats.requests++
    return await request<T>(s, this.timeoutMs, what, fn)
  }

  /**
   * Runs `body` on a live session: waits for one at most `sftpTimeout`; when the session is lost in flight, an
   * idempotent body runs again on a fresh one (until that deadline). Errors are raw: callers map them with `fail`.
   */
  private async run<T> (idempotent: boolean, body: (s: Session) => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.timeoutMs
    for (;;) {
      const s = await this.pool.acquire(deadline)
      try {
        return await body(s)
      } catch (err) {
        if (!isTransportError(err) || err.kind !== 'lost' || !idempotent || Date.now() >= deadline) throw err
        this.stats.retries++
      }
    }
  }

  /** One request on any live session, errors mapped for `op` on `p`. */
  private async one<T> (op: string, p: string, idempotent: boolean, fn: (sftp: SFTPWrapper, cb: (err?: Error | null, value?: any) => void) => void, other?: string): Promise<T> {
    try {
      return await this.run(idempotent, async s => await this.req<T>(s, op, fn))
    } catch (err) {
      throw await this.fail(op, p, err, other)
    }
  }

  forget (h: SftpFileHandle): void {
    this.handles.delete(h)
  }

  /**
   * Waits until the write-behind writes of open files at `p` (with `subtree`, also below it; with `children`, in
   * directory `p`) are answered, so what is asked next about that path sees them. Their errors stay with the files.
   */
  async drainPath (p: string, how: 'path' | 'subtree' | 'children' = 'path'): Promise<void> {
    let waits: Array<Promise<void>> | undefined
    const prefix = p === '/' ? '/' : p + '/'
    for (const h of this.handles) {
      const q = h.livePath
      if (!h.busy || q === undefined) continue
      const hit = q === p ||
        (how === 'subtree' && q.startsWith(prefix)) ||
        (how === 'children' && parentOf(q) === p)
      if (hit) (waits ??= []).push(h.drain())
    }
    if (waits !== undefined) await Promise.all(waits)
  }

  async drainOthers (p: string, self: SftpFileHandle): Promise<void> {
    let waits: Array<Promise<void>> | undefined
    for (const h of this.handles) if (h !== self && h.busy && h.isAt(p)) (waits ??= []).push(h.settled())
    if (waits !== undefined) await Promise.all(waits)
  }

  failedWrite (p: string): Error | undefined {
    for (const h of this.handles) if (h.isAt(p) && h.writeFailure !== undefined) return h.writeFailure
    return undefined
  }

  private hasOpenHandle (p: string): boolean {
    for (const h of this.handles) if (h.isAt(p)) return true
    return false
  }

  /** The file at `p` was removed or replaced through us: its open handles must never reopen `p`. */
  private detachAt (p: string): void {
    for (const h of this.handles) if (h.isAt(p)) h.detach()
  }

  /**
   * Forgets what is remembered about `p` (and, with `subtree`, everything below it): it changed through us. Changes
   * call it before they are sent and again once answered, so a listing that overlaps one never stores what it saw.
   */
  touched (p: string, subtree = false): void {
    this.touchSeq++
    if (subtree) this.treeTouchSeq = this.touchSeq
    else if (this.listingsInFlight > 0) {
      if (this.touchedDuringListing.size >= MEMORY_MAX) {
        this.touchedDuringListing.clear()
        this.treeTouchSeq = this.touchSeq
      } else {
        this.touchedDuringListing.set(p, this.touchSeq)
      }
    }
    this.listed.delete(p)
    for (const h of this.handles) if (h.isAt(p)) h.invalidate()
    if (!subtree) return
    const prefix = p === '/' ? '/' : p + '/'
    for (const m of [this.listed, this.knownDirs]) {
      for (const k of m.keys()) if (k === p || k.startsWith(prefix)) m.delete(k)
    }
  }

  private markDir (p: string): void {
    if (this.knownDirs.size >= MEMORY_MAX) this.knownDirs.clear()
    this.knownDirs.set(p, Date.now() + KNOWN_DIR_TTL_MS)
  }

  private isKnownDir (p: string): boolean {
    const until = this.knownDirs.get(p)
    return until !== undefined && until > Date.now()
  }

  private noteLinks (p: string, nlink: number | undefined): void {
    if (nlink !== undefined && nlink > 1) {
      if (this.multiLinked.size >= MEMORY_MAX) this.multiLinked.clear()
      this.multiLinked.add(p)
    } else {
      this.multiLinked.delete(p)
    }
  }

  /** lstat (or stat with `follow`): the Stat, null when the server says there is no such file, undefined when unknown. */
  private async probe (p: string, follow = false): Promise<Stat | null | undefined> {
    try {
      const full = this.absPath(p, 'stat')
      const a = await this.run(true, async s => await this.req<Attrs>(s, 'stat', (sftp, cb) => follow ? sftp.stat(full, cb) : sftp.lstat(full, cb)))
      return toStat(a)
    } catch (err) {
      return statusOf(err) === STATUS.NO_SUCH_FILE ? null : undefined
    }
  }

  /** ENOENT, or ENOTDIR when the nearest existing ancestor of `p` is not a directory (as Linux path lookup says). */
  private async whyMissingBelow (p: string): Promise<string> {
    for (let q = parentOf(p); q !== '/'; q = parentOf(q)) {
      if (this.isKnownDir(q)) return 'ENOENT'
      const s = await this.probe(q, true)
      if (s === null) continue
      if (s === undefined) return 'ENOENT'
      return s.kind === 'dir' ? 'ENOENT' : 'ENOTDIR'
    }
    return 'ENOENT'
  }

  private async noSpace (): Promise<boolean> {
    if (!this.capabilities.statfs) return false
    try {
      return (await this.statfs('/')).bavail === 0
    } catch {
      return false
    }
  }

  /** NO_SUCH_FILE: ENOENT, or ENOTDIR where a path names a non-directory. */
  private async whyMissing (op: string, p: string, other?: string): Promise<string> {
    switch (op) {
      case 'read': case 'write': case 'ftruncate': case 'fsync': case 'close': case 'fsetstat':
        return 'EBADF'
      case 'list': {
        const s = await this.probe(p, true)
        if (s && s.kind !== 'dir') return 'ENOTDIR'
        break
      }
      case 'rmdir': {
        const s = await this.probe(p)
        if (s && s.kind !== 'dir') return 'ENOTDIR'
        break
      }
      case 'rename': {
        const a = await this.probe(p)
        if (!a) break
        const b = await this.probe(other!)
        if (a.kind === 'dir' && b && b.kind !== 'dir') return 'ENOTDIR'
        return await this.whyMissingBelow(other!)
      }
      case 'link': {
        const a = await this.probe(other!)
        if (!a) return await this.whyMissingBelow(other!)
        return await this.whyMissingBelow(p)
      }
    }
    return await this.whyMissingBelow(p)
  }

  /** FAILURE: OpenSSH's catch-all; the state of the names involved says which errno it was. */
  private async whyFailed (op: string, p: string, other?: string): Promise<string> {
    switch (op) {
      case 'mkdir': case 'symlink':
        return (await this.probe(p)) ? 'EEXIST' : (await this.noSpace()) ? 'ENOSPC' : 'EIO'
      case 'link': {
        if ((await this.probe(other!))?.kind === 'dir') return 'EPERM'
        return (await this.probe(p)) ? 'EEXIST' : 'EIO'
      }
      case 'rmdir': {
        const s = await this.probe(p)
        return s?.kind === 'dir' ? 'ENOTEMPTY' : s ? 'ENOTDIR' : 'EIO'
      }
      case 'remove':
        return (await this.probe(p))?.kind === 'dir' ? 'EISDIR' : 'EIO'
      case 'rename': {
        if (other!.startsWith(p + '/')) return 'EINVAL'
        const [a, b] = [await this.probe(p), await this.probe(other!)]
        if (a && b) {
          if (a.kind !== 'dir' && b.kind === 'dir') return 'EISDIR'
          if (a.kind === 'dir' && b.kind !== 'dir') return 'ENOTDIR'
          if (a.kind === 'dir') return 'ENOTEMPTY'
          if (!this.capabilities.atomicRename) return 'EEXIST'
        }
        return 'EIO'
      }
      case 'open': case 'read': case 'truncate': {
        const s = await this.probe(p)
        if (s?.kind === 'dir') return 'EISDIR'
        if (s && op === 'open') return 'EEXIST'
        return (await this.noSpace()) ? 'ENOSPC' : 'EIO'
      }
      case 'write': case 'ftruncate': case 'fsetstat': case 'fsync': case 'close':
        return (await this.noSpace()) ? 'ENOSPC' : 'EIO'
      case 'chmod': case 'chown': case 'utimens':
        return (await this.probe(p))?.kind === 'symlink' ? 'ENOTSUP' : 'EIO'
    }
    return 'EIO'
  }

  /**
   * True when the server's form of a path (the root joined in front) reaches PATH_MAX: the server then refuses it
   * with ENAMETOOLONG, which OpenSSH sends as BAD_MESSAGE, like EINVAL. A path through the mount may be longer
   * than what reaches the kernel in one call (an application that works from a deep current directory).
   */
  private pathTooLong (...paths: Array<string | undefined>): boolean {
    const root = this.root === '/' ? 0 : Buffer.byteLength(this.root)
    return paths.some(q => q !== undefined && root + Buffer.byteLength(q) >= PATH_MAX)
  }

  /** Turns any failure of `op` on `p` (and `other`: rename's target, link's existing name) into an errno error. */
  async fail (op: string, p: string, err: unknown, other?: string): Promise<Error> {
    const code0 = (err as { code?: unknown } | null)?.code
    if (typeof code0 === 'string' && (err as { errno?: unknown }).errno !== undefined) return err as Error // already ours
    if (isTransportError(err)) {
      if (err.kind === 'timeout') this.stats.timeouts++
      // A request unanswered: ETIMEDOUT; no connection: what the last attempt met (ECONNREFUSED, ETIMEDOUT…). Both
      // say the server did not answer (the core stops waiting for it: src/vfs/health.ts). A connection lost under a
      // request, a refused login or host key: EIO (the pool reconnects, or the answer was a refusal).
      const code = err.kind === 'timeout' ? 'ETIMEDOUT' : err.kind === 'noconn' && !err.fatal ? (err.code ?? 'ENOTCONN') : 'EIO'
      const why = err.kind === 'lost' ? `${err.message}; the outcome is unknown` : err.message
      return this.error(code, op, p, why)
    }
    const status = statusOf(err)
    let code: string
    switch (status) {
      case STATUS.NO_SUCH_FILE: code = await this.whyMissing(op, p, other); break
      case STATUS.PERMISSION_DENIED: code = op === 'chmod' || op === 'chown' || op === 'utimens' ? 'EPERM' : 'EACCES'; break
      case STATUS.FAILURE: code = await this.whyFailed(op, p, other); break
      case STATUS.BAD_MESSAGE: code = nameTooLong(p, other) || this.pathTooLong(p, other) ? 'ENAMETOOLONG' : 'EINVAL'; break
      case STATUS.OP_UNSUPPORTED: code = op === 'link' || op === 'symlink' ? 'EPERM' : 'ENOTSUP'; break
      default: code = 'EIO'
    }
    const detail = status === undefined ? `: ${(err as Error)?.message ?? String(err)}` : ''
    return this.error(code, op, p, (MESSAGES[code] ?? code) + detail)
  }

  // ---- attributes and listing --------------------------------------------------------------------------------------

  /** The health probe (src/vfs/health.ts): a stat of the root, on any live connection (reconnecting if none). */
  async ping (): Promise<void> {
    try {
      await this.run(true, async s => await this.req(s, 'ping', (sftp, cb) => sftp.stat(this.root, cb)))
    } catch (err) {
      throw await this.fail('ping', '/', err)
    }
  }

  async stat (p: string): Promise<Stat> {
    const full = this.absPath(p, 'stat')
    await this.drainPath(p)
    const cached = this.listed.get(p)
    if (cached !== undefined) {
      if (cached.until > Date.now()) return { ...cached.st }
      this.listed.delete(p)
    }
    // The root itself is followed, so a root that is a symlink to a directory serves that directory.
    const a = await this.one<Attrs>('stat', p, true, (sftp, cb) => p === '/' ? sftp.stat(full, cb) : sftp.lstat(full, cb))
    const st = toStat(a)
    if (p !== '/') this.markDir(parentOf(p))
    if (st.kind === 'dir') this.markDir(p)
    else if (st.kind === 'file' && this.multiLinked.has(p)) st.nlink = await this.nlinkOf(p)
    return st
  }

  /** A file's link count from its parent's listing (long names carry it); 1 when it cannot be had. */
  private async nlinkOf (p: string): Promise<number> {
    try {
      const entries = await this.readDir(parentOf(p))
      const e = entries.find(x => x.filename === baseOf(p))
      const n = nlinkFromLongname(e?.longname) ?? 1
      this.noteLinks(p, n)
      return n
    } catch {
      return 1
    }
  }

  private async readDir (p: string): Promise<Array<{ filename: string, longname: string, attrs: Attrs }>> {
    const full = this.absPath(p, 'list')
    return await this.run(true, async s => {
      const h = await this.req<Buffer>(s, 'opendir', (sftp, cb) => sftp.opendir(full, cb))
      const out: Array<{ filename: string, longname: string, attrs: Attrs }> = []
      try {
        for (;;) {
          let batch: Array<{ filename: string, longname: string, attrs: Attrs }> | false
          try {
            batch = await this.req(s, 'readdir', (sftp, cb) => sftp.readdir(h, cb))
          } catch (err) {
            if (statusOf(err) === STATUS.EOF) break
            throw err
          }
          if (!Array.isArray(batch) || batch.length === 0) break
          for (const e of batch) if (e.filename !== '.' && e.filename !== '..') out.push(e)
        }
      } finally {
        if (s.alive) this.req(s, 'close', (sftp, cb) => sftp.close(h, cb)).catch(() => {})
      }
      return out
    })
  }

  async list (p: string): Promise<DirEntry[]> {
    await this.drainPath(p, 'children')
    let entries
    const began = this.touchSeq
    this.listingsInFlight++
    try {
      entries = await this.readDir(p)
    } catch (err) {
      throw await this.fail('list', p, err)
    } finally {
      this.listingsInFlight--
    }
    // NB: a name changed through us while the listing was in flight may be listed as it was before the change.
    const changed = (child: string): boolean => this.treeTouchSeq > began || (this.touchedDuringListing.get(child) ?? -1) > began
    this.markDir(p)
    const base = p === '/' ? '' : p
    const until = Date.now() + this.listingTtlMs
    if (this.listingTtlMs > 0 && this.listed.size + entries.length > MEMORY_MAX * 4) this.listed.clear()
    // NB: ssh2 decodes names as UTF-8; a name that is not becomes U+FFFD and could not be addressed (or two
    // such names would show as one): they are left out.
    // A whole-file upload in progress (write(): a temporary file renamed over the target) is not a file of the tree.
    const out = entries.filter(e => !e.filename.includes('\uFFFD') && !UPLOAD_TEMP.test(e.filename)).map(e => {
      const nlink = nlinkFromLongname(e.longname)
      const st = toStat(e.attrs, nlink)
      const child = `${base}/${e.filename}`
      if (this.listingTtlMs > 0 && !this.hasOpenHandle(child) && !changed(child)) this.listed.set(child, { st: { ...st }, until })
      if (st.kind === 'dir') this.markDir(child)
      else if (st.kind === 'file') this.noteLinks(child, nlink)
      return { name: e.filename, stat: st }
    })
    if (this.listingsInFlight === 0) this.touchedDuringListing.clear()
    return out
  }

  async statfs (p: string): Promise<StatFs> {
    const full = this.absPath(p, 'statfs')
    const s = await this.one<Record<string, number | bigint>>('statfs', p, true, (sftp, cb) => sftp.ext_openssh_statvfs(full, cb))
    const n = (k: string): number => Number(s[k] ?? 0)
    return {
      bsize: n('f_bsize'),
      frsize: n('f_frsize') || n('f_bsize'),
      blocks: n('f_blocks'),
      bfree: n('f_bfree'),
      bavail: n('f_bavail'),
      files: n('f_files'),
      ffree: n('f_ffree'),
      favail: n('f_favail'),
      namemax: n('f_namemax') || NAME_MAX
    }
  }

  // ---- data ----------------------------------------------------------------------------------------------------------

  async open (p: string, flags: OpenFlags, mode: number, owner?: Owner): Promise<SftpFileHandle> {
    if (flags.create && !flags.exclusive && owner !== undefined && this.login === 'root') {
      // Only a file this call creates gets the caller as owner: create it exclusively, else open what is there.
      for (;;) {
        try {
          return await this.open(p, { ...flags, exclusive: true }, mode, owner)
        } catch (err) {
          if ((err as { code?: string }).code !== 'EEXIST') throw err
        }
        try {
          return await this.open(p, { ...flags, create: false }, mode)
        } catch (err) {
          if ((err as { code?: string }).code !== 'ENOENT') throw err
        }
      }
    }
    const full = this.absPath(p, 'open')
    if (p === '/' && flags.write) throw this.error('EISDIR', 'open', p, MESSAGES.EISDIR)
    await this.drainPath(p)
    const pflags = pflagsOf(flags)
    const attrs = flags.create ? { mode: mode & 0o7777 } : {}
    let bound: [Session, Buffer]
    try {
      // An exclusive create is not repeated after a lost answer: the second try would see the first one's file.
      bound = await this.run(!flags.exclusive, async s => [s, await this.req<Buffer>(s, 'open', (sftp, cb) => sftp.open(full, pflags, attrs, cb))])
    } catch (err) {
      throw await this.fail('open', p, err)
    }
    const fh = new SftpFileHandle(this, p, flags, bound[0], bound[1])
    this.handles.add(fh)
    this.touched(p)
    if (flags.create && flags.exclusive) {
      try {
        await this.giveTo(p, owner)
      } catch (err) {
        await fh.close().catch(() => {})
        throw err
      }
    }
    return fh
  }

  async read (p: string, offset: number, length: number): Promise<Buffer> {
    const h = await this.open(p, { read: true, write: false, create: false, exclusive: false, truncate: false, append: false }, 0)
    try {
      return await h.read(offset, length)
    } finally {
      await h.close().catch(() => {})
    }
  }

  /** Another client changed `p` (and, with `tree`, what is below it): forget what we remember, as for our own changes. */
  invalidate (p: string, tree: boolean): void {
    this.touched(p, tree)
  }

  /** Whole-object write: a temp file beside the target, written pipelined, attributes set, fsync'd, renamed over it. */
  async write (p: string, source: WriteSource, attrs: WriteAttrs = {}): Promise<void> {
    if (p === '/') throw this.error('EISDIR', 'write', p, MESSAGES.EISDIR)
    this.absPath(p, 'write')
    const old = await this.probe(p)
    if (old?.kind === 'dir') throw this.error('EISDIR', 'write', p, MESSAGES.EISDIR)
    const keep = old?.kind === 'file' ? old : undefined
    const mode = attrs.mode ?? keep?.mode
    const dir = parentOf(p)
    const tmp = `${dir === '/' ? '' : dir}/.fsx-${randomBytes(6).toString('hex')}.tmp` // matches UPLOAD_TEMP
    const h = await this.open(tmp, { read: false, write: true, create: true, exclusive: true, truncate: false, append: false }, (mode ?? 0o666) & 0o7777)
    let renamed = false
    try {
      await this.upload(h, source)
      const set: { mode?: number, atime?: number, mtime?: number } = {}
      // Set explicitly: the server's umask applied to the create mode.
      if (mode !== undefined) set.mode = mode & 0o7777
      if (attrs.mtimeMs !== undefined) {
        set.atime = Math.floor(Date.now() / 1000)
        set.mtime = Math.floor(attrs.mtimeMs / 1000)
      }
      if (Object.keys(set).length > 0) await h.setAttrs(set)
      const uid = attrs.uid ?? keep?.uid
      const gid = attrs.gid ?? keep?.gid
      if (uid !== undefined && gid !== undefined) {
        // Best effort, like `cp -p`: only root may give a file away.
        await h.setAttrs({ uid, gid }).catch((err: { code?: string }) => {
          if (err.code !== 'EPERM' && err.code !== 'EACCES') throw err
        })
      }
      await h.sync()
      await h.close()
      this.touched(p)
      try {
        await this.renameRaw(tmp, p)
      } finally {
        this.touched(p)
      }
      renamed = true
      this.detachAt(p)
      this.noteLinks(p, 1)
    } finally {
      if (!renamed) {
        await h.close().catch(() => {})
        await this.remove(tmp).catch(() => {})
      }
    }
  }

  private async upload (h: SftpFileHandle, source: WriteSource): Promise<void> {
    if (Buffer.isBuffer(source)) {
      await h.write(0, source)
      return
    }
    const fd = await openLocal(source.file, 'r')
    try {
      const inflight: Array<Promise<number>> = []
      for (let pos = 0; pos < source.size; pos += UPLOAD_BLOCK_BYTES) {
        const buf = Buffer.allocUnsafe(Math.min(UPLOAD_BLOCK_BYTES, source.size - pos))
        const { bytesRead } = await fd.read(buf, 0, buf.length, pos)
        if (bytesRead === 0) break
        const w = h.write(pos, bytesRead === buf.length ? buf : buf.subarray(0, bytesRead))
        w.catch(() => {}) // awaited below; this only keeps an early failure from being "unhandled" meanwhile
        inflight.push(w)
        if (inflight.length >= UPLOAD_BLOCKS_IN_FLIGHT) await inflight.shift()
      }
      await Promise.all(inflight)
    } finally {
      await fd.close()
    }
  }

  async truncate (p: string, size: number): Promise<void> {
    const full = this.absPath(p, 'truncate')
    await this.drainPath(p)
    this.touched(p)
    try {
      await this.one<void>('truncate', p, true, (sftp, cb) => sftp.setstat(full, { size }, cb))
    } finally {
      this.touched(p)
    }
  }

  // ---- namespace ---------------------------------------------------------------------------------------------------

  async remove (p: string): Promise<void> {
    const full = this.absPath(p, 'remove')
    if (p === '/') throw this.error('EISDIR', 'remove', p, MESSAGES.EISDIR)
    await this.drainPath(p)
    this.touched(p)
    try {
      await this.one<void>('remove', p, false, (sftp, cb) => sftp.unlink(full, cb))
    } finally {
      this.touched(p)
    }
    this.detachAt(p)
    this.multiLinked.delete(p)
  }

  async mkdir (p: string, mode: number, owner?: Owner): Promise<void> {
    const full = this.absPath(p, 'mkdir')
    if (p === '/') throw this.error('EEXIST', 'mkdir', p, MESSAGES.EEXIST)
    await this.one<void>('mkdir', p, false, (sftp, cb) => sftp.mkdir(full, { mode: mode & 0o7777 }, cb))
    this.markDir(p)
    await this.giveTo(p, owner)
  }

  async rmdir (p: string): Promise<void> {
    const full = this.absPath(p, 'rmdir')
    if (p === '/') throw this.error('EBUSY', 'rmdir', p, MESSAGES.EBUSY)
    this.touched(p, true)
    try {
      await this.one<void>('rmdir', p, false, (sftp, cb) => sftp.rmdir(full, cb))
    } finally {
      this.touched(p, true)
    }
  }

  private async renameRaw (from: string, to: string): Promise<void> {
    const a = this.absPath(from, 'rename')
    const b = this.absPath(to, 'rename')
    if (this.capabilities.atomicRename) {
      await this.one<void>('rename', from, false, (sftp, cb) => sftp.ext_openssh_rename(a, b, cb), to)
      return
    }
    // Plain SFTP rename refuses an existing target: replace it the non-atomic way.
    const target = await this.probe(to)
    if (target && target.kind !== 'dir') await this.remove(to)
    await this.one<void>('rename', from, false, (sftp, cb) => sftp.rename(a, b, cb), to)
  }

  async rename (from: string, to: string): Promise<void> {
    this.absPath(from, 'rename')
    this.absPath(to, 'rename')
    if (from === '/' || to === '/') throw this.error('EBUSY', 'rename', from, MESSAGES.EBUSY)
    await Promise.all([this.drainPath(from, 'subtree'), this.drainPath(to, 'subtree')])
    this.touched(from, true)
    this.touched(to, true)
    try {
      await this.renameRaw(from, to)
    } finally {
      // Again once answered: a listing or stat that overlapped the rename may have seen either side of it.
      this.touched(from, true)
      this.touched(to, true)
    }
    if (from === to) return
    // Handles of the file that was at `to` (replaced) keep reaching it, but must never reopen `to`: detached first,
    // then the handles under `from` take their new paths.
    this.detachAt(to)
    const moved = (q: string): string | undefined =>
      q === from ? to : q.startsWith(from + '/') ? to + q.slice(from.length) : undefined
    for (const h of this.handles) {
      const q = h.livePath
      const np = q === undefined ? undefined : moved(q)
      if (np !== undefined) h.path = np
    }
    for (const q of [...this.multiLinked]) {
      const np = moved(q)
      if (np !== undefined) {
        this.multiLinked.delete(q)
        this.multiLinked.add(np)
      }
    }
  }

  async symlink (target: string, p: string, owner?: Owner): Promise<void> {
    const full = this.absPath(p, 'symlink')
    if (typeof target !== 'string' || target === '' || target.includes('\0')) throw this.error('EINVAL', 'symlink', p, 'bad target')
    if (p === '/') throw this.error('EEXIST', 'symlink', p, MESSAGES.EEXIST)
    // The target is stored verbatim, never resolved (ssh2 handles OpenSSH's swapped SYMLINK arguments).
    await this.one<void>('symlink', p, false, (sftp, cb) => sftp.symlink(target, full, cb))
    // Without lsetstat a setstat would follow the new link: the link keeps the login's ownership then.
    if (this.useLsetstat) await this.giveTo(p, owner)
  }

  async readlink (p: string): Promise<string> {
    const full = this.absPath(p, 'readlink')
    return await this.one<string>('readlink', p, true, (sftp, cb) => sftp.readlink(full, cb))
  }

  async link (existing: string, p: string): Promise<void> {
    const a = this.absPath(existing, 'link')
    const b = this.absPath(p, 'link')
    if (p === '/') throw this.error('EEXIST', 'link', p, MESSAGES.EEXIST)
    await this.drainPath(existing)
    this.touched(existing)
    try {
      await this.one<void>('link', p, false, (sftp, cb) => sftp.ext_openssh_hardlink(a, b, cb), existing)
    } finally {
      this.touched(existing)
    }
    this.noteLinks(existing, 2)
    this.noteLinks(p, 2)
  }

  async chmod (p: string, mode: number): Promise<void> {
    const full = this.absPath(p, 'chmod')
    // setstat follows a symlink, like chmod(2) (the kernel never asks to chmod a link itself). lsetstat would need
    // /proc on the server, which a chrooted SFTP account lacks.
    await this.drainPath(p)
    this.touched(p)
    try {
      await this.one<void>('chmod', p, true, (sftp, cb) => sftp.setstat(full, { mode: mode & 0o7777 }, cb))
    } finally {
      this.touched(p)
    }
  }

  /** setstat that does not follow a symlink at the last component where the server offers lsetstat. */
  private async setNoFollow (op: string, p: string, attrs: Attrs): Promise<void> {
    const full = this.absPath(p, op)
    // NB: a write answered after a utimens would move mtime again (cp -p, tar): the writes go first.
    await this.drainPath(p)
    this.touched(p)
    try {
      await this.one<void>(op, p, true, (sftp, cb) => this.useLsetstat ? sftp.ext_openssh_lsetstat(full, attrs, cb) : sftp.setstat(full, attrs, cb))
    } finally {
      this.touched(p)
    }
  }

  async chown (p: string, uid: number, gid: number): Promise<void> {
    const keep = (n: number): boolean => n < 0 || n === 0xffffffff
    if (keep(uid) && keep(gid)) return
    let u = uid
    let g = gid
    if (keep(u) || keep(g)) {
      const st = await this.stat(p)
      if (keep(u)) u = st.uid
      if (keep(g)) g = st.gid
    }
    await this.setNoFollow('chown', p, { uid: u, gid: g })
  }

  async utimens (p: string, atimeMs: number | undefined, mtimeMs: number | undefined): Promise<void> {
    if (atimeMs === undefined && mtimeMs === undefined) return
    let a = atimeMs
    let m = mtimeMs
    // SFTP sets both times or neither: the side left alone is read and written back.
    if (a === undefined || m === undefined) {
      const st = await this.stat(p)
      a ??= st.atimeMs
      m ??= st.mtimeMs
    }
    await this.setNoFollow('utimens', p, { atime: Math.floor(a / 1000), mtime: Math.floor(m / 1000) })
  }

  counters (): Record<string, number> {
    return { ...this.stats, ...this.pool.stats }
  }

  levels (): Record<string, number> {
    return { connections: this.pool.live, openFiles: this.handles.size }
  }

  async close (): Promise<void> {
    for (const h of [...this.handles]) await h.close().catch(() => {})
    await this.pool.close()
  }
}

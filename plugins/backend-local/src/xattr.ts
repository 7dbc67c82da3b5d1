/**
 * Extended attributes for the local backend. Node has no xattr API; two ways in, picked once at create time:
 *
 * - `native`: @napi-rs/xattr (a declared dependency; prebuilt binaries for the common platforms), loaded with a
 *   dynamic import so a platform without a binary still loads this plugin. Microseconds per call.
 * - `tools`: `getfattr` / `setfattr` from the `attr` package (Debian/Ubuntu: `apt install attr`), spawned
 *   asynchronously with argv, never a shell. Milliseconds per call (a process each): the fallback.
 * Neither → the backend announces `capabilities.xattrs: false`.
 *
 * Invariants:
 * - The last component is never followed: the native module calls l*xattr (Rust `xattr` crate), the tools get
 *   `-h`. user.* on a symlink is EPERM from the kernel. The caller reached the parent without following symlinks (host-tree.ts).
 * - Only the `user.`, `trusted.` and `security.` namespaces pass (ENOTSUP before any system call); list returns
 *   only names in them.
 * - Errors carry errno names: "No such attribute" is ENODATA (Linux's ENOATTR); a missing file ENOENT.
 * - XATTR_CREATE / XATTR_REPLACE are emulated with a get first (neither way in has the flags), so they are not
 *   atomic against a concurrent writer on the host.
 */
import { execFile } from 'node:child_process'
import { lstat } from 'node:fs/promises'
import { constants as osConstants } from 'node:os'
import type { BackendKit } from '@fsx/sdk'

export const XATTR_CREATE = 1
export const XATTR_REPLACE = 2

/** Which implementation serves xattrs. */
export type XattrMode = 'native' | 'tools'

const NAMESPACES = /^(user|trusted|security)\./
/** Linux XATTR_NAME_MAX. */
const NAME_MAX = 255
/** Linux XATTR_SIZE_MAX (64 KiB): the most one value can hold. */
const VALUE_MAX = 65536

/** What the backend needs; `host` is the host path, `path` the backend path (for messages). */
export interface XattrOps {
  readonly mode: XattrMode
  get(host: string, path: string, name: string): Promise<Buffer>
  set(host: string, path: string, name: string, value: Buffer, flags: number): Promise<void>
  list(host: string, path: string): Promise<string[]>
  remove(host: string, path: string, name: string): Promise<void>
}

/**
 * The best implementation available: `prefer` forces one (undefined when it is not available), default native,
 * then tools.
 */
export async function loadXattrs (kit: BackendKit, prefer?: XattrMode): Promise<XattrOps | undefined> {
  if (prefer !== 'tools') {
    const native = await loadNative()
    if (native !== undefined) return new NativeXattrs(kit, native)
    if (prefer === 'native') return undefined
  }
  return await toolsAvailable() ? new ToolXattrs(kit) : undefined
}

/** Name checks and flag emulation shared by both ways in. */
abstract class XattrBase implements XattrOps {
  abstract readonly mode: XattrMode
  constructor (protected readonly kit: BackendKit) {}

  abstract get (host: string, path: string, name: string): Promise<Buffer>
  abstract list (host: string, path: string): Promise<string[]>
  abstract remove (host: string, path: string, name: string): Promise<void>
  protected abstract put (host: string, path: string, name: string, value: Buffer): Promise<void>

  async set (host: string, path: string, name: string, value: Buffer, flags: number): Promise<void> {
    this.checkName(name, path, 'setxattr')
    if (value.length > VALUE_MAX) throw this.kit.fsxError('E2BIG', `setxattr ${path}: value longer than 64 KiB`, { path, op: 'setxattr' })
    if ((flags & (XATTR_CREATE | XATTR_REPLACE)) !== 0) {
      const exists = await this.get(host, path, name).then(() => true, (err: { code?: string }) => {
        if (err.code === 'ENODATA') return false
        throw err
      })
      if (exists && (flags & XATTR_CREATE) !== 0) throw this.kit.fsxError('EEXIST', `setxattr ${path}: ${name} exists`, { path, op: 'setxattr' })
      if (!exists && (flags & XATTR_REPLACE) !== 0) throw this.kit.fsxError('ENODATA', `setxattr ${path}: no attribute ${name}`, { path, op: 'setxattr' })
    }
    await this.put(host, path, name, value)
  }

  protected checkName (name: string, path: string, op: string): void {
    if (typeof name !== 'string' || name.includes('\0')) throw this.kit.fsxError('EINVAL', `${op} ${path}: bad attribute name`, { path, op })
    if (Buffer.byteLength(name) > NAME_MAX) throw this.kit.fsxError('ERANGE', `${op} ${path}: attribute name too long`, { path, op })
    if (!NAMESPACES.test(name)) {
      throw this.kit.fsxError('ENOTSUP', `${op} ${path}: only user., trusted. and security. attributes are supported`, { path, op })
    }
  }
}

// --- native: @napi-rs/xattr -------------------------------------------------------------------------------------

interface NativeModule {
  getAttribute(path: string, name: string): Promise<Buffer | null>
  setAttribute(path: string, name: string, value: Buffer): Promise<void>
  listAttributes(path: string): Promise<string[]>
  removeAttribute(path: string, name: string): Promise<void>
}

async function loadNative (): Promise<NativeModule | undefined> {
  try {
    const mod = await import('@napi-rs/xattr') as unknown as NativeModule & { default?: NativeModule }
    const native = mod.default ?? mod
    return typeof native.getAttribute === 'function' ? native : undefined
  } catch {
    return undefined // no binary for this platform, or not installed
  }
}

const ERRNO_NAMES = new Map(Object.entries(osConstants.errno as Record<string, number>).map(([name, n]) => [n, name]))

class NativeXattrs extends XattrBase {
  readonly mode = 'native'
  constructor (kit: BackendKit, private readonly native: NativeModule) { super(kit) }

  async get (host: string, path: string, name: string): Promise<Buffer> {
    this.checkName(name, path, 'getxattr')
    const value = await this.native.getAttribute(host, name)
    if (value !== null) return value
    // NB: the module returns null for every failure. Ask lstat why: its ENOENT/ENOTDIR/ELOOP/EACCES is the
    // answer; when the file is there, the attribute is not.
    await lstat(host)
    throw this.kit.fsxError('ENODATA', `getxattr ${path}: no attribute ${name}`, { path, op: 'getxattr' })
  }

  protected async put (host: string, path: string, name: string, value: Buffer): Promise<void> {
    await this.native.setAttribute(host, name, value).catch(err => { throw this.translate(err, path, 'setxattr') })
  }

  async list (host: string, path: string): Promise<string[]> {
    const names = await this.native.listAttributes(host).catch(err => { throw this.translate(err, path, 'listxattr') })
    return names.filter(n => NAMESPACES.test(n))
  }

  async remove (host: string, path: string, name: string): Promise<void> {
    this.checkName(name, path, 'removexattr')
    await this.native.removeAttribute(host, name).catch(err => { throw this.translate(err, path, 'removexattr') })
  }

  /** napi-rs errors read "No data available (os error 61)" with code "GenericFailure": recover the errno. */
  private translate (err: unknown, path: string, op: string): Error {
    const message = String((err as Error)?.message ?? err)
    const m = /\(os error (\d+)\)/.exec(message)
    const code = (m === null ? undefined : ERRNO_NAMES.get(Number(m[1]))) ?? 'EIO'
    return this.kit.fsxError(code, `${op} ${path}: ${message.replace(/\s*\(os error \d+\)/, '')}`, { path, op, cause: err })
  }
}

// --- tools: getfattr / setfattr ---------------------------------------------------------------------------------

/** Generous: getfattr of a 64 KiB value or a long list. */
const MAX_BUFFER = 4 * 1024 * 1024
/** The tools run with LC_ALL=C so their strerror text is English and maps back to an errno name. */
const toolEnv = (): NodeJS.ProcessEnv => ({ ...process.env, LC_ALL: 'C' })

/** glibc strerror text (LC_ALL=C) → errno name, for the codes xattr calls can produce. */
const STRERROR: Record<string, string> = {
  'No such attribute': 'ENODATA',
  'No data available': 'ENODATA',
  'No such file or directory': 'ENOENT',
  'Not a directory': 'ENOTDIR',
  'Permission denied': 'EACCES',
  'Operation not permitted': 'EPERM',
  'Operation not supported': 'ENOTSUP',
  'Too many levels of symbolic links': 'ELOOP',
  'File name too long': 'ENAMETOOLONG',
  'Numerical result out of range': 'ERANGE',
  'Argument list too long': 'E2BIG',
  'No space left on device': 'ENOSPC',
  'Disk quota exceeded': 'EDQUOT',
  'Read-only file system': 'EROFS',
  'Invalid argument': 'EINVAL',
  'File exists': 'EEXIST',
  'Input/output error': 'EIO'
}

async function toolsAvailable (): Promise<boolean> {
  return await new Promise(resolve => {
    execFile('setfattr', ['--version'], { env: toolEnv() }, err => resolve(err == null))
  })
}

/**
 * Values are read raw (`--only-values` writes the bytes as they are) and written as base64 (`0s…`), so a 64 KiB
 * value stays under the kernel's 128 KiB per-argument limit (hex would not). NB: `setfattr -v 0s` with an empty
 * payload silently sets nothing, so the empty value is written as `0x`.
 */
class ToolXattrs extends XattrBase {
  readonly mode = 'tools'

  async get (host: string, path: string, name: string): Promise<Buffer> {
    this.checkName(name, path, 'getxattr')
    return await this.run('getfattr', ['-h', '--only-values', '-n', name, '--', host], path, 'getxattr')
  }

  protected async put (host: string, path: string, name: string, value: Buffer): Promise<void> {
    const encoded = value.length === 0 ? '0x' : '0s' + value.toString('base64')
    await this.run('setfattr', ['-h', '-n', name, '-v', encoded, '--', host], path, 'setxattr')
  }

  async list (host: string, path: string): Promise<string[]> {
    const stdout = await this.run('getfattr', ['-h', '--absolute-names', '-m', NAMESPACES.source, '--', host], path, 'listxattr')
    const names: string[] = []
    for (const line of stdout.toString('latin1').split('\n')) {
      if (line === '' || line.startsWith('# ')) continue // blank and "# file: <path>" lines
      names.push(unquote(line))
    }
    return names
  }

  async remove (host: string, path: string, name: string): Promise<void> {
    this.checkName(name, path, 'removexattr')
    await this.run('setfattr', ['-h', '-x', name, '--', host], path, 'removexattr')
  }

  private async run (tool: string, args: string[], path: string, op: string): Promise<Buffer> {
    return await new Promise((resolve, reject) => {
      execFile(tool, args, { encoding: 'buffer', maxBuffer: MAX_BUFFER, env: toolEnv() }, (err, stdout, stderrBuf) => {
        if (err == null) return resolve(stdout)
        const spawnCode = (err as { code?: unknown }).code
        if (typeof spawnCode === 'string') { // the tool did not start (exit statuses are numbers)
          if (spawnCode === 'ENOENT') {
            return reject(this.kit.fsxError('ENOTSUP', `${op} ${path}: ${tool} not found (install the "attr" package)`, { path, op, cause: err }))
          }
          return reject(this.kit.fsxError(spawnCode, `${op} ${path}: cannot run ${tool} (${spawnCode})`, { path, op, cause: err }))
        }
        // "getfattr: /host/path: No such attribute": the strerror text is the last ": "-separated field.
        const stderr = stderrBuf.toString('utf8').trim()
        const lastLine = stderr.split('\n').pop() ?? ''
        const text = lastLine.slice(lastLine.lastIndexOf(': ') + 2)
        const code = STRERROR[text] ?? 'EIO'
        reject(this.kit.fsxError(code, `${op} ${path}: ${code === 'EIO' ? stderr || String(err) : text}`, { path, op, cause: err }))
      })
    })
  }
}

/** Undoes getfattr's quoting of names (backslash + three octal digits), byte-wise, then decodes UTF-8. */
function unquote (latin1: string): string {
  const bytes: number[] = []
  for (let i = 0; i < latin1.length; i++) {
    if (latin1[i] === '\\' && /^[0-7]{3}$/.test(latin1.slice(i + 1, i + 4))) {
      bytes.push(parseInt(latin1.slice(i + 1, i + 4), 8))
      i += 3
    } else {
      bytes.push(latin1.charCodeAt(i))
    }
  }
  return Buffer.from(bytes).toString('utf8')
}

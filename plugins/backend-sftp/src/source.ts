/**
 * Parses an SFTP source: `sftp://[user@]host[:port]/path`. Pure: no network, no file system.
 *
 * - The path is absolute on the server (`sftp://host/srv/data` serves /srv/data); `sftp://host/~/dir` (or `/~`) is
 *   relative to the login's home directory, resolved once connected. No path means the server's root.
 * - Percent escapes in the path and user are decoded (a literal "%" is written %25).
 * - A password in the URL is refused: it would show in `ps`, shell history and logs (use FSX_SFTP_PASSWORD).
 */
import type { SourceUrl } from '@fsx/sdk'

type MakeError = (code: string, message: string) => Error

/** An EINVAL error without the kit (`validate` is not handed one); same shape as the core's. */
export const plainError: MakeError = (code, message) => Object.assign(new Error(message), { code })

/** Where an SFTP source points. */
export interface SftpTarget {
  /** Login name from the URL; undefined means the local user name. */
  user?: string
  /** Host name or address, without IPv6 brackets. */
  host: string
  /** TCP port (default 22). */
  port: number
  /** Absolute path on the server, or, when `homeRelative`, the part after the home directory ("" or "/dir"). */
  path: string
  /** The path is relative to the login's home directory (`sftp://host/~/dir`). */
  homeRelative: boolean
}

/** Default SSH port. */
export const DEFAULT_PORT = 22

/** Collapses "//" and drops a trailing "/" (the root stays "/"). */
function tidy (p: string): string {
  const s = ('/' + p).replace(/\/+/g, '/')
  return s.length > 1 && s.endsWith('/') ? s.slice(0, -1) : s
}

/** Parses and checks an sftp: source. Throws EINVAL with one readable line for what it cannot serve. */
export function parseSftpSource (source: SourceUrl, makeError: MakeError = plainError): SftpTarget {
  const { url } = source
  if (url.protocol !== 'sftp:') throw makeError('EINVAL', `sftp source: unsupported scheme "${url.protocol.replace(/:$/, '')}" (use sftp://[user@]host[:port]/path)`)
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
  if (host === '') throw makeError('EINVAL', 'sftp source: no host given (use sftp://[user@]host[:port]/path)')
  if (url.password !== '') {
    throw makeError('EINVAL', 'sftp source: a password in the URL is not accepted (it shows in ps and logs); set FSX_SFTP_PASSWORD instead')
  }
  if (url.search !== '' || url.hash !== '') {
    throw makeError('EINVAL', 'sftp source: "?" and "#" start a query or fragment; write them in a path as %3F and %23')
  }
  const port = url.port === '' ? DEFAULT_PORT : Number(url.port)
  let user: string | undefined
  let path: string
  try {
    user = url.username === '' ? undefined : decodeURIComponent(url.username)
    path = decodeURIComponent(url.pathname)
  } catch {
    throw makeError('EINVAL', 'sftp source: the URL holds a bad percent escape')
  }
  if (path.includes('\0') || (user?.includes('\0') ?? false)) throw makeError('EINVAL', 'sftp source: the URL holds a NUL byte')
  path = tidy(path)
  if (path === '/~' || path.startsWith('/~/')) return { user, host, port, path: path === '/~' ? '' : path.slice(2), homeRelative: true }
  return { user, host, port, path, homeRelative: false }
}

/** `host` for known_hosts and messages: `host` on port 22, else `[host]:port` (OpenSSH's form). */
export function hostKeyName (host: string, port: number): string {
  return port === DEFAULT_PORT ? host : `[${host}]:${port}`
}

/** Secret-free description: `sftp://user@host:port/path` (port only when not 22; `/~/dir` kept as given). */
export function describeTarget (t: SftpTarget, user: string): string {
  const h = t.host.includes(':') ? `[${t.host}]` : t.host
  const port = t.port === DEFAULT_PORT ? '' : `:${t.port}`
  const path = t.homeRelative ? `/~${t.path}` : t.path
  return `sftp://${user}@${h}${port}${path}`
}

/**
 * The SFTP plugin's settings: rows for the core's options table (key sftpX ⇔ flag --sftp-x ⇔ env FSX_SFTP_X),
 * resolved by the core (default < preset < config < env < flag) and handed to `create()` in base units
 * (durations in ms). `sftpSettings()` turns those values into the typed settings the backend reads.
 * Secrets (passphrase, password) are marked `secret`: `fsx tune` shows "(set)", and nothing here prints them.
 */
import os from 'node:os'
import path from 'node:path'
import type { OptionSpec } from '../../../src/config/options.js'

/** Default known_hosts file, as OpenSSH's. */
export const DEFAULT_KNOWN_HOSTS = '~/.ssh/known_hosts'
/** Default per-request deadline: long enough for a slow fsync on a busy server, short enough not to feel hung. */
export const DEFAULT_TIMEOUT_MS = 20_000
/** Default parallel SSH connections: one sftp-server process each, so a slow request does not block the others. */
export const DEFAULT_CONNECTIONS = 4
/** Most connections accepted; more only costs server processes. */
export const MAX_CONNECTIONS = 16
/** Default keepalive interval; three unanswered keepalives (15 s) declare the link dead. */
export const DEFAULT_KEEPALIVE_MS = 5_000
/**
 * Shortest request deadline and keepalive interval accepted: below 100 ms a busy server's (or a loaded client's)
 * scheduling delay alone would count as a dead link.
 */
export const MIN_TIMEOUT_MS = 100
/** Longest request deadline and keepalive interval accepted: past 10 minutes a stuck request only looks like a hang. */
export const MAX_TIMEOUT_MS = 600_000

export const SFTP_OPTIONS: OptionSpec[] = [
  {
    key: 'sftpKey', kind: 'string', default: undefined, scope: 'sftp',
    help: 'Private key file for SSH public-key login (tried before ssh-agent, ~/.ssh/id_* and the password).'
  },
  {
    key: 'sftpKeyPassphrase', kind: 'string', default: undefined, scope: 'sftp', secret: true,
    help: 'Passphrase of the private key (prefer the environment: flags show in ps).'
  },
  {
    key: 'sftpPassword', kind: 'string', default: undefined, scope: 'sftp', secret: true,
    help: 'Password for SSH password login, tried after keys (prefer the environment: flags show in ps).'
  },
  {
    key: 'sftpKnownHosts', kind: 'string', default: DEFAULT_KNOWN_HOSTS, scope: 'sftp',
    help: 'known_hosts file the server\'s host key is checked against (plain, hashed and [host]:port entries).',
    details: 'An unknown or changed host key is refused with its SHA256 fingerprint. With the default file, ' +
      '/etc/ssh/ssh_known_hosts is consulted too.'
  },
  {
    key: 'sftpInsecureHostKey', kind: 'boolean', default: false, scope: 'sftp',
    help: 'Accept any host key without checking (insecure: anyone on the path can impersonate the server).'
  },
  {
    key: 'sftpTimeout', kind: 'duration', default: DEFAULT_TIMEOUT_MS, scope: 'sftp', min: MIN_TIMEOUT_MS, max: MAX_TIMEOUT_MS,
    help: 'Deadline of one SFTP request (and of the wait for a connection); a server that does not answer in time counts as failing.',
    details: 'A request unanswered this long marks its connection dead; it is re-established with backoff and ' +
      'open files are reopened on it. A refused connection fails at once. While the server is failing fsx answers ' +
      'from its caches, fails what is not cached with EIO at once, and a background probe finds out when it answers again.'
  },
  {
    key: 'sftpConnections', kind: 'count', default: DEFAULT_CONNECTIONS, scope: 'sftp', min: 1, max: MAX_CONNECTIONS,
    help: 'Parallel SSH connections; open files and requests are spread over them.'
  },
  {
    key: 'sftpKeepalive', kind: 'duration', default: DEFAULT_KEEPALIVE_MS, scope: 'sftp', min: MIN_TIMEOUT_MS, max: MAX_TIMEOUT_MS, zeroMeansOff: true,
    help: 'Interval of SSH keepalives; three unanswered ones close a dead link (0 disables).'
  }
]

/** Typed SFTP settings, base units. */
export interface SftpSettings {
  keyFile?: string
  keyPassphrase?: string
  password?: string
  knownHostsFile: string
  /** True when `knownHostsFile` is the default (then the system-wide file is read too). */
  knownHostsDefault: boolean
  insecureHostKey: boolean
  timeoutMs: number
  connections: number
  keepaliveMs: number
  /** How long attributes from a directory listing answer stat (0 with consistency=strong). */
  listingTtlMs: number
  /** Writes return once sent, not answered (off with consistency=strong); see file-handle.ts. */
  writeBehind: boolean
}

/** How long attributes that came with a listing are trusted: long enough for `ls -l`/`find`, short for others' changes. */
export const LISTING_TTL_MS = 1000

function expandHome (p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p
}

function str (v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined
}

function num (v: unknown, dflt: number): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : dflt
}

/** Reads the resolved option values (keys of SFTP_OPTIONS); missing ones take the table's defaults. */
export function sftpSettings (values: Record<string, unknown>): SftpSettings {
  const known = str(values.sftpKnownHosts) ?? DEFAULT_KNOWN_HOSTS
  return {
    keyFile: str(values.sftpKey) === undefined ? undefined : expandHome(str(values.sftpKey)!),
    keyPassphrase: str(values.sftpKeyPassphrase),
    password: str(values.sftpPassword),
    knownHostsFile: expandHome(known),
    knownHostsDefault: known === DEFAULT_KNOWN_HOSTS,
    insecureHostKey: values.sftpInsecureHostKey === true,
    timeoutMs: Math.max(100, num(values.sftpTimeout, DEFAULT_TIMEOUT_MS)),
    connections: Math.min(MAX_CONNECTIONS, Math.max(1, Math.floor(num(values.sftpConnections, DEFAULT_CONNECTIONS)))),
    keepaliveMs: num(values.sftpKeepalive, DEFAULT_KEEPALIVE_MS),
    listingTtlMs: values.consistency === 'strong' ? 0 : LISTING_TTL_MS,
    writeBehind: values.consistency !== 'strong'
  }
}

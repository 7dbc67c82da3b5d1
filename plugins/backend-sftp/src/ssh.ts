/**
 * Opening one SSH connection + SFTP channel: the SSH libraries (loaded on first use, so `fsx --help` never pays for
 * them), login methods, host key verification and the translation of connection failures into one readable line.
 *
 * Login methods, in order: the key file (sftpKey), the ssh-agent (SSH_AUTH_SOCK), the default identities
 * ~/.ssh/id_ed25519, id_ecdsa, id_rsa (those that load without a passphrase, or with sftpKeyPassphrase), then the
 * password. No secret is ever put in a message: key files are named by path, passwords and passphrases never.
 */
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import type { AuthMethod, ConnectConfig } from 'ssh2'
import { Session, TransportError } from './connection.js'
import { checkHostKey, fingerprint, hostKeyAlgorithms, keyTypeLabel, keyTypeOf, parseKnownHosts, type KnownHostEntry } from './known-hosts.js'
import type { SftpSettings } from './options.js'
import { hostKeyName } from './source.js'

/** The parts of ssh2 / ssh2-sftp-client used here, loaded lazily. */
export interface SshModules {
  SftpClient: new (name?: string, callbacks?: Record<string, (...a: any[]) => void>) => {
    client: any
    connect(config: ConnectConfig): Promise<any>
  }
  parseKey: (data: Buffer | string, passphrase?: string) => unknown
}

let loaded: Promise<SshModules> | undefined

export async function loadSsh (): Promise<SshModules> {
  loaded ??= (async () => {
    const sc: any = await import('ssh2-sftp-client')
    const ssh2: any = await import('ssh2')
    const lib = ssh2.default ?? ssh2
    return { SftpClient: sc.default ?? sc, parseKey: lib.utils.parseKey }
  })()
  return await loaded
}

type ErrorFactory = (code: string, message: string) => Error

/** Everything needed to open sessions to one server, prepared once by `prepareLogin`. */
export interface Login {
  host: string
  port: number
  username: string
  /** ssh2 authHandler entries, in the order tried. */
  auth: AuthMethod[]
  /** What will be tried, for messages: "key /path, agent, password". */
  authSummary: string
  knownHosts: KnownHostEntry[]
  settings: SftpSettings
}

function isAuthMethod (x: unknown): x is AuthMethod {
  return typeof x === 'object' && x !== null
}

/** Reads the key file and known_hosts, builds the login methods. Throws one readable line (code EBACKEND). */
export async function prepareLogin (ssh: SshModules, host: string, port: number, username: string, settings: SftpSettings, makeError: ErrorFactory): Promise<Login> {
  const auth: AuthMethod[] = []
  const summary: string[] = []
  if (settings.keyFile !== undefined) {
    let data: Buffer
    try {
      data = await readFile(settings.keyFile)
    } catch (err) {
      throw makeError('EBACKEND', `sftp: cannot read the key file ${settings.keyFile} (${(err as { code?: string }).code ?? String(err)})`)
    }
    const parsed = ssh.parseKey(data, settings.keyPassphrase)
    if (parsed instanceof Error) {
      const encrypted = /encrypted|passphrase/i.test(parsed.message)
      throw makeError('EBACKEND', encrypted
        ? `sftp: the key file ${settings.keyFile} is encrypted: set its passphrase in FSX_SFTP_KEY_PASSPHRASE`
        : `sftp: the key file ${settings.keyFile} is not a usable private key (${parsed.message})`)
    }
    auth.push({ type: 'publickey', username, key: data, passphrase: settings.keyPassphrase } as AuthMethod)
    summary.push(`key ${settings.keyFile}`)
  }
  const agent = process.env.SSH_AUTH_SOCK
  if (agent !== undefined && agent !== '' && existsSync(agent)) {
    auth.push({ type: 'agent', username, agent } as AuthMethod)
    summary.push('ssh-agent')
  }
  if (settings.keyFile === undefined) {
    for (const name of ['id_ed25519', 'id_ecdsa', 'id_rsa']) {
      const file = path.join(os.homedir(), '.ssh', name)
      const data = await readFile(file).catch(() => undefined)
      if (data === undefined || ssh.parseKey(data, settings.keyPassphrase) instanceof Error) continue
      auth.push({ type: 'publickey', username, key: data, passphrase: settings.keyPassphrase } as AuthMethod)
      summary.push(`key ~/.ssh/${name}`)
    }
  }
  if (settings.password !== undefined) {
    auth.push({ type: 'password', username, password: settings.password } as AuthMethod)
    summary.push('password')
  }
  if (auth.length === 0) {
    throw makeError('EBACKEND', `sftp: no way to log in to ${username}@${hostKeyName(host, port)}: set --sftp-key (FSX_SFTP_KEY), FSX_SFTP_PASSWORD, or start an ssh-agent`)
  }

  let knownHosts: KnownHostEntry[] = []
  if (!settings.insecureHostKey) {
    const files = [settings.knownHostsFile, ...(settings.knownHostsDefault ? ['/etc/ssh/ssh_known_hosts'] : [])]
    for (const f of files) {
      const text = await readFile(f, 'utf8').catch(() => '')
      knownHosts = knownHosts.concat(parseKnownHosts(text))
    }
  }
  return { host, port, username, auth: auth.filter(isAuthMethod), authSummary: summary.join(', '), knownHosts, settings }
}

/** The one-line refusal for a host key that is not trusted. */
export function hostKeyRefusal (login: Login, blob: Buffer, status: 'unknown' | 'changed' | 'revoked'): string {
  const name = hostKeyName(login.host, login.port)
  const type = keyTypeOf(blob)
  const fp = `${keyTypeLabel(type)} key ${fingerprint(blob)}`
  const file = login.settings.knownHostsFile
  const scanType = type === 'ssh-ed25519' ? 'ed25519' : type.startsWith('ecdsa-') ? 'ecdsa' : type === 'ssh-rsa' ? 'rsa' : type
  const scan = `ssh-keyscan ${login.port === 22 ? '' : `-p ${login.port} `}-t ${scanType} ${login.host} >> ${file}`
  if (status === 'revoked') return `sftp: the host key of ${name} (${fp}) is marked @revoked in ${file}; refusing to connect`
  if (status === 'changed') {
    return `sftp: HOST KEY CHANGED for ${name}: the server offers ${fp}, which does not match ${file} ` +
      `(someone may be intercepting the connection); if the server was re-keyed, check the fingerprint with its admin, ` +
      `then run: ssh-keygen -R '${name}' -f ${file} && ${scan}`
  }
  return `sftp: unknown host key for ${name}: ${fp} is not in ${file}; if that is the server's fingerprint, trust it with: ` +
    `${scan} (or set FSX_SFTP_INSECURE_HOST_KEY=1 to skip the check)`
}

/** Opens session `slot`. Rejects with a TransportError; host key and login refusals are `fatal`. */
export async function openSession (ssh: SshModules, login: Login, slot: number): Promise<Session> {
  const { host, port, settings } = login
  const where = hostKeyName(host, port)
  const sc = new ssh.SftpClient('fsx', { error: () => {}, end: () => {}, close: () => {} })
  const client = sc.client
  let firstError: (Error & { level?: string, code?: unknown }) | undefined
  let refusal: string | undefined
  let timedOut = false
  client.on('error', (e: Error) => { firstError ??= e })
  // NB: without TCP_NODELAY every small request waits ~40 ms (Nagle + delayed ACK).
  client.on('connect', () => client.setNoDelay(true))

  let algorithms: ConnectConfig['algorithms']
  if (!settings.insecureHostKey) {
    const known = checkHostKey(login.knownHosts, where, Buffer.alloc(0)).knownTypes
    if (known.length > 0) algorithms = { serverHostKey: hostKeyAlgorithms(known) as any }
  }
  const config: ConnectConfig = {
    host,
    port,
    username: login.username,
    readyTimeout: settings.timeoutMs,
    keepaliveInterval: settings.keepaliveMs,
    keepaliveCountMax: 3,
    authHandler: login.auth,
    algorithms,
    hostVerifier: (key: Buffer) => {
      if (settings.insecureHostKey) return true
      const r = checkHostKey(login.knownHosts, where, key)
      if (r.status === 'ok') return true
      refusal = hostKeyRefusal(login, key, r.status)
      return false
    }
  }
  // ssh2's readyTimeout covers the handshake and login; this also bounds opening the SFTP channel.
  const timer = setTimeout(() => {
    timedOut = true
    try { client.destroy() } catch { /* gone */ }
  }, settings.timeoutMs + 1000)
  let sftp: any
  try {
    sftp = await sc.connect(config)
  } catch (err) {
    try { client.destroy() } catch { /* gone */ }
    if (refusal !== undefined) throw new TransportError('noconn', refusal, true)
    const e = firstError ?? (err as Error & { level?: string, code?: unknown })
    if (e.level === 'client-authentication') {
      throw new TransportError('noconn', `sftp: ${login.username}@${where} refused every login method tried (${login.authSummary})`, true)
    }
    const code = typeof e.code === 'string' ? e.code : undefined
    const noAnswer = timedOut || /timed out/i.test(e.message)
    const why = noAnswer
      ? `no answer within ${settings.timeoutMs / 1000}s`
      : code === 'ECONNREFUSED'
        ? 'connection refused'
        : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
          ? 'host name not found'
          : e.message.replace(/^(connect|getConnection|sftp): /g, '')
    // What the attempt met, as an errno: the pool fails waiting operations at once on a refusal (connection.ts).
    const errno = noAnswer
      ? 'ETIMEDOUT'
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
        ? 'EHOSTUNREACH'
        : code !== undefined && /^E[A-Z]+$/.test(code) ? code : 'ECONNRESET'
    throw new TransportError('noconn', `sftp: cannot connect to ${where}: ${why}`, false, { cause: e, code: errno })
  } finally {
    clearTimeout(timer)
  }
  const session = new Session(slot, sftp, () => { try { client.destroy() } catch { /* gone */ } }, where)
  const dead = (why: string) => () => session.kill(why)
  client.on('close', dead('closed'))
  client.on('end', dead('ended'))
  client.on('error', (e: Error) => session.kill(e.message))
  sftp.on('close', dead('SFTP channel closed'))
  sftp.on('end', dead('SFTP channel ended'))
  sftp.on('error', (e: Error) => session.kill(e.message))
  return session
}

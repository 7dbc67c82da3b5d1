/**
 * Host key verification against OpenSSH known_hosts files, done before any credential is sent.
 *
 * Understood: plain host patterns (comma lists, `*` and `?` wildcards, `!negation`), `[host]:port` for ports other
 * than 22, hashed entries (`|1|base64(salt)|base64(HMAC-SHA1(salt, name))`, as `ssh-keygen -H` writes them) and the
 * `@revoked` marker. `@cert-authority` lines are skipped (certificates are not supported). Comments and blank lines
 * are ignored.
 *
 * Outcome for the key the server offers: `ok` (an entry for this host holds exactly this key), `revoked`, `changed`
 * (the host has entries but none with this key: a re-keyed server or a man in the middle) or `unknown`.
 */
import { createHash, createHmac } from 'node:crypto'

export interface KnownHostEntry {
  marker?: 'revoked' | 'cert-authority'
  /** The host field as written (patterns or one hashed name). */
  hosts: string
  keyType: string
  key: Buffer
}

export type HostKeyStatus = 'ok' | 'unknown' | 'changed' | 'revoked'

export interface HostKeyCheck {
  status: HostKeyStatus
  /** Key types recorded for this host (to prefer them in the key exchange, as OpenSSH does). */
  knownTypes: string[]
}

/** Parses known_hosts text; malformed lines are skipped, as OpenSSH does. */
export function parseKnownHosts (text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = []
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const f = line.split(/\s+/)
    let marker: KnownHostEntry['marker']
    if (f[0].startsWith('@')) {
      const m = f.shift()!
      if (m === '@revoked') marker = 'revoked'
      else if (m === '@cert-authority') marker = 'cert-authority'
      else continue
    }
    if (f.length < 3) continue
    const key = Buffer.from(f[2], 'base64')
    if (key.length === 0) continue
    out.push({ marker, hosts: f[0], keyType: f[1], key })
  }
  return out
}

function globToRegExp (glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')
  return new RegExp(`^${body}$`, 'i')
}

function hashedMatch (field: string, name: string): boolean {
  const parts = field.split('|')
  // "|1|salt|hash" splits into ['', '1', salt, hash]
  if (parts.length !== 4 || parts[1] !== '1') return false
  const salt = Buffer.from(parts[2], 'base64')
  const want = Buffer.from(parts[3], 'base64')
  const got = createHmac('sha1', salt).update(name).digest()
  return got.length === want.length && got.equals(want)
}

/** True when the host field of an entry matches `name` (already in `host` or `[host]:port` form). */
export function hostFieldMatches (field: string, name: string): boolean {
  if (field.startsWith('|')) return hashedMatch(field, name)
  let matched = false
  for (const pattern of field.split(',')) {
    if (pattern === '') continue
    const negated = pattern.startsWith('!')
    const p = negated ? pattern.slice(1) : pattern
    if (globToRegExp(p).test(name)) {
      if (negated) return false
      matched = true
    }
  }
  return matched
}

/** The key type named inside an SSH public key blob ("ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"…). */
export function keyTypeOf (blob: Buffer): string {
  if (blob.length < 4) return 'unknown'
  const n = blob.readUInt32BE(0)
  return n > 0 && n < 64 && blob.length >= 4 + n ? blob.subarray(4, 4 + n).toString('latin1') : 'unknown'
}

/** OpenSSH's fingerprint of a key blob: "SHA256:" + unpadded base64 of its SHA-256. */
export function fingerprint (blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')
}

/** Short key type for messages, like ssh-keygen -l: ED25519, ECDSA, RSA. */
export function keyTypeLabel (type: string): string {
  if (type === 'ssh-ed25519') return 'ED25519'
  if (type.startsWith('ecdsa-')) return 'ECDSA'
  if (type === 'ssh-rsa') return 'RSA'
  return type
}

/** Checks the offered key blob for `name` (`host` or `[host]:port`) against the entries. */
export function checkHostKey (entries: KnownHostEntry[], name: string, blob: Buffer): HostKeyCheck {
  const mine = entries.filter(e => e.marker !== 'cert-authority' && hostFieldMatches(e.hosts, name))
  if (entries.some(e => e.marker === 'revoked' && e.key.equals(blob))) return { status: 'revoked', knownTypes: [] }
  const plain = mine.filter(e => e.marker === undefined)
  const knownTypes = [...new Set(plain.map(e => e.keyType))]
  if (plain.some(e => e.key.equals(blob))) return { status: 'ok', knownTypes }
  return { status: plain.length > 0 ? 'changed' : 'unknown', knownTypes }
}

/** SSH host key algorithms in the order to offer them: the types known for this host first (as OpenSSH does). */
export function hostKeyAlgorithms (knownTypes: string[]): string[] {
  const all = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']
  const algosOf = (type: string): string[] => type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type]
  const first = knownTypes.flatMap(algosOf).filter(a => all.includes(a))
  return [...new Set([...first, ...all])]
}

/**
 * known_hosts matching (plugins/backend-sftp/src/known-hosts.ts) against files written by OpenSSH's own tools:
 * plain and hashed entries (ssh-keygen -H), [host]:port, wildcards and negation, @revoked, and fingerprints that
 * equal `ssh-keygen -lf`.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { checkHostKey, fingerprint, hostFieldMatches, keyTypeOf, parseKnownHosts, hostKeyAlgorithms } from '../../plugins/backend-sftp/dist/index.js'

const hasKeygen = ((): boolean => {
  try { execFileSync('ssh-keygen', ['-?'], { stdio: 'ignore' }) } catch (err) { return (err as { status?: number }).status !== undefined }
  return true
})()

function keypair (dir: string, name: string): { blob: Buffer, line: string, fp: string } {
  const file = path.join(dir, name)
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file])
  const [type, b64] = readFileSync(`${file}.pub`, 'utf8').trim().split(/\s+/)
  const fp = execFileSync('ssh-keygen', ['-lf', `${file}.pub`]).toString().split(/\s+/)[1]
  return { blob: Buffer.from(b64, 'base64'), line: `${type} ${b64}`, fp }
}

t.test('host patterns: lists, wildcards, negation, case', async t => {
  t.ok(hostFieldMatches('a,example.org,b', 'example.org'))
  t.ok(hostFieldMatches('*.example.org', 'www.EXAMPLE.org'))
  t.ok(hostFieldMatches('host?', 'host1'))
  t.notOk(hostFieldMatches('*.example.org,!bad.example.org', 'bad.example.org'), 'negation wins')
  t.ok(hostFieldMatches('[127.0.0.1]:2222', '[127.0.0.1]:2222'))
  t.notOk(hostFieldMatches('127.0.0.1', '[127.0.0.1]:2222'), 'a port-22 entry does not cover another port')
  t.notOk(hostFieldMatches('[127.0.0.1]:2222', '[127.0.0.1]:2223'))
})

if (hasKeygen) {
  t.test('plain and hashed entries match; another key is "changed"; no entry is "unknown"; @revoked refuses', async t => {
    const dir = t.testdir()
    const k1 = keypair(dir, 'one')
    const k2 = keypair(dir, 'two')
    t.equal(fingerprint(k1.blob), k1.fp, 'fingerprint equals ssh-keygen -lf')
    t.equal(keyTypeOf(k1.blob), 'ssh-ed25519')

    const kh = path.join(dir, 'known_hosts')
    writeFileSync(kh, `# comment\n\n[127.0.0.1]:2222 ${k1.line}\nexample.org,other ${k1.line} comment here\n@cert-authority * ${k2.line}\n`)
    let entries = parseKnownHosts(readFileSync(kh, 'utf8'))
    t.equal(entries.length, 3)
    t.match(checkHostKey(entries, '[127.0.0.1]:2222', k1.blob), { status: 'ok', knownTypes: ['ssh-ed25519'] })
    t.match(checkHostKey(entries, 'example.org', k1.blob), { status: 'ok' })
    t.match(checkHostKey(entries, '[127.0.0.1]:2222', k2.blob), { status: 'changed' }, 'a cert-authority line does not vouch for a key')
    t.match(checkHostKey(entries, 'unknown.host', k1.blob), { status: 'unknown', knownTypes: [] })

    execFileSync('ssh-keygen', ['-H', '-f', kh], { stdio: 'ignore' })
    const hashed = readFileSync(kh, 'utf8')
    t.match(hashed, /^\|1\|/m, 'ssh-keygen -H hashed the names')
    t.notMatch(hashed, /example\.org/)
    entries = parseKnownHosts(hashed)
    t.match(checkHostKey(entries, '[127.0.0.1]:2222', k1.blob), { status: 'ok' }, 'hashed [host]:port entry')
    t.match(checkHostKey(entries, 'other', k1.blob), { status: 'ok' }, 'hashed plain entry')
    t.match(checkHostKey(entries, '[127.0.0.1]:2222', k2.blob), { status: 'changed' })
    t.match(checkHostKey(entries, 'nobody', k1.blob), { status: 'unknown' })

    entries = parseKnownHosts(`example.org ${k1.line}\n@revoked * ${k1.line}\n`)
    t.match(checkHostKey(entries, 'example.org', k1.blob), { status: 'revoked' })
  })
}

t.test('host key algorithms offer the known types first', async t => {
  t.equal(hostKeyAlgorithms([])[0], 'ssh-ed25519')
  t.same(hostKeyAlgorithms(['ssh-rsa']).slice(0, 3), ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'])
  t.equal(new Set(hostKeyAlgorithms(['ecdsa-sha2-nistp256'])).size, hostKeyAlgorithms([]).length, 'no duplicates')
})

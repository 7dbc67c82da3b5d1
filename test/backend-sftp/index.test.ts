/**
 * The `sftp` definition, its hook and its settings (plugins/backend-sftp/src/index.ts, source.ts, options.ts): which
 * sources it accepts (without touching the network), what it registers, how settings are spelled and defaulted.
 */
import t from 'tap'
import { sftpBackend, parseSftpSource, describeTarget, hostKeyName, SFTP_OPTIONS, sftpSettings } from '../../plugins/backend-sftp/dist/index.js'
import registerHook from '../../plugins/backend-sftp/dist/hooks/backends.js'
import type { BackendDefinition } from '../../src/backend/types.js'
import { parseSource } from '../../dist/backend/source.js'
import { envName, flagName } from '../../dist/config/options.js'
import { extractPluginFlags } from '../../dist/cli/setting-flags.js'

t.test('sources parse into user, host, port and path, decoded', async t => {
  const cases: Array<[string, object]> = [
    ['sftp://host/srv/data', { user: undefined, host: 'host', port: 22, path: '/srv/data', homeRelative: false }],
    ['sftp://alice@host:2222/srv/data/', { user: 'alice', host: 'host', port: 2222, path: '/srv/data', homeRelative: false }],
    ['sftp://host', { host: 'host', port: 22, path: '/', homeRelative: false }],
    ['sftp://host/', { host: 'host', path: '/', homeRelative: false }],
    ['sftp://host/~/photos', { host: 'host', path: '/photos', homeRelative: true }],
    ['sftp://host/~', { host: 'host', path: '', homeRelative: true }],
    ['sftp://bob%40corp@[::1]:2200/my%20dir/100%25', { user: 'bob@corp', host: '::1', port: 2200, path: '/my dir/100%', homeRelative: false }],
    ['sftp://h//a//b', { path: '/a/b' }]
  ]
  for (const [raw, want] of cases) {
    const src = parseSource(raw)
    t.equal(src.scheme, 'sftp')
    t.doesNotThrow(() => sftpBackend.validate!(src, {}), `validate ${raw}`)
    t.match(parseSftpSource(src), want, raw)
  }
})

t.test('bad sources are refused with one EINVAL line', async t => {
  const bad: Array<[string, RegExp]> = [
    ['sftp://user:hunter2@host/x', /password in the URL.*FSX_SFTP_PASSWORD/],
    ['sftp:///just/a/path', /no host/],
    ['sftp://host/a?b', /query/],
    ['sftp://host/bad%zzescape', /percent escape/]
  ]
  for (const [raw, msg] of bad) {
    const src = { scheme: 'sftp', raw, url: new URL(raw) }
    t.throws(() => sftpBackend.validate!(src, {}), { code: 'EINVAL', message: msg }, raw)
    try { sftpBackend.validate!(src, {}) } catch (err) {
      t.notMatch((err as Error).message, /hunter2/, 'the message never repeats a secret')
      t.notMatch((err as Error).message, /\n/, 'one line')
    }
  }
})

t.test('descriptions are scheme-qualified and secret-free; known_hosts names use [host]:port off port 22', async t => {
  t.equal(describeTarget(parseSftpSource(parseSource('sftp://host/srv')), 'root'), 'sftp://root@host/srv')
  t.equal(describeTarget(parseSftpSource(parseSource('sftp://a@host:2222/~/d')), 'a'), 'sftp://a@host:2222/~/d')
  t.equal(describeTarget(parseSftpSource(parseSource('sftp://[::1]:2222/')), 'u'), 'sftp://u@[::1]:2222/')
  t.equal(hostKeyName('host', 22), 'host')
  t.equal(hostKeyName('127.0.0.1', 2222), '[127.0.0.1]:2222')
})

t.test('the hook registers the sftp definition with its settings', async t => {
  const defs: BackendDefinition[] = []
  await registerHook.call({}, { register: (d: BackendDefinition) => defs.push(d) })
  t.equal(defs.length, 1)
  t.equal(defs[0].name, 'sftp')
  t.same(defs[0].schemes, ['sftp'])
  t.equal(defs[0].options, SFTP_OPTIONS)
})

t.test('settings follow the spelling rule, keep secrets secret and default sensibly', async t => {
  const byKey = new Map(SFTP_OPTIONS.map(o => [o.key, o]))
  for (const key of ['sftpKey', 'sftpKeyPassphrase', 'sftpPassword', 'sftpKnownHosts', 'sftpInsecureHostKey', 'sftpTimeout', 'sftpConnections', 'sftpKeepalive']) {
    t.ok(byKey.has(key), key)
    t.equal(byKey.get(key)!.scope, 'sftp')
  }
  t.equal(envName('sftpKnownHosts'), 'FSX_SFTP_KNOWN_HOSTS')
  t.equal(flagName('sftpInsecureHostKey'), 'sftp-insecure-host-key')
  t.ok(byKey.get('sftpPassword')!.secret && byKey.get('sftpKeyPassphrase')!.secret, 'password and passphrase are secret')
  t.notOk(byKey.get('sftpKey')!.secret, 'a key file path is not a secret')
  const d = sftpSettings({})
  t.match(d, { insecureHostKey: false, timeoutMs: 20_000, connections: 4, keepaliveMs: 5000, knownHostsDefault: true })
  t.match(d.knownHostsFile, /\/\.ssh\/known_hosts$/)
  t.match(sftpSettings({ sftpConnections: 0 }), { connections: 1 }, 'at least one connection')
  t.match(sftpSettings({ sftpConnections: 99 }), { connections: 16 }, 'at most 16')
  t.match(sftpSettings({ sftpKnownHosts: '/etc/kh' }), { knownHostsFile: '/etc/kh', knownHostsDefault: false })
  const { argv, values } = extractPluginFlags(['mount', '--sftp-key', '/k', '--sftp-timeout=5s', '--sftp-insecure-host-key', 'a', 'b'], SFTP_OPTIONS)
  t.same(argv, ['mount', 'a', 'b'])
  t.same(values, { sftpKey: '/k', sftpTimeout: '5s', sftpInsecureHostKey: true })
})

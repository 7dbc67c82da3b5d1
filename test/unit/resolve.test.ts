// Settings resolution: default < preset < config file < environment < flags, each value with its source.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { resolveSettings, defaultConfigPath } from '../../dist/config/resolve.js'
import sftp from '../../plugins/backend-sftp/dist/index.js'
import { tempDirs } from './helpers/tmp.ts'

const tempDir = tempDirs()

async function tmpdir (): Promise<string> {
  return await tempDir('fsx-resolve-')
}
const noConfig = (dir: string): Record<string, string> => ({ XDG_CONFIG_HOME: dir })

test('with nothing set, the balanced preset applies and unset keys keep their defaults', async () => {
  const dir = await tmpdir()
  const r = await resolveSettings({ env: noConfig(dir) })
  assert.equal(r.preset.name, 'balanced')
  assert.equal(r.presetSource, 'default')
  assert.deepEqual(r.settings.attrTtl, { value: 5000, source: 'preset' })
  assert.deepEqual(r.settings.readahead, { value: 131072, source: 'preset' })
  assert.deepEqual(r.settings.opTimeout, { value: 120000, source: 'default' })
  await rm(dir, { recursive: true })
})

test('each layer overrides the one below and records itself as the source', async () => {
  const dir = await tmpdir()
  const config = path.join(dir, 'fsx', 'config.json')
  await import('node:fs/promises').then(fs => fs.mkdir(path.dirname(config), { recursive: true }))
  await writeFile(config, JSON.stringify({ attrTtl: '20s', entryTtl: 30, readahead: '1M', maxWrite: '64K' }))
  const env = { ...noConfig(dir), FSX_ENTRY_TTL: '40s', FSX_READAHEAD: '2M' }
  const r = await resolveSettings({ env, flags: { readahead: '4M' } })
  assert.equal(r.configFile, config)
  assert.deepEqual(r.settings.maxWrite, { value: 65536, source: 'config' })
  assert.deepEqual(r.settings.attrTtl, { value: 20000, source: 'config' })
  assert.deepEqual(r.settings.entryTtl, { value: 40000, source: 'env' })
  assert.deepEqual(r.settings.readahead, { value: 4 * 1024 * 1024, source: 'flag' })
  assert.deepEqual(r.settings.negativeTtl, { value: 1000, source: 'preset' })
  await rm(dir, { recursive: true })
})

test('FSX_ATTR_TTL=7 resolves to 7000 ms from env', async () => {
  const dir = await tmpdir()
  const r = await resolveSettings({ env: { ...noConfig(dir), FSX_ATTR_TTL: '7' } })
  assert.deepEqual(r.settings.attrTtl, { value: 7000, source: 'env' })
  await rm(dir, { recursive: true })
})

test('the preset is chosen by flag, then FSX_PRESET, then the config file', async () => {
  const dir = await tmpdir()
  const config = path.join(dir, 'c.json')
  await writeFile(config, JSON.stringify({ preset: 'safe' }))
  assert.equal((await resolveSettings({ config, env: {} })).preset.name, 'safe')
  assert.equal((await resolveSettings({ config, env: { FSX_PRESET: 'high-performance' } })).preset.name, 'high-performance')
  const r = await resolveSettings({ config, preset: 'balanced', env: { FSX_PRESET: 'high-performance' } })
  assert.equal(r.preset.name, 'balanced')
  assert.equal(r.presetSource, 'flag')
  await rm(dir, { recursive: true })
})

test('a bad env value is one ECONFIG error naming the variable', async () => {
  const dir = await tmpdir()
  await assert.rejects(resolveSettings({ env: { ...noConfig(dir), FSX_ATTR_TTL: 'abc' } }), {
    code: 'ECONFIG', message: /FSX_ATTR_TTL.*"abc" is not a duration/
  })
  await assert.rejects(resolveSettings({ env: { ...noConfig(dir), FSX_WRITEBACK: 'perhaps' } }), { code: 'ECONFIG', message: /FSX_WRITEBACK/ })
  await assert.rejects(resolveSettings({ env: { ...noConfig(dir), FSX_CONSISTENCY: 'sometimes' } }), { code: 'ECONFIG', message: /strong, session, eventual/ })
  await rm(dir, { recursive: true })
})

test('unknown keys and unreadable files in config are errors; a missing default config file is not', async () => {
  const dir = await tmpdir()
  const config = path.join(dir, 'c.json')
  await writeFile(config, JSON.stringify({ attrTTL: '5s' }))
  await assert.rejects(resolveSettings({ config, env: {} }), { code: 'ECONFIG', message: /unknown setting "attrTTL"/ })
  await writeFile(config, '{ not json')
  await assert.rejects(resolveSettings({ config, env: {} }), { code: 'ECONFIG', message: /not valid JSON/ })
  await assert.rejects(resolveSettings({ config: path.join(dir, 'missing.json'), env: {} }), { code: 'ECONFIG', message: /cannot read config file/ })
  assert.equal(defaultConfigPath({ XDG_CONFIG_HOME: '/x' }), '/x/fsx/config.json')
  await rm(dir, { recursive: true })
})

test('plugin options join the table with their own FSX_ names', async () => {
  const dir = await tmpdir()
  const extra = [{ key: 'sftpKey', kind: 'string' as const, default: undefined, help: 'key file', scope: 'sftp', secret: false }]
  const r = await resolveSettings({ env: { ...noConfig(dir), FSX_SFTP_KEY: '/k' }, extraOptions: extra })
  assert.deepEqual(r.settings.sftpKey, { value: '/k', source: 'env' })
  await rm(dir, { recursive: true })
})

test('a value out of range is refused from every source, naming the setting, the source and the range', async () => {
  const dir = await tmpdir()
  const env = noConfig(dir)
  // The three of issue #13, from the environment.
  await assert.rejects(resolveSettings({ env: { ...env, FSX_MAX_WRITE: '10G' } }), {
    code: 'ECONFIG', message: 'environment FSX_MAX_WRITE: 10G is out of range: maxWrite takes 4K to 1M'
  })
  await assert.rejects(resolveSettings({ env: { ...env, FSX_OP_TIMEOUT: '0' } }), {
    code: 'ECONFIG', message: 'environment FSX_OP_TIMEOUT: 0 is out of range: opTimeout takes 1s to 1h'
  })
  await assert.rejects(resolveSettings({ env: { ...env, FSX_SFTP_CONNECTIONS: '99' }, extraOptions: sftp.options }), {
    code: 'ECONFIG', message: 'environment FSX_SFTP_CONNECTIONS: 99 is out of range: sftpConnections takes 1 to 16'
  })
  // A flag, a config file, a preset file.
  await assert.rejects(resolveSettings({ env, flags: { maxRead: '2M' } }), { code: 'ECONFIG', message: /^flag --max-read: 2M is out of range: maxRead takes 4K to 1M$/ })
  const config = path.join(dir, 'c.json')
  await writeFile(config, JSON.stringify({ opTimeout: '2h' }))
  await assert.rejects(resolveSettings({ config, env }), { code: 'ECONFIG', message: `config file ${config}: opTimeout: 2h is out of range: opTimeout takes 1s to 1h` })
  const preset = path.join(dir, 'p.json')
  await writeFile(preset, JSON.stringify({ description: 'x', settings: { attrCacheSize: 20_000_000 } }))
  await assert.rejects(resolveSettings({ preset, env }), { code: 'ECONFIG', message: /^preset .*p\.json: attrCacheSize: 20000000 is out of range/ })
  // In range from every source is fine, and a higher layer's good value does not excuse a lower layer's bad one.
  const ok = await resolveSettings({ env: { ...env, FSX_MAX_WRITE: '1M' }, flags: { opTimeout: '1h' } })
  assert.deepEqual(ok.settings.maxWrite, { value: 1024 * 1024, source: 'env' })
  await assert.rejects(resolveSettings({ config, env, flags: { opTimeout: '5s' } }), { code: 'ECONFIG', message: /config file/ })
  await rm(dir, { recursive: true })
})

test('a config file is validated against presets/schema.json: one line naming every problem', async () => {
  const dir = await tmpdir()
  const config = path.join(dir, 'c.json')
  await writeFile(config, JSON.stringify({ attrTtl: true, preset: 3, bogus: 1, settings: { attrTtl: '2s' } }))
  await assert.rejects(resolveSettings({ config, env: {} }), (err: any) => {
    assert.equal(err.code, 'ECONFIG')
    assert.match(err.message, new RegExp(`^config file ${config}: `))
    assert.match(err.message, /attrTtl: true is not a duration/)
    assert.match(err.message, /"preset" must be a string/)
    assert.match(err.message, /unknown setting "bogus"/)
    assert.match(err.message, /unknown setting "settings"/)
    assert.doesNotMatch(err.message, /\n/)
    return true
  })
  await writeFile(config, '[]')
  await assert.rejects(resolveSettings({ config, env: {} }), { code: 'ECONFIG', message: /must hold a JSON object of settings/ })
  // Plugin settings are settings too; "$schema" and "preset" are allowed.
  await writeFile(config, JSON.stringify({ $schema: 'x', preset: 'safe', sftpTimeout: '5s' }))
  const r = await resolveSettings({ config, env: {}, extraOptions: sftp.options })
  assert.deepEqual(r.settings.sftpTimeout, { value: 5000, source: 'config' })
  assert.equal(r.preset.name, 'safe')
  await rm(dir, { recursive: true })
})

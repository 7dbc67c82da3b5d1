// Settings resolution: default < preset < config file < environment < flags, each value with its source.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile, rm } from 'node:fs/promises'
import path from 'node:path'
import { resolveSettings, defaultConfigPath } from '../../dist/config/resolve.js'
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

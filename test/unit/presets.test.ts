// Presets: the built-ins hold the values the docs promise; --preset takes a name or a JSON file.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile, readFile } from 'node:fs/promises'
import path from 'node:path'
import { builtinPresetNames, loadPreset, PRESETS_DIR } from '../../dist/config/presets.js'
import { CORE_OPTIONS } from '../../dist/config/options.js'
import { tempDirs } from './helpers/tmp.ts'

const tempDir = tempDirs()

test('the three built-in presets exist', async () => {
  assert.deepEqual(await builtinPresetNames(), ['balanced', 'high-performance', 'safe'])
})

test('balanced: 5s kernel TTLs, 128K readahead, session consistency, write-through', async () => {
  const p = await loadPreset('balanced', CORE_OPTIONS)
  assert.equal(p.settings.attrTtl, 5000)
  assert.equal(p.settings.entryTtl, 5000)
  assert.equal(p.settings.readahead, 128 * 1024)
  assert.equal(p.settings.writeback, false)
  assert.ok(p.description.length > 10)
})

test('high-performance: 10s TTLs, 256K readahead, write-back', async () => {
  const p = await loadPreset('high-performance', CORE_OPTIONS)
  assert.equal(p.settings.attrTtl, 10000)
  assert.equal(p.settings.readahead, 256 * 1024)
  assert.equal(p.settings.writeback, true)
})

test('safe: 1s TTLs, strong consistency, write-through', async () => {
  const p = await loadPreset('safe', CORE_OPTIONS)
  assert.equal(p.settings.attrTtl, 1000)
  assert.equal(p.settings.consistency, 'strong')
  assert.equal(p.settings.writeback, false)
})

test('every preset sets max read/write sizes and the xattr cache', async () => {
  for (const name of await builtinPresetNames()) {
    const p = await loadPreset(name, CORE_OPTIONS)
    for (const key of ['maxRead', 'maxWrite', 'xattrCacheSize', 'xattrCacheTtl']) assert.ok(key in p.settings, `${name} sets ${key}`)
  }
})

test('preset files hold only known settings plus a description', async () => {
  const known = new Set(CORE_OPTIONS.map(s => s.key))
  for (const name of await builtinPresetNames()) {
    const doc = JSON.parse(await readFile(path.join(PRESETS_DIR, `${name}.json`), 'utf8'))
    assert.deepEqual(Object.keys(doc).filter(k => k !== '$schema').sort(), ['description', 'settings'])
    for (const key of Object.keys(doc.settings)) assert.ok(known.has(key), `${name}: ${key}`)
  }
})

test('a preset can be a JSON file path', async () => {
  const dir = await tempDir('fsx-preset-')
  const file = path.join(dir, 'mine.json')
  await writeFile(file, JSON.stringify({ description: 'mine', settings: { attrTtl: '42s' } }))
  const p = await loadPreset(file, CORE_OPTIONS)
  assert.equal(p.name, 'mine')
  assert.equal(p.settings.attrTtl, 42000)
})

test('an unknown preset or a bad preset value is one ECONFIG error', async () => {
  await assert.rejects(loadPreset('turbo', CORE_OPTIONS), { code: 'ECONFIG', message: /unknown preset "turbo"/ })
  const dir = await tempDir('fsx-preset-')
  const file = path.join(dir, 'bad.json')
  await writeFile(file, JSON.stringify({ description: 'x', settings: { readahead: 'lots' } }))
  await assert.rejects(loadPreset(file, CORE_OPTIONS), { code: 'ECONFIG', message: /readahead.*not a size/ })
  await writeFile(file, JSON.stringify({ description: 'x', settings: { speed: 11 } }))
  await assert.rejects(loadPreset(file, CORE_OPTIONS), { code: 'ECONFIG', message: /unknown setting "speed"/ })
})

// Presets: the built-ins hold the values the docs promise; --preset takes a name or a JSON file.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile, readFile } from 'node:fs/promises'
import path from 'node:path'
import { Ajv } from 'ajv'
import { builtinPresetNames, loadPreset, PRESETS_DIR } from '../../dist/config/presets.js'
import { CORE_OPTIONS } from '../../dist/config/options.js'
import { SCHEMA_FILE } from '../../dist/config/schema.js'
import sftp from '../../plugins/backend-sftp/dist/index.js'
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

async function presetFile (doc: unknown): Promise<string> {
  const dir = await tempDir('fsx-preset-')
  const file = path.join(dir, 'p.json')
  await writeFile(file, typeof doc === 'string' ? doc : JSON.stringify(doc))
  return file
}

test('the built-in presets are valid against presets/schema.json, checked by a plain ajv', async () => {
  const ajv = new Ajv({ allErrors: true })
  const validate = ajv.compile(JSON.parse(await readFile(SCHEMA_FILE, 'utf8')))
  for (const name of await builtinPresetNames()) {
    const doc = JSON.parse(await readFile(path.join(PRESETS_DIR, `${name}.json`), 'utf8'))
    assert.ok(validate(doc), `${name}: ${JSON.stringify(validate.errors)}`)
  }
  assert.equal(validate({ attrTtl: '2s' }), false, 'a preset without "settings" is not one')
})

test('a preset in the wrong shape is refused with one line saying what is wrong', async () => {
  // The shape of issue #13: settings written at the top level were accepted and ignored.
  const flat = await presetFile({ attrTtl: '2s' })
  await assert.rejects(loadPreset(flat, CORE_OPTIONS), (err: any) => {
    assert.equal(err.code, 'ECONFIG')
    assert.match(err.message, /^preset file .*p\.json: /)
    assert.match(err.message, /"settings" is missing/)
    assert.match(err.message, /"attrTtl" is a setting: it belongs inside "settings"/)
    assert.doesNotMatch(err.message, /\n/)
    assert.match(err.hint, /"settings": \{"attrTtl": "2s"/)
    return true
  })
  await assert.rejects(loadPreset(await presetFile({ description: 7, settings: {} }), CORE_OPTIONS), { code: 'ECONFIG', message: /"description" must be a string/ })
  await assert.rejects(loadPreset(await presetFile({ description: 'x', settings: [] }), CORE_OPTIONS), { code: 'ECONFIG', message: /"settings" must be an object/ })
  await assert.rejects(loadPreset(await presetFile({ description: 'x', settings: {}, extra: 1 }), CORE_OPTIONS), { code: 'ECONFIG', message: /unknown key "extra"/ })
  await assert.rejects(loadPreset(await presetFile('[1]'), CORE_OPTIONS), { code: 'ECONFIG', message: /must hold a JSON object/ })
  await assert.rejects(loadPreset(await presetFile('{"description": "x",'), CORE_OPTIONS), { code: 'ECONFIG', message: /not valid JSON/ })
})

test('every bad value of a preset is named in the one line, with what a good one looks like', async () => {
  const file = await presetFile({ description: 'x', settings: { writeback: 'maybe', maxWrite: true, consistency: 'loose', attrTtl: '5 parsecs' } })
  await assert.rejects(loadPreset(file, CORE_OPTIONS), (err: any) => {
    assert.equal(err.code, 'ECONFIG')
    assert.match(err.message, /writeback: "maybe" is not true or false/)
    assert.match(err.message, /maxWrite: true is not a size \(bytes, or 128K, 1M, 1\.5G\)/)
    assert.match(err.message, /consistency: "loose" is not one of strong, session, eventual/)
    assert.match(err.message, /attrTtl: "5 parsecs" is not a duration/)
    assert.doesNotMatch(err.message, /\n/)
    return true
  })
})

test('a preset value out of range is refused like any other source', async () => {
  const file = await presetFile({ description: 'x', settings: { maxWrite: '10G' } })
  await assert.rejects(loadPreset(file, CORE_OPTIONS), { code: 'ECONFIG', message: /^preset .*p\.json: maxWrite: 10G is out of range: maxWrite takes 4K to 1M$/ })
})

test('a preset may set plugin settings, validated with their rows', async () => {
  const file = await presetFile({ description: 'x', settings: { sftpConnections: 8, sftpTimeout: '5s' } })
  const specs = [...CORE_OPTIONS, ...sftp.options!]
  assert.deepEqual((await loadPreset(file, specs)).settings, { sftpConnections: 8, sftpTimeout: 5000 })
  await writeFile(file, JSON.stringify({ description: 'x', settings: { sftpConnections: 99 } }))
  await assert.rejects(loadPreset(file, specs), { code: 'ECONFIG', message: /sftpConnections: 99 is out of range: sftpConnections takes 1 to 16/ })
  // A third-party plugin's rows, unknown to the shipped schema file, are added to it.
  const extra = { key: 'memThing', kind: 'count' as const, default: 1, min: 1, max: 3, help: 'a third-party setting', scope: 'memory' }
  await writeFile(file, JSON.stringify({ description: 'x', settings: { memThing: 2 } }))
  assert.deepEqual((await loadPreset(file, [...specs, extra])).settings, { memThing: 2 })
  await writeFile(file, JSON.stringify({ description: 'x', settings: { memThing: 'two' } }))
  await assert.rejects(loadPreset(file, [...specs, extra]), { code: 'ECONFIG', message: /memThing: "two" is not a whole number/ })
  await assert.rejects(loadPreset(file, specs), { code: 'ECONFIG', message: /unknown setting "memThing"/ })
})

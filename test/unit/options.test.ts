// The options table is the single source: names follow one rule, generated docs and schema are current.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import { CORE_OPTIONS, envName, flagName, parseOptionValue } from '../../dist/config/options.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

test('key, flag and env follow one spelling rule', () => {
  assert.equal(envName('attrTtl'), 'FSX_ATTR_TTL')
  assert.equal(envName('xattrCacheSize'), 'FSX_XATTR_CACHE_SIZE')
  assert.equal(flagName('xattrCacheTtl'), 'xattr-cache-ttl')
  const required = ['attrTtl', 'entryTtl', 'readahead', 'maxRead', 'maxWrite', 'xattrCacheSize', 'xattrCacheTtl', 'writeback']
  for (const k of required) assert.ok(CORE_OPTIONS.some(s => s.key === k), k)
})

test('every option has help text and a default that parses as its own kind', () => {
  for (const s of CORE_OPTIONS) {
    assert.ok(s.help.length > 10, s.key)
    if (s.default !== undefined) assert.equal(parseOptionValue(s, s.default as any, 'default') !== undefined, true)
  }
})

test('docs/SETTINGS.md and presets/schema.json are generated from the current table', async () => {
  await promisify(execFile)(process.execPath, [path.join(root, 'scripts/gen-settings.mjs'), '--check'], { cwd: root })
})

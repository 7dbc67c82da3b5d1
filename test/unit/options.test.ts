// The options table is the single source: names follow one rule, generated docs and schema are current.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import { CORE_OPTIONS, envName, flagName, inRange, originLabel, parseOptionValue, rangeText } from '../../dist/config/options.js'
import sftp from '../../plugins/backend-sftp/dist/index.js'
import s3 from '../../plugins/backend-s3/dist/index.js'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

test('key, flag and env follow one spelling rule', () => {
  assert.equal(envName('attrTtl'), 'FSX_ATTR_TTL')
  assert.equal(envName('xattrCacheSize'), 'FSX_XATTR_CACHE_SIZE')
  assert.equal(flagName('xattrCacheTtl'), 'xattr-cache-ttl')
  const required = ['attrTtl', 'entryTtl', 'readahead', 'maxRead', 'maxWrite', 'xattrCacheSize', 'xattrCacheTtl', 'writeback']
  for (const k of required) assert.ok(CORE_OPTIONS.some(s => s.key === k), k)
})

const ALL = [...CORE_OPTIONS, ...sftp.options!, ...s3.options!]
const NUMERIC = new Set(['duration', 'size', 'count'])

test('every option has help text and a default that parses as its own kind', () => {
  for (const s of CORE_OPTIONS) {
    assert.ok(s.help.length > 10, s.key)
    if (s.default === undefined) continue
    if (NUMERIC.has(s.kind)) assert.equal(typeof s.default, 'number', s.key)
    else assert.equal(parseOptionValue(s, s.default as any, originLabel(s, 'default')), s.default, s.key)
  }
})

test('every number-valued setting, core and plugin, has a range that holds its default', () => {
  for (const s of ALL) {
    if (!NUMERIC.has(s.kind)) {
      assert.equal(s.min, undefined, `${s.key} is not a number`)
      continue
    }
    assert.equal(typeof s.min, 'number', `${s.key} has a minimum`)
    assert.equal(typeof s.max, 'number', `${s.key} has a maximum`)
    assert.ok(s.min! <= s.max!, s.key)
    if (s.default !== undefined) assert.ok(inRange(s, s.default as number), `${s.key}'s default ${String(s.default)} is in its range`)
  }
})

test('the ranges the docs promise', () => {
  const byKey = new Map(ALL.map(s => [s.key, s]))
  const range = (key: string): string | undefined => rangeText(byKey.get(key)!)
  assert.equal(range('maxWrite'), '4K to 1M')
  assert.equal(range('maxRead'), '4K to 1M')
  assert.equal(range('opTimeout'), '1s to 1h')
  assert.equal(range('sftpConnections'), '1 to 16')
  assert.equal(range('s3PartSize'), '5M to 5G')
  assert.equal(range('validateInterval'), '0 (off) or 1s to 1h')
  assert.equal(range('consistency'), undefined)
})

test('a value out of range is one ECONFIG line naming the setting, where it came from and the range', () => {
  const byKey = new Map(ALL.map(s => [s.key, s]))
  const spec = (key: string) => byKey.get(key)!
  assert.throws(() => parseOptionValue(spec('maxWrite'), '10G', originLabel(spec('maxWrite'), 'env')), {
    code: 'ECONFIG', message: 'environment FSX_MAX_WRITE: 10G is out of range: maxWrite takes 4K to 1M'
  })
  assert.throws(() => parseOptionValue(spec('sftpConnections'), '99', originLabel(spec('sftpConnections'), 'flag')), {
    code: 'ECONFIG', message: 'flag --sftp-connections: 99 is out of range: sftpConnections takes 1 to 16'
  })
  assert.throws(() => parseOptionValue(spec('opTimeout'), 0, originLabel(spec('opTimeout'), 'config', '/c.json')), {
    code: 'ECONFIG', message: 'config file /c.json: opTimeout: 0 is out of range: opTimeout takes 1s to 1h'
  })
  assert.throws(() => parseOptionValue(spec('sftpConnections'), 0, originLabel(spec('sftpConnections'), 'preset', 'mine')), {
    code: 'ECONFIG', message: /^preset mine: sftpConnections: 0 is out of range/
  })
  // The ends of a range are in it; 0 is in it where it means "off".
  assert.equal(parseOptionValue(spec('maxWrite'), '1M', 'x'), 1024 * 1024)
  assert.equal(parseOptionValue(spec('maxWrite'), '4K', 'x'), 4096)
  assert.throws(() => parseOptionValue(spec('maxWrite'), '4095', 'x'), { code: 'ECONFIG' })
  assert.equal(parseOptionValue(spec('validateInterval'), '0', 'x'), 0)
  assert.throws(() => parseOptionValue(spec('validateInterval'), '500ms', 'x'), { message: /validateInterval takes 0 \(off\) or 1s to 1h/ })
  assert.equal(parseOptionValue(spec('sftpKeepalive'), '0', 'x'), 0)
  assert.throws(() => parseOptionValue(spec('s3PartSize'), '4M', 'x'), { message: /s3PartSize takes 5M to 5G/ })
})

test('docs/SETTINGS.md and presets/schema.json are generated from the current table', async () => {
  await promisify(execFile)(process.execPath, [path.join(root, 'scripts/gen-settings.mjs'), '--check'], { cwd: root })
})

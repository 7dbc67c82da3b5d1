// Source parsing: every local form maps to the local scheme; URLs keep their scheme; bad ones are one line.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseSource } from '../../dist/backend/source.js'

test('local forms: /path, ./path, local:/path, file:///path', () => {
  for (const [raw, want] of [['/srv/data', '/srv/data'], ['./data', path.resolve('data')], ['local:/srv/x', '/srv/x'],
    ['file:///srv/y', '/srv/y'], ['data', path.resolve('data')], ['local:rel', path.resolve('rel')]]) {
    const s = parseSource(raw)
    assert.equal(s.scheme, 'local', raw)
    assert.equal(fileURLToPath(s.url), want, raw)
  }
})

test('URL sources keep their scheme for the plugin that serves it', () => {
  assert.equal(parseSource('sftp://u@h:2222/dir').scheme, 'sftp')
  assert.equal(parseSource('s3://bucket/prefix').url.host, 'bucket')
})

test('bad sources are ECONFIG errors that do not echo passwords', () => {
  assert.throws(() => parseSource(''), { code: 'ECONFIG' })
  assert.throws(() => parseSource('file://remotehost/x'), { code: 'ECONFIG' })
  assert.throws(() => parseSource('sftp://u:secret@[bad/x'), (e: Error) => e.message.includes('***') && !e.message.includes('secret'))
})

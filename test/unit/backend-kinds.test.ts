// Backend creation as the CLI sees it (src/mount/backend.ts): every scheme's failures get the same kinds, so the
// same exit codes: a source its backend refuses to parse is configuration (3), whatever create() throws is backend
// (5). Fake definitions stand in for plugins here (error paths only); the real ones are exercised end to end in
// test/e2e/cli.test.ts, test/backend-sftp/cli.test.ts and test/backend-s3/cli.test.ts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { BackendRegistry } from '../../dist/backend/registry.js'
import { parseSource } from '../../dist/backend/source.js'
import { createBackend, validateSource } from '../../dist/mount/backend.js'
import { exitCodeFor } from '../../dist/errors.js'
import s3 from '../../plugins/backend-s3/dist/index.js'
import sftp from '../../plugins/backend-sftp/dist/index.js'
import local from '../../plugins/backend-local/dist/index.js'
import { API_VERSION } from '@fsx/sdk'

function registry (): BackendRegistry {
  const r = new BackendRegistry()
  for (const def of [local, sftp, s3]) r.register(def)
  r.register({
    apiVersion: API_VERSION,
    name: 'fake',
    schemes: ['fake'],
    summary: 'fails as told by its host name',
    validate (source) {
      if (source.url.hostname === 'malformed') throw Object.assign(new Error('fake source: no such form'), { code: 'EINVAL' })
    },
    async create (source) {
      const how = source.url.hostname
      if (how === 'refused') throw Object.assign(new Error('fake: connection refused'), { code: 'ECONNREFUSED' })
      if (how === 'config') throw Object.assign(new Error('fake: setting x is wrong'), { code: 'ECONFIG' })
      throw new TypeError('fake: a bug')
    }
  })
  return r
}

test('a malformed source of any scheme is a configuration error (exit 3) with the backend\'s own line', () => {
  const r = registry()
  for (const raw of ['s3://user@bucket/x', 's3://bucket/a//b', 's3://-/x', 'sftp://:22/x', 'sftp://u:pw@host/x', 'fake://malformed/x']) {
    assert.throws(() => validateSource(r, parseSource(raw), {}), (err: any) => {
      assert.equal(err.code, 'ECONFIG', raw)
      assert.equal(exitCodeFor(err), 3, raw)
      assert.doesNotMatch(err.message, /\n/)
      return true
    })
  }
  // A URL that does not even parse, and a scheme no backend serves, are refused the same way before.
  for (const raw of ['sftp://h:99999/x', 'zzz://host/x']) {
    assert.throws(() => validateSource(r, parseSource(raw), {}), { code: 'ECONFIG' }, raw)
  }
  // Plugin settings its validate() refuses, too.
  assert.throws(() => validateSource(r, parseSource('s3://bucket'), { s3Endpoint: 'ftp://x' }), { code: 'ECONFIG', message: /http:\/\/ or https:\/\// })
})

test('whatever create() throws is a backend error (exit 5), message unchanged; a configuration kind is kept', async () => {
  const r = registry()
  await assert.rejects(createBackend(r, parseSource('fake://refused/x'), {}), (err: any) => {
    assert.equal(err.code, 'EBACKEND')
    assert.equal(exitCodeFor(err), 5)
    assert.equal(err.message, 'fake: connection refused')
    assert.equal(err.cause.code, 'ECONNREFUSED')
    return true
  })
  await assert.rejects(createBackend(r, parseSource('fake://bug/x'), {}), { code: 'EBACKEND', message: 'fake: a bug' })
  await assert.rejects(createBackend(r, parseSource('fake://config/x'), {}), { code: 'ECONFIG' })
  await assert.rejects(createBackend(r, parseSource('fake://malformed/x'), {}), { code: 'ECONFIG' })
  // The local backend's own refusal (a missing directory) is a backend error too, like a missing bucket.
  await assert.rejects(createBackend(r, parseSource('/definitely/not/here'), {}), { code: 'EBACKEND', message: /does not exist/ })
})

// Errors: one class shaped like Node's, one errno mapping at the FUSE edge, secrets redacted.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FsxError, fsxError, errnoOf, exitCodeFor, redactSource, EXIT } from '../../dist/errors.js'
import { toErrno } from '../../dist/fuse/errno.js'

test('FsxError carries code, errno, path and op like a Node system error', () => {
  const e = fsxError('ENOENT', 'no such file', { path: '/a', op: 'stat' })
  assert.ok(e instanceof FsxError)
  assert.equal(e.code, 'ENOENT')
  assert.equal(e.errno, 2)
  assert.equal(e.path, '/a')
  assert.equal(e.syscall, 'stat')
})

test('toErrno maps errno codes to negative numbers', () => {
  const cases: Record<string, number> = {
    ENOENT: -2, EIO: -5, EACCES: -13, EEXIST: -17, EXDEV: -18, ENOTDIR: -20, EISDIR: -21, EINVAL: -22,
    ENOSPC: -28, ENAMETOOLONG: -36, ENOTEMPTY: -39, ENODATA: -61, ETIMEDOUT: -110, ENOTSUP: -95, EBADF: -9
  }
  for (const [code, n] of Object.entries(cases)) assert.equal(toErrno(Object.assign(new Error(code), { code })), n, code)
})

test('an error without an errno code becomes EIO and is reported as unexpected', () => {
  const seen: unknown[] = []
  assert.equal(toErrno(new TypeError('bug'), e => seen.push(e)), -5)
  assert.equal(seen.length, 1)
  assert.equal(toErrno(Object.assign(new Error('x'), { code: 'ENOENT' }), e => seen.push(e)), -2)
  assert.equal(seen.length, 1)
  assert.equal(errnoOf(null), 5)
})

test('usage and environment problems get distinct exit codes', () => {
  assert.equal(exitCodeFor({ code: 'EUSAGE' }), EXIT.usage)
  assert.equal(exitCodeFor({ code: 'ECONFIG' }), EXIT.config)
  assert.equal(exitCodeFor({ code: 'ENOFUSE' }), EXIT.environment)
  assert.equal(exitCodeFor({ code: 'ENOENT' }), EXIT.failure)
})

test('passwords and signed-query secrets are redacted from sources', () => {
  assert.equal(redactSource('sftp://bob:hunter2@host/dir'), 'sftp://bob:***@host/dir')
  assert.equal(redactSource('s3://b/p?secret=abc&region=x'), 's3://b/p?secret=***&region=x')
  assert.equal(redactSource('/plain/path'), '/plain/path')
})

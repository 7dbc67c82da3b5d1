// Errors: one class shaped like Node's, one errno mapping at the FUSE edge, secrets redacted.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FsxError, fsxError, errnoOf, exitCodeFor, redactSource, withKind, EXIT } from '../../dist/errors.js'
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

test('one mapping from error kind to exit code: 1 general, 2 usage, 3 configuration, 4 environment, 5 backend', () => {
  assert.deepEqual(EXIT, { ok: 0, failure: 1, usage: 2, config: 3, environment: 4, backend: 5 })
  assert.equal(exitCodeFor({ code: 'EUSAGE' }), 2)
  assert.equal(exitCodeFor({ code: 'ECONFIG' }), 3)
  for (const code of ['ENOFUSE', 'ENOLIBFUSE', 'EMOUNTED', 'ESTALE_MOUNT', 'EMOUNTPOINT', 'ENOTMOUNTED', 'ENOTFSX']) {
    assert.equal(exitCodeFor({ code }), 4, code)
  }
  assert.equal(exitCodeFor({ code: 'EBACKEND' }), 5)
  for (const e of [{ code: 'ENOENT' }, { code: 'EIO' }, new TypeError('bug'), null, 'text']) assert.equal(exitCodeFor(e), 1)
})

test('an error relayed from the --daemon child keeps the exit code the child chose', () => {
  assert.equal(exitCodeFor(new FsxError('EMOUNTED', 'already mounted', { exitCode: 4 })), 4)
  assert.equal(exitCodeFor(new FsxError('EIO', 'killed by SIGKILL', { exitCode: 1 })), 1)
})

test('withKind re-labels an error for the CLI, keeping its message, hint and cause', () => {
  const refused = Object.assign(new Error('sftp: cannot connect to [127.0.0.1]:1: connection refused'), { code: 'ECONNREFUSED' })
  const e = withKind('EBACKEND', refused)
  assert.equal(e.code, 'EBACKEND')
  assert.equal(e.message, refused.message)
  assert.equal(e.cause, refused)
  assert.equal(withKind('ECONFIG', Object.assign(new Error('bad port'), { code: 'EINVAL', hint: 'write it so' })).hint, 'write it so')
  // A kind the thrower chose on purpose is kept: a plugin may know its error is configuration, not backend.
  const config = new FsxError('ECONFIG', 'bad setting')
  assert.equal(withKind('EBACKEND', config), config)
  assert.equal(withKind('EBACKEND', Object.assign(new Error('plain'), { code: 'ECONFIG' })).code, 'ECONFIG')
  assert.equal(withKind('ECONFIG', new FsxError('EUSAGE', 'x')).code, 'EUSAGE')
  assert.equal(withKind('EBACKEND', 'a string').message, 'a string')
})

test('passwords and signed-query secrets are redacted from sources', () => {
  assert.equal(redactSource('sftp://bob:hunter2@host/dir'), 'sftp://bob:***@host/dir')
  assert.equal(redactSource('s3://b/p?secret=abc&region=x'), 's3://b/p?secret=***&region=x')
  assert.equal(redactSource('/plain/path'), '/plain/path')
})

// Kernel options passed to libfuse, and the patched utimens time decoding.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { fuseOptionList, decodeUtime } from '../../dist/fuse/fuse-native.js'
import { mountOptionsFrom } from '../../dist/mount/service.js'

const base = {
  attrTtl: 5000, entryTtl: 5000, negativeTtl: 1000, readahead: 262144, maxRead: 131072, maxWrite: 131072,
  consistency: 'session', allowOther: false, defaultPermissions: false, autoUnmount: false, opTimeout: 120000
}

test('preset values become libfuse options, including ones fuse-native cannot pass', () => {
  const o = fuseOptionList(mountOptionsFrom(base, 'fsx:local:/data', true))
  for (const want of ['big_writes', 'max_write=131072', 'max_read=131072', 'max_readahead=262144', 'entry_timeout=5',
    'attr_timeout=5', 'negative_timeout=1', 'auto_cache', 'use_ino', 'subtype=fsx', 'fsname=fsx:local:/data']) {
    assert.ok(o.includes(want), `has ${want}: ${o.join(',')}`)
  }
  assert.ok(!o.includes('kernel_cache'))
})

test('a zero TTL is passed as 0, not dropped', () => {
  const o = fuseOptionList(mountOptionsFrom({ ...base, attrTtl: 0, entryTtl: 0, negativeTtl: 0 }, 'x', false))
  assert.ok(o.includes('attr_timeout=0') && o.includes('entry_timeout=0') && o.includes('negative_timeout=0'))
  assert.ok(!o.includes('use_ino'))
})

test('consistency picks the page-cache policy', () => {
  assert.ok(fuseOptionList(mountOptionsFrom({ ...base, consistency: 'eventual' }, 'x', false)).includes('kernel_cache'))
  const strong = fuseOptionList(mountOptionsFrom({ ...base, consistency: 'strong' }, 'x', false))
  assert.ok(!strong.includes('kernel_cache') && !strong.includes('auto_cache'))
})

test('allow_other, default_permissions and auto_unmount follow their settings', () => {
  const o = fuseOptionList(mountOptionsFrom({ ...base, allowOther: true, defaultPermissions: true, autoUnmount: true }, 'x', false))
  assert.ok(o.includes('allow_other') && o.includes('default_permissions') && o.includes('auto_unmount'))
})

test('commas and spaces in the fsname cannot inject options', () => {
  const o = fuseOptionList(mountOptionsFrom(base, 'fsx:local:/a,allow_other b', false))
  assert.ok(!o.includes('allow_other'))
})

test('utimens times decode UTIME_NOW, UTIME_OMIT, and signed milliseconds', () => {
  assert.equal(decodeUtime(0xFFFFFFFF, 0xFFFFFFFF), 'now')
  assert.equal(decodeUtime(0xFFFFFFFE, 0xFFFFFFFF), undefined)
  assert.equal(decodeUtime(1000000000 % 2 ** 32, Math.floor(1000000000 / 2 ** 32)), 1000000000)
  const t = 1795255770123
  assert.equal(decodeUtime(t % 2 ** 32, Math.floor(t / 2 ** 32)), t)
  assert.equal(decodeUtime(2 ** 32 - 1000, 0xFFFFFFFF - 0), 'now' === 'now' ? decodeUtime(2 ** 32 - 1000, 0xFFFFFFFF) : 0)
  assert.equal(decodeUtime(2 ** 32 - 1000, 0xFFFFFFFF), -1000)
})

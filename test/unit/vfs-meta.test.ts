// The VFS's metadata caches end to end on an in-memory backend: what is served from memory, and that every
// mutation through the VFS invalidates exactly what it changed before it resolves. Time is faked, never slept.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { constants } from 'node:fs'
import { Vfs } from '../../dist/vfs/vfs.js'
import { FakeBackend } from './helpers/fake-backend.ts'
import { tempDirs } from './helpers/tmp.ts'

const tempDir = tempDirs()

function clock (): { now: () => number, advance: (ms: number) => void } {
  let t = 1000
  return { now: () => t, advance: ms => { t += ms } }
}

async function setup (o: { consistency?: 'strong' | 'session' | 'eventual', randomWrite?: boolean } = {}) {
  const c = clock()
  const b = new FakeBackend({ randomWrite: o.randomWrite ?? true })
  const vfs = new Vfs(b as any, {
    writeback: false,
    consistency: o.consistency ?? 'session',
    xattrCacheSize: 100,
    xattrCacheTtlMs: 5000,
    attrCacheSize: 1000,
    attrCacheTtlMs: 5000,
    dirCacheSize: 100,
    dirCacheTtlMs: 5000,
    negativeCacheSize: 100,
    negativeCacheTtlMs: 5000,
    cacheDir: await tempDir('fsx-vfs-meta-'),
    now: c.now
  })
  return { b, vfs, c }
}

const names = async (vfs: Vfs, p: string): Promise<string[]> => (await vfs.readdir(p)).names.sort()
const RW = constants.O_RDWR

test('getattr and readdir are served from memory, and a listing primes the attributes of its entries', async () => {
  const { b, vfs } = await setup()
  b.putDir('/d')
  for (const n of ['a', 'b', 'c']) b.put(`/d/${n}`, n)
  assert.deepEqual(await names(vfs, '/d'), ['a', 'b', 'c'])
  for (const n of ['a', 'b', 'c']) assert.equal((await vfs.getattr(`/d/${n}`)).size, 1)
  await names(vfs, '/d')
  await vfs.getattr('/d')
  await vfs.getattr('/d')
  assert.equal(b.count('list'), 1)
  assert.equal(b.count('stat'), 1, 'only /d itself was stat-ed')
  const s = vfs.stats()
  assert.ok(s.caches.attr.hits >= 4)
  assert.equal(s.caches.dir.hits, 1)
  assert.equal(s.caches.dir.entries, 1)
})

test('a missing name is answered from the negative cache until something creates it through the VFS', async () => {
  const { b, vfs } = await setup()
  await assert.rejects(vfs.getattr('/f'), { code: 'ENOENT' })
  await assert.rejects(vfs.getattr('/f'), { code: 'ENOENT' })
  assert.equal(b.count('stat'), 1)
  const fh = await vfs.create('/f', 0o644)
  await vfs.release('/f', fh)
  assert.equal((await vfs.getattr('/f')).kind, 'file')
})

test('a change made outside is seen after the TTL, not before', async () => {
  const { b, vfs, c } = await setup()
  b.put('/f', 'abc')
  assert.equal((await vfs.getattr('/f')).size, 3)
  b.put('/f', 'abcdef')
  c.advance(4999)
  assert.equal((await vfs.getattr('/f')).size, 3)
  c.advance(2)
  assert.equal((await vfs.getattr('/f')).size, 6)
})

/** Every mutation, each run against primed caches (attributes of the paths, listings of the parents). */
const mutations: Array<{ name: string, prep?: (b: FakeBackend) => void, paths: string[], run: (vfs: Vfs) => Promise<unknown>, check: (vfs: Vfs) => Promise<void> }> = [
  {
    name: 'create',
    paths: ['/d/new'],
    run: async vfs => vfs.release('/d/new', await vfs.create('/d/new', 0o600)),
    check: async vfs => {
      assert.equal((await vfs.getattr('/d/new')).kind, 'file')
      assert.ok((await names(vfs, '/d')).includes('new'))
    }
  },
  {
    name: 'write through a handle',
    paths: ['/d/f'],
    run: async vfs => {
      const fh = await vfs.open('/d/f', RW)
      await vfs.write('/d/f', fh, Buffer.from('0123456789'), 10, 0)
      assert.equal((await vfs.fgetattr('/d/f', fh)).size, 10, 'seen while still open')
      await vfs.release('/d/f', fh)
    },
    check: async vfs => assert.equal((await vfs.getattr('/d/f')).size, 10)
  },
  {
    name: 'open with O_TRUNC',
    paths: ['/d/f'],
    run: async vfs => vfs.release('/d/f', await vfs.open('/d/f', RW | constants.O_TRUNC)),
    check: async vfs => assert.equal((await vfs.getattr('/d/f')).size, 0)
  },
  {
    name: 'truncate',
    paths: ['/d/f'],
    run: async vfs => vfs.truncate('/d/f', 1),
    check: async vfs => assert.equal((await vfs.getattr('/d/f')).size, 1)
  },
  {
    name: 'ftruncate',
    paths: ['/d/f'],
    run: async vfs => {
      const fh = await vfs.open('/d/f', RW)
      await vfs.ftruncate('/d/f', fh, 7)
      await vfs.release('/d/f', fh)
    },
    check: async vfs => assert.equal((await vfs.getattr('/d/f')).size, 7)
  },
  {
    name: 'unlink',
    paths: ['/d/f'],
    run: async vfs => vfs.unlink('/d/f'),
    check: async vfs => {
      await assert.rejects(vfs.getattr('/d/f'), { code: 'ENOENT' })
      assert.ok(!(await names(vfs, '/d')).includes('f'))
    }
  },
  {
    name: 'rename of a file over another, across directories',
    paths: ['/d/f', '/e/g'],
    run: async vfs => vfs.rename('/d/f', '/e/g'),
    check: async vfs => {
      await assert.rejects(vfs.getattr('/d/f'), { code: 'ENOENT' })
      assert.equal((await vfs.getattr('/e/g')).size, 3, 'the target now has the source\'s attributes')
      assert.deepEqual(await names(vfs, '/d'), ['sub'])
      assert.deepEqual(await names(vfs, '/e'), ['g'])
    }
  },
  {
    name: 'rename of a directory',
    paths: ['/d/sub', '/d/sub/x', '/e/sub', '/e/sub/x'],
    run: async vfs => vfs.rename('/d/sub', '/e/sub'),
    check: async vfs => {
      await assert.rejects(vfs.getattr('/d/sub/x'), { code: 'ENOENT' })
      await assert.rejects(vfs.readdir('/d/sub'), { code: 'ENOENT' })
      assert.equal((await vfs.getattr('/e/sub/x')).size, 1)
      assert.deepEqual(await names(vfs, '/e/sub'), ['x'])
      assert.deepEqual(await names(vfs, '/d'), ['f'])
      assert.deepEqual(await names(vfs, '/e'), ['g', 'sub'])
    }
  },
  {
    name: 'mkdir',
    paths: ['/d/m'],
    run: async vfs => vfs.mkdir('/d/m', 0o755),
    check: async vfs => {
      assert.equal((await vfs.getattr('/d/m')).kind, 'dir')
      assert.ok((await names(vfs, '/d')).includes('m'))
    }
  },
  {
    name: 'rmdir',
    prep: b => b.drop('/d/sub/x'),
    paths: ['/d/sub'],
    run: async vfs => vfs.rmdir('/d/sub'),
    check: async vfs => {
      await assert.rejects(vfs.getattr('/d/sub'), { code: 'ENOENT' })
      assert.deepEqual(await names(vfs, '/d'), ['f'])
    }
  },
  {
    name: 'chmod',
    paths: ['/d/f'],
    run: async vfs => vfs.chmod('/d/f', 0o600),
    check: async vfs => assert.equal((await vfs.getattr('/d/f')).mode & 0o777, 0o600)
  },
  {
    name: 'chown',
    paths: ['/d/f'],
    run: async vfs => vfs.chown('/d/f', 12, 34),
    check: async vfs => assert.equal((await vfs.getattr('/d/f')).uid, 12)
  },
  {
    name: 'utimens',
    paths: ['/d/f'],
    run: async vfs => vfs.utimens('/d/f', undefined, 123_000),
    check: async vfs => assert.equal((await vfs.getattr('/d/f')).mtimeMs, 123_000)
  },
  {
    name: 'symlink',
    paths: ['/d/l'],
    run: async vfs => vfs.symlink('f', '/d/l'),
    check: async vfs => {
      assert.equal((await vfs.getattr('/d/l')).kind, 'symlink')
      assert.ok((await names(vfs, '/d')).includes('l'))
    }
  },
  {
    name: 'link',
    paths: ['/d/f', '/e/h'],
    run: async vfs => vfs.link('/d/f', '/e/h'),
    check: async vfs => {
      assert.equal((await vfs.getattr('/d/f')).nlink, 2)
      assert.equal((await vfs.getattr('/e/h')).nlink, 2)
      assert.ok((await names(vfs, '/e')).includes('h'))
    }
  },
  {
    name: 'setxattr',
    paths: ['/d/f'],
    run: async vfs => vfs.setxattr('/d/f', 'user.k', Buffer.from('v'), 0),
    check: async vfs => {
      assert.equal((await vfs.getattr('/d/f')).ctimeMs, 111)
      assert.deepEqual(await vfs.getxattr('/d/f', 'user.k'), Buffer.from('v'))
    }
  },
  {
    name: 'removexattr',
    prep: b => { void b.setxattr('/d/f', 'user.k', Buffer.from('v')) },
    paths: ['/d/f'],
    run: async vfs => vfs.removexattr('/d/f', 'user.k'),
    check: async vfs => {
      assert.equal((await vfs.getattr('/d/f')).ctimeMs, 222)
      await assert.rejects(vfs.getxattr('/d/f', 'user.k'), { code: 'ENODATA' })
    }
  }
]

for (const randomWrite of [true, false]) {
  for (const m of mutations) {
    if (!randomWrite && ['symlink', 'link', 'chown', 'setxattr', 'removexattr'].includes(m.name)) continue
    test(`${m.name} invalidates what it changed before it resolves (${randomWrite ? 'random-write' : 'whole-object'} backend)`, async () => {
      const { b, vfs } = await setup({ randomWrite })
      b.putDir('/d'); b.putDir('/e'); b.putDir('/d/sub')
      b.put('/d/f', 'abc'); b.put('/d/sub/x', 'x'); b.put('/e/g', 'gg')
      m.prep?.(b)
      // Prime: listings of every directory involved, attributes and negative answers of every path.
      for (const d of ['/', '/d', '/e', '/d/sub']) await vfs.readdir(d).catch(() => {})
      for (const p of m.paths) await vfs.getattr(p).catch(() => {})
      for (const p of m.paths) await vfs.getxattr(p, 'user.k').catch(() => {})
      await m.run(vfs)
      await m.check(vfs)
    })
  }
}

test('a whole-object upload at close invalidates the attributes it changed', async () => {
  const { b, vfs } = await setup({ randomWrite: false })
  b.put('/f', 'abc')
  assert.equal((await vfs.getattr('/f')).size, 3)
  const fh = await vfs.open('/f', RW)
  await vfs.write('/f', fh, Buffer.from('abcdefgh'), 8, 0)
  assert.equal((await vfs.getattr('/f')).size, 8, 'the staged size while open')
  await vfs.flush('/f', fh)
  await vfs.release('/f', fh)
  assert.equal((await vfs.getattr('/f')).size, 8)
  assert.equal(b.content('/f')?.toString(), 'abcdefgh')
})

test('strong consistency asks the backend on every lookup', async () => {
  const { b, vfs } = await setup({ consistency: 'strong' })
  b.put('/f', 'abc')
  await vfs.getattr('/f')
  await vfs.getattr('/f')
  await vfs.readdir('/')
  await vfs.readdir('/')
  assert.equal(b.count('stat'), 2)
  assert.equal(b.count('list'), 2)
})

test('session consistency revalidates at open (close-to-open); eventual serves the open from the cache', async () => {
  for (const randomWrite of [true, false]) {
    const s = await setup({ consistency: 'session', randomWrite })
    s.b.put('/f', 'abc')
    await s.vfs.getattr('/f')
    s.b.put('/f', 'abcdef')
    assert.equal((await s.vfs.getattr('/f')).size, 3, 'a lookup is served from the cache')
    const fh = await s.vfs.open('/f', constants.O_RDONLY)
    assert.equal((await s.vfs.fgetattr('/f', fh)).size, 6, 'after an open the new size is seen')
    await s.vfs.release('/f', fh)

    const e = await setup({ consistency: 'eventual', randomWrite: false })
    e.b.put('/f', 'abc')
    await e.vfs.getattr('/f')
    const before = e.b.count('stat')
    e.b.put('/f', 'abcdef')
    const fh2 = await e.vfs.open('/f', constants.O_RDONLY)
    assert.equal(e.b.count('stat'), before, 'eventual: the open made no backend stat')
    assert.equal((await e.vfs.fgetattr('/f', fh2)).size, 3)
    await e.vfs.release('/f', fh2)
  }
})

test('invalidate() forgets a subtree, or everything', async () => {
  const { b, vfs } = await setup()
  b.putDir('/d'); b.put('/d/f', 'abc'); b.put('/g', 'g')
  await vfs.getattr('/d/f'); await vfs.getattr('/g')
  b.put('/d/f', 'abcd'); b.put('/g', 'gg')
  vfs.invalidate('/d')
  assert.equal((await vfs.getattr('/d/f')).size, 4)
  assert.equal((await vfs.getattr('/g')).size, 1)
  vfs.invalidate()
  assert.equal((await vfs.getattr('/g')).size, 2)
})

test('stats() keeps the shape fsx stats reads', async () => {
  const { vfs } = await setup()
  const s = vfs.stats()
  for (const layer of ['attr', 'dir', 'negative', 'dataMemory', 'dataDisk', 'xattr']) {
    const c = s.caches[layer]
    assert.ok(c, layer)
    for (const k of ['hits', 'misses', 'evictions', 'entries'] as const) assert.equal(typeof c[k], 'number', `${layer}.${k}`)
  }
  assert.equal(s.openFiles, 0)
  assert.deepEqual(s.readahead, { triggered: 0, bytesUsed: 0, bytesWasted: 0 })
  assert.equal(typeof s.memory!.usedBytes, 'number')
  assert.equal(typeof s.memory!.budgetBytes, 'number')
})

test('stale-if-error: with the backend down, cached attributes, listings and opens keep answering, and stats say so', async () => {
  const { b, vfs, c } = await setupStale(60_000)
  b.putDir('/d')
  b.put('/d/a', 'hello')
  assert.deepEqual(await names(vfs, '/d'), ['a'])
  assert.equal((await vfs.getattr('/d/a')).size, 5)
  b.put('/fresh', 'f')
  c.advance(10_000) // every TTL has passed
  await vfs.getattr('/fresh') // cached now, fresh for 5 s
  b.down = 'ETIMEDOUT'
  assert.equal((await vfs.getattr('/d/a')).size, 5, 'expired attributes answer while the backend times out')
  await vfs.getattr('/fresh')
  assert.equal(vfs.stats().stale!.backendFailing, true, 'a cache hit is no answer from the backend')
  assert.deepEqual(await names(vfs, '/d'), ['a'], 'and the expired listing')
  const fh = await vfs.open('/d/a', constants.O_RDONLY).catch((e: Error) => e)
  // The fake backend's file handles need the backend: the open itself got past revalidation on the stale stat.
  assert.ok(typeof fh === 'number' || (fh as any).code === 'ETIMEDOUT')
  await assert.rejects(vfs.getattr('/d/never-seen'), { code: 'ETIMEDOUT' }, 'nothing cached: the error, not a guess')
  let s = vfs.stats().stale!
  assert.ok(s.serves >= 2, `counted (${s.serves})`)
  assert.equal(s.backendFailing, true)
  assert.equal(s.lastError, 'ETIMEDOUT')

  b.down = 'ENOENT'
  await assert.rejects(vfs.getattr('/d/a'), { code: 'ENOENT' }, 'an answer of the backend is never overridden')
  b.down = undefined
  vfs.invalidate('/d/a') // that ENOENT was cached as a negative answer
  assert.equal((await vfs.getattr('/d/a')).size, 5)
  s = vfs.stats().stale!
  assert.equal(s.backendFailing, false, 'the backend answered: stale serving ended')

  c.advance(120_000)
  b.down = 'EIO'
  await assert.rejects(vfs.getattr('/d/a'), { code: 'EIO' }, 'past staleIfError the failure is reported')
  await vfs.close()
})

test('stale-if-error is off with consistency=strong and with staleIfError=0', async () => {
  for (const o of [{ consistency: 'strong' as const, stale: 60_000 }, { consistency: 'session' as const, stale: 0 }]) {
    const { b, vfs, c } = await setupStale(o.stale, o.consistency)
    b.put('/a', 'x')
    await vfs.getattr('/a')
    c.advance(10_000)
    b.down = 'ETIMEDOUT'
    await assert.rejects(vfs.getattr('/a'), { code: 'ETIMEDOUT' })
    await vfs.close()
  }
})

async function setupStale (staleIfErrorMs: number, consistency: 'strong' | 'session' | 'eventual' = 'session') {
  const c = clock()
  const b = new FakeBackend({ randomWrite: false })
  const vfs = new Vfs(b as any, {
    writeback: false, consistency, xattrCacheSize: 0, xattrCacheTtlMs: 0,
    attrCacheSize: 1000, attrCacheTtlMs: 5000, dirCacheSize: 100, dirCacheTtlMs: 5000, negativeCacheSize: 100, negativeCacheTtlMs: 5000,
    staleIfErrorMs, cacheDir: await tempDir('fsx-vfs-stale-'), now: c.now
  })
  return { b, vfs, c }
}

test('the background validator refreshes hot attributes and drops files changed or removed behind the mount', async () => {
  const c = clock()
  const b = new FakeBackend({ randomWrite: false })
  const vfs = new Vfs(b as any, {
    writeback: false, consistency: 'eventual', xattrCacheSize: 0, xattrCacheTtlMs: 0,
    attrCacheSize: 1000, attrCacheTtlMs: 5000, dirCacheSize: 100, dirCacheTtlMs: 5000, negativeCacheSize: 100, negativeCacheTtlMs: 5000,
    dataCacheMemory: 1024 * 1024, validateIntervalMs: 2000, cacheDir: await tempDir('fsx-vfs-validate-'), now: c.now
  })
  const readAll = async (p: string): Promise<string> => {
    const fh = await vfs.open(p, constants.O_RDONLY)
    const buf = Buffer.alloc(100)
    const n = await vfs.read(p, fh, buf, 100, 0)
    await vfs.release(p, fh)
    return buf.subarray(0, n).toString()
  }
  b.put('/a', 'old a')
  b.put('/b', 'b')
  b.put('/c', 'c')
  for (const p of ['/a', '/b', '/c']) await vfs.getattr(p)
  assert.equal(await readAll('/a'), 'old a')

  let r = await vfs.validate()
  assert.equal(r.checked, 0, 'nothing expires within the interval yet')
  c.advance(3500)
  const stats = b.count('stat')
  r = await vfs.validate()
  assert.deepEqual({ checked: r.checked, changed: r.changed }, { checked: 3, changed: 0 })
  assert.equal(b.count('stat'), stats + 3)
  c.advance(3000) // past the original TTL: the refreshed entries still answer
  await vfs.getattr('/b')
  assert.equal(b.count('stat'), stats + 3, 'refreshed in the background: the lookup did not wait for the backend')

  b.put('/a', 'new a!')
  b.drop('/c')
  c.advance(1500) // within the interval of their expiry (refreshed at 3500 for 5 s)
  r = await vfs.validate()
  assert.equal(r.changed, 2, 'one changed, one gone')
  assert.equal(await readAll('/a'), 'new a!', 'the data cache no longer serves the old content')
  await assert.rejects(vfs.getattr('/c'), { code: 'ENOENT' })
  assert.deepEqual(vfs.stats().validator, { rounds: 3, checked: 6, changed: 2, errors: 0 })

  // A file open for writing is this mount's to say: the validator leaves it alone.
  const fh = await vfs.open('/b', constants.O_RDWR)
  c.advance(4000) // /a and /b both expire within the interval now
  const before = b.count('stat')
  r = await vfs.validate()
  assert.equal(r.checked, 1, 'only /a was checked')
  assert.equal(b.count('stat'), before + 1)
  await vfs.release('/b', fh)
  await vfs.close()
})

// Each consistency level through a real mount of the local backend: a change made directly in the backing
// directory becomes visible within the level's promise, and not later. The kernel's own caches are turned off
// (--attr-ttl 0 --entry-ttl 0 --negative-ttl 0) so what is measured is fsx's user-space caches, with short TTLs.
//
// Timing, so that a slow machine can neither fail these checks nor skip them silently:
// - "within the TTL": an entry is cached no earlier than the start of the lookup that cached it (t0), so a lookup
//   that has *returned* before t0 + TTL was answered while the entry was fresh. When the machine was too slow for
//   that, the check is reported as skipped with the time it took (raise FSX_TEST_TIME_FACTOR).
// - "after the TTL": every entry was cached before the last caching call returned (t1), so from t1 + TTL (+ slack
//   for the two processes' clocks) on, every one of them has expired, however slow the machine.
// The TTL is scaled by FSX_TEST_TIME_FACTOR so that on a slow machine the first kind still runs.
import t, { type Test } from 'tap'
import path from 'node:path'
import { readFile, readdir, stat, writeFile, appendFile } from 'node:fs/promises'
import { fuseAvailable, mountFsx, tempDir } from '../helpers/mount.js'
import { scaled } from '../helpers/timing.js'

const TTL_MS = scaled(3000)
/** Slack on top of a TTL before "must be visible now" is asserted: only clock reading differences, not load. */
const SLACK_MS = 300
const NO_KERNEL_CACHE = ['--attr-ttl', '0', '--entry-ttl', '0', '--negative-ttl', '0']
const SHORT_TTLS = ['--attr-cache-ttl', `${TTL_MS}ms`, '--dir-cache-ttl', `${TTL_MS}ms`, '--negative-cache-ttl', `${TTL_MS}ms`]

const sleepUntil = async (deadline: number): Promise<void> => {
  const ms = deadline - Date.now()
  if (ms > 0) await new Promise(resolve => setTimeout(resolve, ms))
}
const exists = async (p: string): Promise<boolean> => await stat(p).then(() => true, () => false)

/**
 * Runs `checks` (lookups whose answers may come from entries cached at or after `t0`) and asserts them only if
 * they all returned within the TTL; otherwise reports them as skipped, with the reason.
 */
async function withinTtl (t: Test, t0: number, what: string, checks: () => Promise<Array<() => void>>): Promise<void> {
  const asserts = await checks()
  const took = Date.now() - t0
  if (took < TTL_MS) for (const a of asserts) a()
  else t.pass(what, { skip: `not checked: the machine took ${took} ms, past the ${TTL_MS} ms TTL (raise FSX_TEST_TIME_FACTOR)` })
}

if (fuseAvailable(t)) {
  t.test('strong: every lookup, listing and open sees a change made in the backing directory at once', async t => {
    const data = await tempDir(t, 'fsx-data-')
    await writeFile(path.join(data, 'f'), 'abc')
    const m = await mountFsx(t, data, ['--preset', 'safe', ...NO_KERNEL_CACHE, ...SHORT_TTLS])
    const mnt = m.mountpoint
    t.equal((await stat(path.join(mnt, 'f'))).size, 3)
    t.equal(await exists(path.join(mnt, 'new')), false)
    t.same(await readdir(mnt), ['f'])
    t.equal(await readFile(path.join(mnt, 'f'), 'utf8'), 'abc')

    await writeFile(path.join(data, 'f'), 'abcdef')
    await writeFile(path.join(data, 'new'), 'n')
    t.equal((await stat(path.join(mnt, 'f'))).size, 6, 'new size at the next lookup')
    t.equal(await exists(path.join(mnt, 'new')), true, 'a name looked up in vain is found at the next lookup')
    t.same((await readdir(mnt)).sort(), ['f', 'new'], 'the next listing has it')
    t.equal(await readFile(path.join(mnt, 'f'), 'utf8'), 'abcdef', 'the next open reads the new content')
    t.equal(await m.stop(), 0)
  })

  t.test('session: an open sees the change at once (close-to-open); lookups and listings within the TTL', async t => {
    const data = await tempDir(t, 'fsx-data-')
    await writeFile(path.join(data, 'f'), 'abc')
    await writeFile(path.join(data, 'g'), 'abc')
    const m = await mountFsx(t, data, ['--preset', 'balanced', ...NO_KERNEL_CACHE, ...SHORT_TTLS])
    const mnt = m.mountpoint
    const t0 = Date.now()
    t.equal((await stat(path.join(mnt, 'f'))).size, 3)
    t.equal((await stat(path.join(mnt, 'g'))).size, 3)
    t.equal(await exists(path.join(mnt, 'new')), false)
    t.same((await readdir(mnt)).sort(), ['f', 'g'])
    t.equal(await readFile(path.join(mnt, 'g'), 'utf8'), 'abc')
    const t1 = Date.now()

    await appendFile(path.join(data, 'f'), 'def')
    await writeFile(path.join(data, 'g'), 'ABCDEFG')
    await writeFile(path.join(data, 'new'), 'n')
    await withinTtl(t, t0, 'within the TTL a lookup is served from the cache', async () => {
      const size = (await stat(path.join(mnt, 'f'))).size
      return [() => t.equal(size, 3, 'within the TTL a lookup is served from the cache')]
    })
    // After the lookup above: an open revalidates whatever the caches hold.
    t.equal(await readFile(path.join(mnt, 'g'), 'utf8'), 'ABCDEFG', 'open revalidates: the new content at once')
    await sleepUntil(t1 + TTL_MS + SLACK_MS)
    t.equal((await stat(path.join(mnt, 'f'))).size, 6, 'after the TTL the new size')
    t.equal(await exists(path.join(mnt, 'new')), true, 'after the negative TTL the new name')
    t.same((await readdir(mnt)).sort(), ['f', 'g', 'new'], 'after the listing TTL the new listing')
    t.equal(await m.stop(), 0)
  })

  t.test('eventual: lookups, listings and appended data within the TTLs', async t => {
    const data = await tempDir(t, 'fsx-data-')
    await writeFile(path.join(data, 'f'), 'abc')
    const m = await mountFsx(t, data, ['--preset', 'high-performance', ...NO_KERNEL_CACHE, ...SHORT_TTLS])
    const mnt = m.mountpoint
    const t0 = Date.now()
    t.equal((await stat(path.join(mnt, 'f'))).size, 3)
    t.equal(await exists(path.join(mnt, 'new')), false)
    t.same(await readdir(mnt), ['f'])
    t.equal(await readFile(path.join(mnt, 'f'), 'utf8'), 'abc')
    const t1 = Date.now()

    await appendFile(path.join(data, 'f'), 'def')
    await writeFile(path.join(data, 'new'), 'n')
    await withinTtl(t, t0, 'within the TTL lookups and negative lookups are served from the cache', async () => {
      const size = (await stat(path.join(mnt, 'f'))).size
      const found = await exists(path.join(mnt, 'new'))
      return [
        () => t.equal(size, 3, 'within the TTL a lookup is served from the cache'),
        () => t.equal(found, false, 'and so is a negative answer')
      ]
    })
    await sleepUntil(t1 + TTL_MS + SLACK_MS)
    t.equal((await stat(path.join(mnt, 'f'))).size, 6, 'after the TTL the new size')
    t.equal(await readFile(path.join(mnt, 'f'), 'utf8'), 'abcdef', 'and the appended data')
    t.equal(await exists(path.join(mnt, 'new')), true)
    t.same((await readdir(mnt)).sort(), ['f', 'new'])
    t.equal(await m.stop(), 0)
  })

  t.test('changes made through the mount are seen at once under every level, whatever the TTLs', async t => {
    for (const preset of ['balanced', 'high-performance']) {
      const data = await tempDir(t, 'fsx-data-')
      const m = await mountFsx(t, data, ['--preset', preset, '--attr-cache-ttl', '1h', '--dir-cache-ttl', '1h', '--negative-cache-ttl', '1h'])
      const mnt = m.mountpoint
      t.equal(await exists(path.join(mnt, 'f')), false)
      t.same(await readdir(mnt), [])
      await writeFile(path.join(mnt, 'f'), 'abc')
      t.equal((await stat(path.join(mnt, 'f'))).size, 3, `${preset}: created file found`)
      t.same(await readdir(mnt), ['f'], `${preset}: listing updated`)
      await appendFile(path.join(mnt, 'f'), 'def')
      t.equal((await stat(path.join(mnt, 'f'))).size, 6, `${preset}: size after append`)
      t.equal(await m.stop(), 0)
    }
  })
}

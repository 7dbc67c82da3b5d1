// The test harness itself (test/helpers/mount.ts, timing.ts): a test's temp dirs are gone after it, a mount left
// inside one is unmounted rather than removed through, waitUntil says what it waited for, and testSeeds gives the
// fixed seeds plus one printed extra.
import t from 'tap'
import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { isMounted, run, tempDir } from '../helpers/mount.js'
import { TIME_FACTOR, scaled, testSeeds, waitUntil } from '../helpers/timing.js'

t.test('a temp dir made with tempDir(t) is removed after its test, contents and all', async t => {
  let dir = ''
  await t.test('makes one', async t => {
    dir = await tempDir(t, 'fsx-harness-')
    await mkdir(path.join(dir, 'sub'))
    await writeFile(path.join(dir, 'sub', 'f'), 'x')
    t.ok(existsSync(path.join(dir, 'sub', 'f')))
  })
  t.match(path.basename(dir), /^fsx-harness-/)
  t.notOk(existsSync(dir), `${dir} is gone once the test that made it ended`)
})

t.test('a mount left inside a temp dir is unmounted, never removed through', async t => {
  if (process.getuid?.() !== 0) {
    if (process.env.CI === 'true') t.fail('this test mounts a tmpfs: run the suite as root')
    else t.pass('mount inside a temp dir', { skip: 'not root: cannot mount a tmpfs' })
    return
  }
  let dir = ''
  let inner = ''
  await t.test('leaves a tmpfs mounted inside', async t => {
    dir = await tempDir(t, 'fsx-harness-')
    inner = path.join(dir, 'm')
    await mkdir(inner)
    const r = await run('mount', ['-t', 'tmpfs', 'fsx-harness', inner])
    t.equal(r.code, 0, r.stderr)
    await writeFile(path.join(inner, 'f'), 'x')
    t.ok(await isMounted(inner))
  })
  t.notOk(await isMounted(inner), 'the tmpfs was unmounted')
  t.notOk(existsSync(dir), `${dir} is gone`)
})

t.test('waitUntil resolves once the condition holds and names what it waited for when it does not', async t => {
  let n = 0
  await waitUntil(() => ++n >= 3, { timeoutMs: 5000, intervalMs: 1, what: 'three polls' })
  t.equal(n, 3)
  await t.rejects(waitUntil(() => false, { timeoutMs: 20, intervalMs: 1, what: 'a thing that never happens' }),
    { message: `timed out after ${scaled(20)} ms waiting for a thing that never happens` })
  t.equal(scaled(1000), Math.round(1000 * TIME_FACTOR), 'scaled() multiplies by FSX_TEST_TIME_FACTOR')
})

t.test('testSeeds gives the fixed seeds and one more, printed so it can be replayed', async t => {
  const lines: string[] = []
  const seeds = testSeeds([1, 2], line => lines.push(line))
  t.same(seeds.slice(0, 2), [1, 2])
  t.ok(seeds.length === 2 || seeds.length === 3, 'at most one extra seed')
  const extra = Number(/extra seed (\d+) \(replay: FSX_TEST_SEED=\1\)/.exec(lines[0] ?? '')?.[1])
  t.ok(Number.isSafeInteger(extra), `printed: ${lines[0]}`)
  t.ok(seeds.includes(extra), 'the printed seed is run')
})

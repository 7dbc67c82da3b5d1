/**
 * The `local` definition and its hook (plugins/backend-local/src/index.ts, src/hooks/backends.ts): which sources
 * it accepts, what create() checks, what it registers.
 */
import t from 'tap'
import { symlink } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { localBackend, rootFromSource } from '../../plugins/backend-local/dist/index.js'
import registerHook from '../../plugins/backend-local/dist/hooks/backends.js'
import type { BackendDefinition, SourceUrl } from '../../src/backend/types.js'
import { fullKit } from '../../dist/backend/registry.js'
import { parseSource } from '../../dist/backend/source.js'

const kit = await fullKit()

/** A SourceUrl shaped by hand: `local:` kept as a URL of its own scheme (a front end other than parseSource). */
function source (raw: string): SourceUrl {
  if (raw.startsWith('/') || raw.startsWith('.')) return { scheme: 'local', raw, url: pathToFileURL(resolve(raw)) }
  const url = new URL(raw)
  return { scheme: url.protocol.slice(0, -1), raw, url }
}

t.test('validate accepts every local form the core parses, and the root is the path meant', async t => {
  const cases: Array<[string, string]> = [
    ['/srv/data', '/srv/data'],
    ['./data', resolve('data')],
    ['data', resolve('data')],
    ['~/data', join(homedir(), 'data')],
    ['local:/srv/data', '/srv/data'],
    ['local:data', resolve('data')],
    ['file:///srv/data', '/srv/data'],
    ['file:///srv/my%20data', '/srv/my data'],
    ['local:/srv/my data/100%', '/srv/my data/100%'],
    ['/srv/%41 @x', '/srv/%41 @x']
  ]
  for (const [raw, root] of cases) {
    const src = parseSource(raw)
    t.doesNotThrow(() => localBackend.validate!(src, {}), `validate ${raw}`)
    t.equal(rootFromSource(src), root, raw)
  }
})

t.test('a local: URL that was not turned into a file: URL keeps its path as typed', async t => {
  t.equal(rootFromSource(source('local:/srv/data')), '/srv/data')
  t.equal(rootFromSource(source('local:./data')), resolve('data'))
  t.equal(rootFromSource(source('local:/srv/my data/100%')), '/srv/my data/100%')
  t.equal(rootFromSource(source('local:/srv/%41')), '/srv/%41')
})

t.test('validate rejects other schemes, other hosts and empty paths with EINVAL', async t => {
  t.throws(() => localBackend.validate!(source('sftp://host/dir'), {}), { code: 'EINVAL' })
  t.throws(() => localBackend.validate!(source('file://otherhost/dir'), {}), { code: 'EINVAL' })
  t.throws(() => localBackend.validate!(source('local://host/dir'), {}), { code: 'EINVAL' })
  t.throws(() => localBackend.validate!(source('local:'), {}), { code: 'EINVAL' })
})

t.test('create rejects a missing root with ENOENT naming the path', async t => {
  const missing = join(t.testdir(), 'nope')
  await t.rejects(localBackend.create(source(missing), {}, kit), { code: 'ENOENT', message: new RegExp(missing) })
})

t.test('create rejects a file root with ENOTDIR naming the path', async t => {
  const file = join(t.testdir({ f: 'x' }), 'f')
  await t.rejects(localBackend.create(source(file), {}, kit), { code: 'ENOTDIR', message: new RegExp(file) })
  await t.rejects(localBackend.create(source(join(file, 'below')), {}, kit), { code: 'ENOTDIR' })
})

t.test('create serves a root given as a symlink to a directory, described by the path given', async t => {
  const base = t.testdir({ real: { f: 'hello' } })
  await symlink('real', join(base, 'alias'))
  const b = await localBackend.create(source(`local:${base}/alias`), {}, kit)
  t.teardown(() => b.close())
  t.equal(b.description, `local:${base}/alias`)
  t.equal((await b.read('/f', 0, 10)).toString(), 'hello')
})

t.test('capabilities are all true, xattrs when setfattr is installed', async t => {
  const b = await localBackend.create(source(t.testdir()), {}, kit)
  t.teardown(() => b.close())
  for (const [k, v] of Object.entries(b.capabilities)) if (k !== 'xattrs') t.equal(v, true, k)
  t.type(b.capabilities.xattrs, 'boolean')
})

t.test('the fsx:backends hook registers the local definition', async t => {
  const registered: BackendDefinition[] = []
  await registerHook.call({}, { register: def => { registered.push(def) } })
  t.equal(registered.length, 1)
  t.equal(registered[0], localBackend)
  t.same(registered[0].schemes, ['local', 'file'])
  t.equal(registered[0].name, 'local')
})

/**
 * The backend conformance suite (test/helpers/conformance.ts) against the local backend on a fresh temp dir:
 * once as the CLI creates it (through the definition; xattrs native), once with xattrs through getfattr/setfattr.
 * Imports compiled output (`npm test` runs `tsc -b` first).
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { pathToFileURL } from 'node:url'
import { LocalBackend, localBackend } from '../../plugins/backend-local/dist/index.js'
import { fullKit } from '../../dist/backend/registry.js'
import { conformance } from '../helpers/conformance.js'

const kit = await fullKit()

void conformance(t, 'local', async () => {
  const root = t.testdir()
  const backend = await localBackend.create({ scheme: 'local', raw: root, url: pathToFileURL(root) }, {}, kit)
  return { backend, cleanup: async () => {} }
})

const hasTools = ((): boolean => {
  try {
    execFileSync('setfattr', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()

if (hasTools) {
  void conformance(t, 'local (xattrs through getfattr/setfattr)', async () => {
    const backend = await LocalBackend.create(t.testdir(), kit, { xattrs: 'tools' })
    return { backend, cleanup: async () => {} }
  })
} else {
  t.comment('getfattr/setfattr not installed: the tools way in to xattrs is not tested')
}

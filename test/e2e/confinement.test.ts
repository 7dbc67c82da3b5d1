/**
 * Through a real mount of a local directory, nothing outside the source is ever read or written, even when the
 * kernel and fsx still believe a name is a directory: cache `d` as a directory (ls it), then on the backing side
 * replace `d` with a symlink to a directory outside the source, and use mnt/d/… — under every preset, the
 * long-TTL ones included. (The backend-level race is in test/backend-local/security.test.ts.)
 *
 * The symlink is relative ("../<outside>") and the mountpoint sits deeper than the source, so once the kernel
 * sees the link and resolves it itself (on the client side, as with any filesystem), it leads nowhere: only fsx
 * following it on the host could reach the outside directory.
 */
import t from 'tap'
import path from 'node:path'
import { mkdir, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { fuseAvailable, mountFsx, sh, tempDir } from '../helpers/mount.js'

if (fuseAvailable(t)) {
  for (const preset of ['balanced', 'high-performance', 'safe']) {
    t.test(`${preset}: a directory swapped for a symlink on the host leads nowhere outside`, async t => {
      const data = await tempDir('fsx-data-')
      const outside = await tempDir('fsx-outside-')
      const base = await tempDir('fsx-mnt-')
      await writeFile(path.join(outside, 'secret'), 'SECRET')
      await mkdir(path.join(data, 'd'))
      await writeFile(path.join(data, 'd', 'secret'), 'inside')
      const mountpoint = path.join(base, 'deeper', 'mnt')
      await mkdir(mountpoint, { recursive: true })
      const m = await mountFsx(t, data, ['--preset', preset], { mountpoint })
      t.teardown(async () => {
        // NB: teardowns run last-registered first: unmount before removing anything.
        await m.stop()
        for (const d of [data, outside, base]) await rm(d, { recursive: true, force: true })
      })
      const warm = await sh('ls -la d >/dev/null && cat d/secret >/dev/null && stat d d/secret >/dev/null', m.mountpoint)
      t.equal(warm.code, 0, warm.stderr)

      await rename(path.join(data, 'd'), path.join(data, 'd.real'))
      await symlink(path.join('..', path.basename(outside)), path.join(data, 'd'))

      const r = await sh(`
        for step in "cat d/secret" "printf pwned > d/secret" "printf planted > d/planted" "mkdir d/newdir" "rm d/secret" "mv d/secret stolen" "chmod 777 d/secret" "touch d/secret" "ln -s x d/lnk" "ls d"; do
          if out=$(eval "$step" 2>&1); then echo "$step: ok: $out"; else echo "$step: refused"; fi
        done`, m.mountpoint)
      t.equal(r.code, 0, r.stderr)
      for (const line of r.stdout.trim().split('\n')) {
        // A step may succeed only if what it touched is not outside (e.g. `ls d` listing the link's own view).
        t.notMatch(line, /SECRET/, `never the outside content: ${line}`)
      }
      t.equal(await readFile(path.join(outside, 'secret'), 'utf8'), 'SECRET', 'the outside file is unchanged')
      t.same((await readdir(outside)).sort(), ['secret'], 'nothing was created or removed outside')
    })
  }
}

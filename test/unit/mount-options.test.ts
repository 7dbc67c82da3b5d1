// Mount options (fstab, mount.fsx, fsx mount -o, fsx systemd-unit) and the systemd unit writer. node:test, so it
// also runs under Deno.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, writeFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseMountOptions, readEnvFile } from '../../dist/cli/mount-options.js'
import { commandLine, escapePath } from '../../dist/cli/systemd.js'
import { CORE_OPTIONS } from '../../dist/config/options.js'

const specs = [...CORE_OPTIONS, { key: 'sftpPassword', kind: 'string', default: undefined, help: 'x', scope: 'sftp', secret: true }] as any[]

test('settings are key=value, booleans bare or negated, in any of the three spellings', () => {
  const o = parseMountOptions(['preset=safe,attr_ttl=30s,entry-ttl=2s,maxWrite=64K', 'allow_other,nodefault_permissions,writeback=false'], specs)
  assert.equal(o.preset, 'safe')
  assert.deepEqual(o.settings, { attrTtl: '30s', entryTtl: '2s', maxWrite: '64K', allowOther: true, defaultPermissions: false, writeback: 'false' })
})

test('mount(8) and systemd options are ignored, ro is refused', () => {
  const o = parseMountOptions(['_netdev,nofail,noauto,x-systemd.automount,x-systemd.idle-timeout=60,defaults,rw,user,comment=x'], specs)
  assert.deepEqual(o.settings, {})
  assert.throws(() => parseMountOptions(['ro'], specs), { code: 'ECONFIG', message: /read-only/ })
})

test('secrets are refused with the way to give them', () => {
  assert.throws(() => parseMountOptions(['sftp_password=hunter2'], specs), (err: any) => {
    assert.equal(err.code, 'ECONFIG')
    assert.doesNotMatch(err.message, /hunter2/)
    assert.match(err.hint, /FSX_SFTP_PASSWORD=.*env_file=/)
    return true
  })
})

test('unknown options fail unless sloppy; values are required where the setting needs one', () => {
  assert.throws(() => parseMountOptions(['bogus=1'], specs), { code: 'ECONFIG', message: /unknown mount option "bogus"/ })
  assert.deepEqual(parseMountOptions(['bogus=1,attr_ttl=1'], specs, { sloppy: true }).ignored, ['bogus=1'])
  assert.throws(() => parseMountOptions(['attr_ttl'], specs), { code: 'ECONFIG', message: /needs a value/ })
  assert.throws(() => parseMountOptions(['env_file='], specs), { code: 'ECONFIG' })
})

test('an env file reads like systemd EnvironmentFile=', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'fsx-envfile-'))
  try {
    const f = join(dir, 'env')
    await writeFile(f, '# secrets\nFSX_SFTP_PASSWORD="p w"\nexport AWS_ACCESS_KEY_ID=AKIA\n\nX=\'y\'\n')
    assert.deepEqual(await readEnvFile(f), { FSX_SFTP_PASSWORD: 'p w', AWS_ACCESS_KEY_ID: 'AKIA', X: 'y' })
    await writeFile(f, 'not a line\n')
    await assert.rejects(readEnvFile(f), { code: 'ECONFIG', message: /:1: not a KEY=VALUE line/ })
    await assert.rejects(readEnvFile(join(dir, 'missing')), { code: 'ECONFIG', message: /ENOENT/ })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('unit names escape paths as systemd-escape --path does', () => {
  assert.equal(escapePath('/mnt/data'), 'mnt-data')
  assert.equal(escapePath('/mnt/my data/'), 'mnt-my\\x20data')
  assert.equal(escapePath('/.hidden/a-b'), '\\x2ehidden-a\\x2db')
  assert.equal(escapePath('/'), '-')
})

test('Exec= words are quoted and % and $ escaped', () => {
  assert.equal(commandLine(['/usr/bin/node', '/opt/fsx/bin/run.js', 'mount', 's3://b/p', '/mnt/x', '-o', 'preset=safe,allow_other']),
    '/usr/bin/node /opt/fsx/bin/run.js mount s3://b/p /mnt/x -o preset=safe,allow_other')
  assert.equal(commandLine(['/a b', '50%', '$HOME', 'q"t']), '"/a b" 50%% "$$HOME" "q\\"t"')
})

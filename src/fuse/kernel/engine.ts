/**
 * The kernel engine: fsx's own FUSE protocol server over /dev/fuse, on Node and on Deno. This file wires a
 * transport (./transport*.ts: the runtime-specific part), a session (./session.ts: codec, node table, dispatch to
 * the Vfs) and the mount's lifecycle behind the `FuseEngine` interface.
 *
 * Lifecycle: open /dev/fuse and mount it (mount(2) as root, fusermount3 otherwise), start the reader, answer
 * INIT, raise the mount's read-ahead to the `readahead` setting, then serve until the connection ends (unmount
 * from here or from outside). Unmount is `fusermount -u` / umount(8) (EBUSY when files are open), as before.
 */
import { access, constants as fsConstants, readFile, writeFile } from 'node:fs/promises'
import { FsxError } from '../../errors.js'
import type { Vfs } from '../../vfs/vfs.js'
import type { EngineHooks, FuseEngine, MountedFs, MountOptions } from '../engine.js'
import { unmountPath } from '../unmount.js'
import { Session } from './session.js'
import { loadTransport } from './transport.js'

/** How long the kernel may take to send INIT after mount(2) before the mount is called failed (ms). */
const INIT_TIMEOUT_MS = 30_000

export async function createKernelEngine (): Promise<FuseEngine> {
  try {
    // Root opens /dev/fuse itself; anyone else has fusermount3 (setuid) open it, so only its existence matters.
    await access('/dev/fuse', process.getuid?.() === 0 ? fsConstants.R_OK | fsConstants.W_OK : fsConstants.F_OK)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new FsxError('ENOFUSE', code === 'ENOENT' ? '/dev/fuse does not exist' : `/dev/fuse is not usable (${code})`, {
      hint: 'load the fuse module (modprobe fuse) or, in a container, run with --device /dev/fuse --cap-add SYS_ADMIN'
    })
  }
  const transport = await loadTransport()
  return {
    name: 'kernel',
    async mount (mountpoint: string, vfs: Vfs, opts: MountOptions, hooks: EngineHooks = {}): Promise<MountedFs> {
      const log = opts.log ?? (() => {})
      await transport.mount(mountpoint, {
        fsname: opts.fsname,
        subtype: opts.subtype,
        allowOther: opts.allowOther,
        defaultPermissions: opts.defaultPermissions,
        maxRead: opts.maxReadBytes,
        autoUnmount: opts.autoUnmount
      })
      const session = new Session(transport, vfs, {
        ...opts,
        passthrough: (opts.passthrough ?? true) && vfs.backend.capabilities.hostFiles === true && process.getuid?.() === 0,
        writebackCache: opts.writebackCache ?? false
      }, hooks, log)
      if ((opts.passthrough ?? true) && vfs.backend.capabilities.hostFiles === true && process.getuid?.() !== 0) {
        log('passthrough off: registering backing files needs root (CAP_SYS_ADMIN); fsx serves reads and writes itself')
      }
      let resolveEnd!: () => void
      const ended = new Promise<void>(resolve => { resolveEnd = resolve })
      session.start(err => {
        if (err) log(`FUSE connection ended: ${err.message}`)
        resolveEnd()
      })
      try {
        await withTimeout(session.ready, INIT_TIMEOUT_MS, 'the kernel did not send INIT')
      } catch (err) {
        await unmountPath(mountpoint, true).catch(() => {})
        transport.close()
        throw new FsxError('EIO', `mount of ${mountpoint} failed: ${(err as Error).message}`, { cause: err })
      }
      vfs.onChange = (p, how) => session.changed(p, how)
      await raiseReadahead(mountpoint, opts.readaheadBytes, log)
      let mounted = true
      return {
        mountpoint,
        stats: () => ({ engine: 'kernel', transport: transport.name, ...session.stats() }),
        async unmount () {
          if (!mounted) return
          try {
            await unmountPath(mountpoint, false)
          } catch (err) {
            // Unmounted from outside already: nothing left to undo but our end of the connection.
            if ((err as FsxError).code !== 'EINVAL') throw err
          }
          mounted = false
          vfs.onChange = undefined
          await withTimeout(ended, 10_000, 'the FUSE connection to end').catch(() => {})
          transport.close()
        }
      }
    }
  }
}

async function withTimeout<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms) })])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * The kernel reads ahead of a sequential reader by the mount's bdi read_ahead_kb (128 KiB by default), whatever
 * INIT's max_readahead says: raise it to the `readahead` setting so large files stream in 1 MiB requests. The
 * device number comes from /proc/self/mountinfo (a stat of the mountpoint from this process would be a FUSE
 * request this thread must answer). Root only; failure costs only speed.
 */
async function raiseReadahead (mountpoint: string, bytes: number, log: (l: string) => void): Promise<void> {
  try {
    const line = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').find(l => l.split(' ')[4] === mountpoint)
    const dev = line?.split(' ')[2]
    if (dev === undefined) return
    await writeFile(`/sys/class/bdi/${dev}/read_ahead_kb`, String(Math.max(4, Math.round(bytes / 1024))))
  } catch (err) {
    const code = (err as { code?: string }).code
    if (code !== 'EACCES' && code !== 'EROFS' && code !== 'ENOENT') log(`read-ahead left at the kernel's default: ${(err as Error).message}`)
  }
}

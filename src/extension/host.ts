/**
 * The mount extensions of one mount: starts every registered extension with its context, tells each one the VFS's
 * commit events in order, serves their control commands as `<name>.<command>`, gathers their figures, and closes
 * them before the VFS at a clean unmount.
 *
 * Each extension's state directory is locked while its mount runs (a second mount of the same source cannot share
 * it: that extension fails to start, and with it the mount, saying which process holds it).
 *
 * `ctx.files` reads through the VFS (open, read, release), so an extension sees what the mount serves: a staged or
 * journaled version before the backend has it. Those opens count among the mount's open files while they last.
 */
import { constants as fsConstants } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import path from 'node:path'
import { FsxError, fsxError } from '../errors.js'
import type { DirEntry } from '../backend/types.js'
import type { Vfs, VfsChange } from '../vfs/vfs.js'
import { lockDir, unlockDir } from '../vfs/dir-lock.js'
import type { ExtensionRegistry } from './registry.js'
import type { ExtensionCommand, ExtensionFigures, FigureDescription, MountExtension, MountFiles } from './types.js'

/** Largest read of one request when an extension reads a file (the rest follows in more reads). */
const READ_CHUNK = 4 * 1024 * 1024

/** A MountFiles over a VFS. */
export function vfsFiles (vfs: Vfs): MountFiles {
  return {
    stat: async p => await vfs.getattr(p),
    list: async p => {
      const { names, stats } = await vfs.readdir(p)
      return names.map((name, i): DirEntry => stats[i] === undefined ? { name } : { name, stat: stats[i] })
    },
    read: async (p, maxBytes = Number.MAX_SAFE_INTEGER) => {
      const fh = await vfs.open(p, fsConstants.O_RDONLY)
      try {
        const st = await vfs.fgetattr(p, fh)
        if (st.kind !== 'file') throw new FsxError(st.kind === 'dir' ? 'EISDIR' : 'EINVAL', 'not a regular file', { path: p, op: 'read' })
        if (st.size > maxBytes) throw new FsxError('EFBIG', `larger than ${maxBytes} bytes`, { path: p, op: 'read' })
        const chunks: Buffer[] = []
        let pos = 0
        for (;;) {
          // The file may have grown since the stat: read until a read returns nothing.
          const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, Math.max(64 * 1024, st.size + 1 - pos)))
          const n = await vfs.read(p, fh, buf, buf.length, pos)
          if (n === 0) break
          chunks.push(n === buf.length ? buf : buf.subarray(0, n))
          pos += n
          if (pos > maxBytes) throw new FsxError('EFBIG', `larger than ${maxBytes} bytes`, { path: p, op: 'read' })
        }
        return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, pos)
      } finally {
        await vfs.release(p, fh)
      }
    }
  }
}

export class ExtensionHost {
  private constructor (private readonly running: Array<{ name: string, ext: MountExtension, stateDir: string }>, private readonly log: (line: string) => void) {}

  /**
   * Starts every registered extension for this mount and subscribes them to the VFS's commit events. A failing
   * start stops the ones already started and fails with its message (prefixed with the extension's name).
   */
  static async start (registry: ExtensionRegistry | undefined, opts: { vfs: Vfs, settings: Record<string, unknown>, mountpoint: string, cacheDir: string, log: (line: string) => void }): Promise<ExtensionHost> {
    const running: Array<{ name: string, ext: MountExtension, stateDir: string }> = []
    const host = new ExtensionHost(running, opts.log)
    const source = opts.vfs.backend.description
    const sourceId = createHash('sha256').update(source).digest('hex').slice(0, 16)
    const files = vfsFiles(opts.vfs)
    for (const def of registry?.definitions() ?? []) {
      if (def.enabled?.(opts.settings) === false) continue
      const stateDir = path.join(opts.cacheDir, 'extensions', def.name, sourceId)
      let locked = false
      try {
        await mkdir(stateDir, { recursive: true, mode: 0o700 })
        await lockDir(stateDir, 'the state directory', { exclusiveInProcess: true })
        locked = true
        const ext = await def.start({
          settings: opts.settings,
          mountpoint: opts.mountpoint,
          source,
          stateDir,
          files,
          log: line => opts.log(`${def.name}: ${line}`),
          kit: { fsxError }
        })
        if (ext !== undefined) running.push({ name: def.name, ext, stateDir })
        else await unlockDir(stateDir)
      } catch (err) {
        if (locked) await unlockDir(stateDir).catch(() => {})
        await host.close()
        const e = err as { code?: unknown, message?: string, hint?: unknown }
        throw new FsxError(typeof e.code === 'string' ? e.code : 'EIO', `${def.name}: ${e.message ?? String(err)}`,
          { cause: err, hint: typeof e.hint === 'string' ? e.hint : undefined })
      }
    }
    if (running.length > 0) opts.vfs.onCommit = change => host.commit(change)
    return host
  }

  /** Tells every extension a committed change; one that throws is logged and the others still hear it. */
  commit (change: VfsChange): void {
    for (const { name, ext } of this.running) {
      try {
        ext.onCommit?.(change)
      } catch (err) {
        this.log(`${name}: failed on a commit event: ${(err as Error).message}`)
      }
    }
  }

  /** Control commands of every extension, as `<name>.<command>`. */
  commands (): Record<string, ExtensionCommand> {
    const out: Record<string, ExtensionCommand> = {}
    for (const { name, ext } of this.running) {
      for (const [cmd, fn] of Object.entries(ext.commands ?? {})) out[`${name}.${cmd}`] = fn
    }
    return out
  }

  /** Figures of every extension that has some, by extension name. */
  stats (): Record<string, ExtensionFigures> {
    const out: Record<string, ExtensionFigures> = {}
    for (const { name, ext } of this.running) if (ext.stats) out[name] = ext.stats()
    return out
  }

  /** Prometheus descriptions of the figures, by extension name. */
  figures (): Record<string, Record<string, FigureDescription>> {
    return Object.fromEntries(this.running.map(({ name, ext }) => [name, ext.figures ?? {}]))
  }

  get size (): number { return this.running.length }

  /** Closes every extension (they save their state); failures are logged. */
  async close (): Promise<void> {
    for (const { name, ext, stateDir } of this.running.splice(0).reverse()) {
      await ext.close?.().catch(err => this.log(`${name}: closing: ${(err as Error).message}`))
      await unlockDir(stateDir).catch(() => {})
    }
  }
}

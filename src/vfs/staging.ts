/**
 * Local staging for backends whose writes the Vfs stages (S3; SFTP with write-back): the whole object lives in a
 * local file while it is open for writing; reads and writes of that file go to the staging copy; `flush`/`fsync`
 * upload it whole. Staging files are on disk (never unbounded memory), under `<cacheDir>/staging`, removed on release.
 *
 * The copy of the object's current content is made lazily, at the first read, write or truncate that needs it: an
 * open for writing that writes nothing (touch, an editor's probe, a futimens) costs no download, and reads nothing
 * on the server (which would move the file's atime there). `size` is the object's until then.
 */
import { copyFile, mkdir, open, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import type { Backend, Stat, WriteAttrs } from '../backend/types.js'
import { unlinkQuiet } from './unlink-quiet.js'

/** Chunk size for filling a staging file from the backend: large enough to amortise a request round trip. */
const FILL_CHUNK = 8 * 1024 * 1024

export class StagingFile {
  dirty = false
  /** Bumped by every write and truncate: an upload or journal commit clears `dirty` only if none came meanwhile. */
  version = 0
  /** The last upload: at which `version`, to which path, and the attributes the backend answered (if it did). */
  uploaded?: { version: number, path: string, stat: Stat }
  /** The copy of the object's content not made yet: run once by `filled()` (again after a failure). */
  private fill?: () => Promise<void>
  private filling?: Promise<void>
  private constructor (readonly file: string, readonly fh: FileHandle, public size: number) {}

  /**
   * Creates a staging file that holds the backend object's current content (copied at the first use that needs it)
   * unless `empty`.
   */
  static async create (dir: string, backend: Backend, objectPath: string, empty: boolean, knownSize?: number): Promise<StagingFile> {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    const file = path.join(dir, randomBytes(8).toString('hex'))
    const fh = await open(file, 'w+', 0o600)
    const staging = new StagingFile(file, fh, 0)
    if (empty) return staging
    try {
      staging.size = knownSize ?? (await backend.stat(objectPath)).size
    } catch (err) {
      await staging.discard()
      throw err
    }
    staging.fill = async () => {
      let offset = 0
      while (offset < staging.size) {
        const chunk = await backend.read(objectPath, offset, Math.min(FILL_CHUNK, staging.size - offset))
        if (chunk.length === 0) break
        await fh.write(chunk, 0, chunk.length, offset)
        offset += chunk.length
      }
      staging.size = offset
    }
    return staging
  }

  /**
   * Resolves once the copy of the object's content is made (at once when there is none to make). The Vfs calls it
   * before the object's name changes (a rename from or over it): the copy is of the object the file was opened as.
   */
  async filled (): Promise<void> {
    while (this.fill !== undefined) {
      const fill = this.fill
      this.filling ??= fill().then(() => { if (this.fill === fill) this.fill = undefined }).finally(() => { this.filling = undefined })
      await this.filling
    }
  }

  /** Creates a staging file holding a copy of a local file's first `size` bytes (a journaled version). */
  static async fromFile (dir: string, source: string, size: number): Promise<StagingFile> {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    const file = path.join(dir, randomBytes(8).toString('hex'))
    await copyFile(source, file)
    const fh = await open(file, 'r+')
    const staging = new StagingFile(file, fh, size)
    try {
      await fh.truncate(size)
    } catch (err) {
      await staging.discard()
      throw err
    }
    return staging
  }

  async read (target: Buffer, length: number, position: number): Promise<number> {
    if (position >= this.size) return 0
    if (this.fill !== undefined) await this.filled()
    const { bytesRead } = await this.fh.read(target, 0, Math.min(length, this.size - position), position)
    return bytesRead
  }

  /** Writes at `position`, or at the end of the content (`'end'`: O_APPEND). */
  async write (data: Buffer, length: number, position: number | 'end'): Promise<number> {
    if (this.fill !== undefined) await this.filled()
    if (position === 'end') position = this.size
    const { bytesWritten } = await this.fh.write(data, 0, length, position)
    this.size = Math.max(this.size, position + bytesWritten)
    this.dirty = true
    this.version++
    return bytesWritten
  }

  async truncate (size: number): Promise<void> {
    // Cut to nothing: the object's old content is not needed (a copy in progress is let finish first).
    if (size === 0 && this.filling === undefined) this.fill = undefined
    if (this.fill !== undefined) await this.filled()
    await this.fh.truncate(size)
    this.size = size
    this.dirty = true
    this.version++
  }

  /** Uploads the whole staged content if it changed since the last upload. */
  async upload (backend: Backend, objectPath: string, attrs: WriteAttrs): Promise<void> {
    if (!this.dirty) return
    await this.fh.datasync()
    const version = this.version
    // NB: clear `dirty` only after the backend acknowledged, so a failed upload is retried at the next flush.
    const written = await backend.write(objectPath, { file: this.file, size: this.size }, { ...attrs, mtimeMs: attrs.mtimeMs ?? Date.now() })
    this.uploaded = written ? { version, path: objectPath, stat: written } : undefined
    if (this.version === version) this.dirty = false
  }

  async discard (): Promise<void> {
    await this.fh.close().catch(() => {})
    await unlinkQuiet(this.file)
  }
}

/**
 * Local staging for backends that cannot write at an offset (S3): the whole object lives in a local file while it
 * is open for writing; reads and writes of that file go to the staging copy; `flush`/`fsync` upload it whole.
 * Staging files are on disk (never unbounded memory), under `<cacheDir>/staging`, removed on release.
 */
import { copyFile, mkdir, open, rm, type FileHandle } from 'node:fs/promises'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import type { Backend, WriteAttrs } from '../backend/types.js'

/** Chunk size for filling a staging file from the backend: large enough to amortise a request round trip. */
const FILL_CHUNK = 8 * 1024 * 1024

export class StagingFile {
  dirty = false
  /** Bumped by every write and truncate: an upload or journal commit clears `dirty` only if none came meanwhile. */
  version = 0
  private constructor (readonly file: string, readonly fh: FileHandle, public size: number) {}

  /** Creates a staging file, filled with the backend object's current content unless `empty`. */
  static async create (dir: string, backend: Backend, objectPath: string, empty: boolean, knownSize?: number): Promise<StagingFile> {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    const file = path.join(dir, randomBytes(8).toString('hex'))
    const fh = await open(file, 'w+', 0o600)
    const staging = new StagingFile(file, fh, 0)
    try {
      if (!empty) {
        const size = knownSize ?? (await backend.stat(objectPath)).size
        let offset = 0
        while (offset < size) {
          const chunk = await backend.read(objectPath, offset, Math.min(FILL_CHUNK, size - offset))
          if (chunk.length === 0) break
          await fh.write(chunk, 0, chunk.length, offset)
          offset += chunk.length
        }
        staging.size = offset
      }
    } catch (err) {
      await staging.discard()
      throw err
    }
    return staging
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
    const { bytesRead } = await this.fh.read(target, 0, Math.min(length, this.size - position), position)
    return bytesRead
  }

  async write (data: Buffer, length: number, position: number): Promise<number> {
    const { bytesWritten } = await this.fh.write(data, 0, length, position)
    this.size = Math.max(this.size, position + bytesWritten)
    this.dirty = true
    this.version++
    return bytesWritten
  }

  async truncate (size: number): Promise<void> {
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
    await backend.write(objectPath, { file: this.file, size: this.size }, { ...attrs, mtimeMs: attrs.mtimeMs ?? Date.now() })
    if (this.version === version) this.dirty = false
  }

  async discard (): Promise<void> {
    await this.fh.close().catch(() => {})
    await rm(this.file, { force: true })
  }
}

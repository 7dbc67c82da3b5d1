/**
 * Removes one file, already gone or not. For the per-file hot paths (journal entries, staging copies, cache blocks):
 * fs.promises.rm(file, { force: true }) costs an lstat to validate its options and another in its rimraf before the
 * unlink, three trips through libuv's thread pool where unlink is one (measured: a third of the thread-pool work of
 * creating small files with write-back).
 */
import { unlink } from 'node:fs/promises'

export async function unlinkQuiet (file: string): Promise<void> {
  try {
    await unlink(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
}

/**
 * Temp dirs for unit tests (node:test, run both by tap and by `deno test`). Call `tempDirs()` once at the top of a
 * test file; every directory its function makes is removed after that file's tests, passed or failed (node:test's
 * `after` hook, which both runtimes run).
 *
 *   const tmp = tempDirs()
 *   const dir = await tmp('fsx-writeback-')     // <os.tmpdir()>/fsx-writeback-XXXXXX
 */
import { after } from 'node:test'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

export function tempDirs (): (prefix: string) => Promise<string> {
  const made: string[] = []
  after(async () => {
    for (const dir of made.splice(0)) await rm(dir, { recursive: true, force: true })
  })
  return async (prefix: string): Promise<string> => {
    const dir = await mkdtemp(path.join(os.tmpdir(), prefix))
    made.push(dir)
    return dir
  }
}

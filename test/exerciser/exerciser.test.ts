/**
 * Tests for the seeded filesystem exerciser (test/helpers/exerciser.ts): it passes on a correct filesystem (a plain
 * temp dir), replays deterministically, and fails loudly and reproducibly on a filesystem that misbehaves. The
 * misbehaving filesystems are wrappers around node:fs/promises passed as `opts.fs`, the only mock used here.
 */
import t from 'tap'
import * as fsp from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import {
  exercise, ExerciserError, OP_KINDS,
  type ExerciserFileHandle, type ExerciserFs, type ExerciseReport,
} from '../helpers/exerciser.js'
import { testSeeds } from '../helpers/timing.js'

const SEED = 1234
/** The fixed seed, plus one random seed printed as a comment (FSX_TEST_SEED=N replays it). */
const SEEDS = testSeeds([SEED], (line) => t.comment(line))

/** A fresh directory under the OS temp dir, removed after the test. */
async function tempRoot(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await fsp.mkdtemp(join(os.tmpdir(), 'fsx-exerciser-test-'))
  t.teardown(() => fsp.rm(dir, { recursive: true, force: true }))
  return dir
}

/** Everything in a report that must be identical across replays of the same seed. */
const replayable = (r: ExerciseReport) => ({ ...r, dir: undefined, durationMs: undefined })

interface Sabotage {
  /** Called on every FileHandle.read; may corrupt the buffer. */
  onRead?: (buffer: Buffer, offset: number, bytesRead: number) => void
  /** Called before every fs.rename; may throw. */
  onRename?: () => void
}

/** node:fs/promises with optional sabotage; counts handles opened and closed. */
function wrappedFs(sabotage: Sabotage = {}) {
  const handles = { opened: 0, closed: 0 }
  const fs: ExerciserFs = {
    ...fsp,
    async open(path, flags, mode) {
      const fh = await fsp.open(path, flags, mode)
      handles.opened++
      const wrapped: ExerciserFileHandle = {
        async read(buffer, offset, length, position) {
          const r = await fh.read(buffer, offset, length, position)
          sabotage.onRead?.(buffer, offset, r.bytesRead)
          return r
        },
        write: (buffer, offset, length, position) => fh.write(buffer, offset, length, position),
        truncate: (len) => fh.truncate(len),
        sync: () => fh.sync(),
        datasync: () => fh.datasync(),
        stat: () => fh.stat(),
        async close() {
          handles.closed++
          await fh.close()
        },
      }
      return wrapped
    },
    async rename(from, to) {
      sabotage.onRename?.()
      await fsp.rename(from, to)
    },
  }
  return { fs, handles }
}

for (const seed of SEEDS) t.test(`3,000 ops on a plain directory pass, and the report adds up (seed=${seed})`, async (t) => {
  const root = await tempRoot(t)
  const lines: string[] = []
  const r = await exercise({ root, seed, ops: 3000, log: (l) => lines.push(l) })

  t.equal(r.seed, seed)
  t.equal(r.ops, 3000)
  t.same(Object.keys(r.counts).sort(), [...OP_KINDS].sort(), 'one count per op kind')
  t.equal(Object.values(r.counts).reduce((a, b) => a + b, 0), 3000, 'counts sum to ops')
  for (const k of ['write', 'read', 'append', 'truncate', 'rename', 'unlink', 'create'] as const) {
    t.ok(r.counts[k] > 0, `did some ${k} ops`)
  }
  t.ok(r.counts.write + r.counts.read > 3000 / 2, 'writes and reads dominate')
  t.ok(r.bytesWritten > 0 && r.bytesRead > 0, 'moved bytes both ways')
  t.equal(r.verifications, 3000 / 200, 'verified every 200 ops (the last one being the final pass)')
  t.ok(r.files >= 4 && r.files <= 8, 'default file count is 4-8')
  t.equal(lines.filter((l) => /^#\d+ /.test(l)).length, 3000, 'logged one line per op')
  t.match(lines[0], /^#1 \S/, 'op lines look like #<n> <op>')
  t.same(await fsp.readdir(root), [], 'work dir removed after success')
})

t.test('the same seed replays the same op stream', async (t) => {
  const root = await tempRoot(t)
  const a: string[] = []
  const b: string[] = []
  const ra = await exercise({ root, seed: 7, ops: 500, log: (l) => a.push(l) })
  const rb = await exercise({ root, seed: 7, ops: 500, log: (l) => b.push(l) })
  t.same(b, a)
  t.same(replayable(rb), replayable(ra))
  const rc = await exercise({ root, seed: 8, ops: 500 })
  t.notSame(replayable(rc), replayable(ra), 'another seed gives another stream')
})

for (const seed of SEEDS) t.test(`a corrupted read is caught, with seed, op and history, and every handle is closed (seed=${seed})`, async (t) => {
  const root = await tempRoot(t)
  let reads = 0
  let corrupted = false
  const { fs, handles } = wrappedFs({
    onRead(buffer, offset, bytesRead) {
      if (!corrupted && bytesRead > 0 && ++reads >= 300) {
        buffer[offset] = (buffer[offset] as number) ^ 0x5a
        corrupted = true
      }
    },
  })
  const err = await exercise({ root, seed, ops: 3000, fs }).then(
    () => undefined,
    (e: unknown) => e,
  )
  t.ok(corrupted, 'the sabotage fired')
  t.type(err, ExerciserError)
  const e = err as ExerciserError
  t.match(e.message, /seed=\d+/)
  t.match(e.message, new RegExp(`^exerciser failed: seed=${seed} op=\\d+ `))
  t.match(e.message, /content mismatch at byte \d+ \(expected 0x[0-9a-f]{2}, got 0x[0-9a-f]{2}\)/)
  t.match(e.message, /last ops:\n {4}#\d+ /)
  t.equal(e.seed, seed)
  t.ok(e.opNumber >= 1 && e.opNumber <= 3001)
  t.ok(e.recentOps.length > 0 && e.recentOps.length <= 20)
  t.equal(handles.closed, handles.opened, 'all handles closed after the failure')
  t.ok(e.dir.startsWith(root), 'work dir reported (and kept for inspection)')
})

t.test('an unexpected error from the filesystem fails with seed and the op that hit it', async (t) => {
  const root = await tempRoot(t)
  let renames = 0
  const { fs, handles } = wrappedFs({
    onRename() {
      if (++renames === 5) throw Object.assign(new Error('EIO: injected'), { code: 'EIO' })
    },
  })
  await t.rejects(exercise({ root, seed: SEED, ops: 3000, fs }), {
    name: 'ExerciserError',
    message: /seed=\d+ op=\d+ rename .*unexpected error EIO/,
  })
  t.equal(handles.closed, handles.opened, 'all handles closed after the failure')
})

t.test('bad options are rejected up front', async (t) => {
  await t.rejects(exercise({ root: os.tmpdir(), seed: -1, ops: 1 }), RangeError)
  await t.rejects(exercise({ root: os.tmpdir(), seed: 1.5, ops: 1 }), RangeError)
  await t.rejects(exercise({ root: os.tmpdir(), seed: 1, ops: 1, maxFileSize: 0 }), RangeError)
})

/**
 * Time in tests: the one factor every deadline is scaled by, waiting on conditions instead of sleeping, and the
 * seeds the exercisers run on.
 *
 * - `FSX_TEST_TIME_FACTOR` (default 1; `.ci/run` sets it higher) multiplies every deadline a test must use: a
 *   loaded CI machine gets more time, the test itself stays the same. Never use a bare millisecond constant for a
 *   bound a slow machine could miss: use `scaled(ms)`.
 * - `waitUntil` polls a condition until it holds or its (scaled) deadline passes, and says what it waited for.
 * - `testSeeds(fixed)`: the fixed seeds, plus one random seed that is printed (so a failure on it can be replayed
 *   with `FSX_TEST_SEED=<seed>`), unless `FSX_TEST_SEED` pins it.
 *
 * Convention: a time handed to a helper (`waitUntil`'s `timeoutMs`, `run`/`fsx`/`mountFsx`'s `timeoutMs`,
 * `exercise`'s `opTimeoutMs`, sshd's `frozenSessionsSettled`) is unscaled: the helper scales it. A test scales
 * only the bounds it checks itself (`t.ok(ms < scaled(5000))`) and the product deadlines it sets for a test whose
 * outcome depends on them. Durations that are the subject of a test (a TTL that must expire, a server kept down
 * longer than a deadline) are waited for from the moment they started, never as a sleep guessed to be long enough.
 */

/** The factor from FSX_TEST_TIME_FACTOR: a positive number, default 1. */
export const TIME_FACTOR: number = (() => {
  const raw = process.env.FSX_TEST_TIME_FACTOR
  if (raw === undefined || raw === '') return 1
  const n = Number(raw)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`FSX_TEST_TIME_FACTOR must be a positive number, not ${JSON.stringify(raw)}`)
  return n
})()

/** `ms` scaled by the machine's time factor. */
export function scaled (ms: number): number {
  return Math.round(ms * TIME_FACTOR)
}

/**
 * Resolves once `cond` returns true; rejects with "timed out after N ms waiting for WHAT" when `timeoutMs`
 * (scaled) passes first. Polls every `intervalMs` (default 50).
 */
export async function waitUntil (cond: () => boolean | Promise<boolean>, opts: { timeoutMs: number, what: string, intervalMs?: number }): Promise<void> {
  const limit = scaled(opts.timeoutMs)
  const deadline = Date.now() + limit
  for (;;) {
    if (await cond()) return
    if (Date.now() >= deadline) throw new Error(`timed out after ${limit} ms waiting for ${opts.what}`)
    await new Promise(resolve => setTimeout(resolve, opts.intervalMs ?? 50))
  }
}

/**
 * The seeds an exerciser runs on: `fixed`, then one more, random unless FSX_TEST_SEED gives it. The extra seed is
 * printed through `log` (default: a TAP comment on stdout; pass `line => t.comment(line)` in a tap test) so a
 * failure can be replayed.
 */
export function testSeeds (fixed: number[], log: (line: string) => void = line => console.log(`# ${line}`)): number[] {
  const pinned = process.env.FSX_TEST_SEED
  const extra = pinned !== undefined && pinned !== '' ? Number(pinned) : Math.floor(Math.random() * 2 ** 31)
  if (!Number.isSafeInteger(extra)) throw new Error(`FSX_TEST_SEED must be an integer, not ${JSON.stringify(pinned)}`)
  log(`extra seed ${extra} (replay: FSX_TEST_SEED=${extra})`)
  return fixed.includes(extra) ? [...fixed] : [...fixed, extra]
}

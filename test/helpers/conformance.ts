/**
 * The backend conformance suite under tap. The suite itself ships in the plugin SDK (@fsx/sdk/conformance,
 * sdk/src/conformance.ts) so that plugin authors run the same cases (`fsx conformance SOURCE`); this adapter
 * turns each case into a tap subtest, in its own directory, with tap's own assertions.
 *
 *   conformance(t, 'local', async () => ({ backend, cleanup }))
 *
 * `setup` runs once per suite; the suite calls `backend.close()` and then `cleanup()` in teardown.
 */
import type { Test } from 'tap'
import type { Backend } from '../../src/backend/types.js'
import { conformanceCases } from '@fsx/sdk/conformance'

export { bytes } from '@fsx/sdk/conformance'

export interface ConformanceFixture {
  backend: Backend
  /** Removes what setup made (temp dirs, containers, buckets). Called after `backend.close()`. */
  cleanup(): Promise<void>
}

/** Registers the suite as one subtest of `t` named after the backend. */
export function conformance (t: Test, name: string, setup: () => Promise<ConformanceFixture>): Promise<unknown> {
  return t.test(`${name} backend conformance`, async t => {
    const { backend: b, cleanup } = await setup()
    t.teardown(async () => {
      await b.close()
      await cleanup()
    })
    for (const c of conformanceCases(b)) {
      void t.test(c.title, { skip: c.skip }, async t => {
        await b.mkdir(c.dir, 0o755)
        await c.run(t, c.dir)
      })
    }
  })
}

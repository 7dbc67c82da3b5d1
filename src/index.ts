/**
 * The fsx package's own entry (`import { run } from 'fsx'`): runs the CLI programmatically, as oclif CLIs do, e.g.
 * `await run(['mount', './data', './mnt', '--daemon'])`. Plugin authors want @fsx/sdk instead (types, API version,
 * conformance suite).
 */
export { run } from '@oclif/core'
export { API_VERSION } from '@fsx/sdk'

/**
 * The Backend contract. It lives in the plugin SDK, @fsx/sdk (sdk/src/backend.ts), so that plugins written outside
 * this repository read the very declarations the core does; core modules keep importing it from here.
 *
 * Types only: nothing here exists at run time (the SDK's run-time part, API_VERSION, is imported where it is
 * checked: ./registry.ts).
 */
export type * from '@fsx/sdk'

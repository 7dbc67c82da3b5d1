/**
 * The plugin API version. It changes only when a change to the contract in ./backend.ts would break a plugin
 * built before it (a required method added, a type narrowed, a meaning changed); additions that every existing
 * plugin still satisfies (a new optional method, a new capability flag) keep it. The @fsx/sdk major version
 * follows it, so `"@fsx/sdk": "^1"` in a plugin's package.json and `apiVersion: 1` in its definition agree.
 */
export const API_VERSION = 1 as const

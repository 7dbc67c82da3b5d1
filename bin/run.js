#!/usr/bin/env node
// fsx entry point (Node 20+ and Deno 2: `deno run -A bin/run.js`).
import { execute, settings } from '@oclif/core'

// Plugins run as built JavaScript, linked ones too (`fsx plugins link DIR` after the plugin's own build): fsx never
// transpiles a plugin's TypeScript, so oclif need not look for its sources, nor warn on every command that it won't.
settings.enableAutoTranspile = false
await execute({ dir: import.meta.url })

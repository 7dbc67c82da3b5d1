#!/usr/bin/env node
// fsx entry point (Node 20+ and Deno 2: `deno run -A bin/run.js`).
import { execute } from '@oclif/core'

await execute({ dir: import.meta.url })

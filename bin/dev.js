#!/usr/bin/env node
// Development entry point: oclif's development mode (more verbose errors, reloads the manifest).
import { execute } from '@oclif/core'

await execute({ development: true, dir: import.meta.url })

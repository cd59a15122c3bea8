#!/usr/bin/env node
// The `blobfs` executable: registers tsx so the TypeScript sources run as they are,
// then hands over to the command line in main.ts.
import { register } from 'tsx/esm/api'

register()
await import('./main.ts')

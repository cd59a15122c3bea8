#!/usr/bin/env node
// The `blobfs` executable: runs the compiled JavaScript when `npm run build` made it
// from exactly these sources (compiled.mjs), otherwise registers tsx so the
// TypeScript sources run as they are. Either way it hands over to main.
import { pathToFileURL } from 'node:url'
import { currentBuild } from './compiled.mjs'

const compiled = currentBuild()
if (compiled !== null) {
  process.setSourceMapsEnabled(true)
  await import(pathToFileURL(compiled).href)
} else {
  const { register } = await import('tsx/esm/api')
  register()
  await import('./main.ts')
}

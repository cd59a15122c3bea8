#!/usr/bin/env node
// `npm run build`: compiles src/ into node_modules/.cache/blobfs/ (see compiled.mjs)
// and records the fingerprint of the sources it compiled. The fingerprint is taken
// before tsc runs, so a file edited during the build leaves the build stale (and
// bin.mjs runs the sources) rather than marking old output as current.
import { spawnSync } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { compiledDir, fingerprintFile, packageRoot, sourceFingerprint } from './compiled.mjs'

const fingerprint = sourceFingerprint()
rmSync(fingerprintFile, { force: true })
mkdirSync(compiledDir, { recursive: true })
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
const result = spawnSync(process.execPath, [tsc, '-p', join(packageRoot, 'src', 'tsconfig.build.json')], { stdio: 'inherit' })
if (result.status !== 0) {
  console.error('blobfs build: tsc failed; `blobfs` keeps running the sources through tsx')
  process.exit(result.status ?? 1)
}
writeFileSync(fingerprintFile, fingerprint + '\n')
console.log(`blobfs build: compiled src/ into ${compiledDir}`)

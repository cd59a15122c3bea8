#!/usr/bin/env node
// `npm run build`: compiles src/ into node_modules/.cache/blobfs/<fingerprint>/ (see
// compiled.mjs). The fingerprint is taken before tsc runs, so a file edited during the
// build gets a build under the old name, which nothing asks for. The output is written
// to a temporary directory and renamed into place only when complete, so no process
// ever loads a half-written build. Builds of older sources are removed after a while.
//
// --if-possible (the npm install script): when TypeScript is not installed (npm ci
// --omit=dev) or tsc fails, warn and exit 0: blobfs then runs the sources through tsx.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { buildDirOf, cacheDir, completeMarker, packageRoot, sourceFingerprint } from './compiled.mjs'

const ifPossible = process.argv.includes('--if-possible')
const staleBuildAgeMs = 60 * 60 * 1000

function giveUp(message) {
  console.error(`blobfs build: ${message}; \`blobfs\` runs the sources through tsx instead`)
  process.exit(ifPossible ? 0 : 1)
}

const fingerprint = sourceFingerprint()
const target = buildDirOf(fingerprint)
if (existsSync(join(target, completeMarker))) {
  console.log(`blobfs build: ${target} is current`)
} else {
  let tsc
  try {
    tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  } catch {
    giveUp('TypeScript is not installed (a devDependency)')
  }
  mkdirSync(cacheDir, { recursive: true })
  const temporary = join(cacheDir, `.building-${process.pid}-${Date.now()}`)
  try {
    const result = spawnSync(
      process.execPath,
      [tsc, '-p', join(packageRoot, 'src', 'tsconfig.build.json'), '--outDir', temporary],
      { stdio: 'inherit' },
    )
    if (result.status !== 0) {
      rmSync(temporary, { recursive: true, force: true })
      giveUp('tsc failed')
    }
    // Under node_modules, Node does not see the package's "type": "module".
    writeFileSync(join(temporary, 'package.json'), '{ "type": "module" }\n')
    writeFileSync(join(temporary, completeMarker), fingerprint + '\n')
    try {
      renameSync(temporary, target)
    } catch (error) {
      // Another build of the same sources got there first: theirs is as good.
      if (!existsSync(join(target, completeMarker))) throw error
    }
  } finally {
    rmSync(temporary, { recursive: true, force: true })
  }
  console.log(`blobfs build: compiled src/ into ${target}`)
}

// Older builds (and abandoned temporary ones) go once nothing can still be starting from them.
for (const name of readdirSync(cacheDir)) {
  const path = join(cacheDir, name)
  if (path === target) continue
  try {
    if (Date.now() - statSync(path).mtimeMs > staleBuildAgeMs) rmSync(path, { recursive: true, force: true })
  } catch {
    // gone already
  }
}

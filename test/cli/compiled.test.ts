// bin.mjs runs the compiled build only when it was made from exactly the sources
// present: any edit, move, new file or removed file sends it back to the sources (tsx).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
// @ts-expect-error: a plain .mjs module without types
import { buildDirOf, completeMarker, currentBuild, sourceFingerprint } from '../../src/cli/compiled.mjs'

const repo = join(import.meta.dirname, '..', '..')

test('the build for the sources present is found only when complete; every edit, move, new or removed file changes the fingerprint', () => {
  const root = mkdtempSync(join(tmpdir(), 'blobfs-fingerprint-'))
  const src = join(root, 'src')
  const cache = join(root, 'cache')
  try {
    mkdirSync(join(src, 'a'), { recursive: true })
    mkdirSync(join(src, 'b'))
    writeFileSync(join(src, 'top.ts'), 'export const top = 1\n')
    writeFileSync(join(src, 'a', 'f.ts'), 'export const f = 2\n')
    writeFileSync(join(src, 'notes.md'), 'not a source\n')
    const markBuilt = () => {
      const dir = buildDirOf(sourceFingerprint(src), cache)
      mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, completeMarker), 'x\n')
      return join(dir, 'cli', 'main.js')
    }
    assert.equal(currentBuild(src, cache), null, 'nothing built')
    mkdirSync(buildDirOf(sourceFingerprint(src), cache), { recursive: true })
    assert.equal(currentBuild(src, cache), null, 'a build without its completion marker is not run')
    const main = markBuilt()
    assert.equal(currentBuild(src, cache), main)

    writeFileSync(join(src, 'notes.md'), 'other files do not count\n')
    assert.equal(currentBuild(src, cache), main)

    utimesSync(join(src, 'a', 'f.ts'), new Date(), new Date(Date.now() + 5000))
    assert.equal(currentBuild(src, cache), null, 'an edited source (new mtime) has no build')
    markBuilt()
    renameSync(join(src, 'a', 'f.ts'), join(src, 'b', 'f.ts'))
    assert.equal(currentBuild(src, cache), null, 'a source moved to another directory has no build')
    markBuilt()
    writeFileSync(join(src, 'b', 'g.ts'), 'export const g = 3\n')
    assert.equal(currentBuild(src, cache), null, 'a new source has no build')
    markBuilt()
    unlinkSync(join(src, 'top.ts'))
    assert.equal(currentBuild(src, cache), null, 'a removed source has no build')
    const last = markBuilt()

    // An editor's dangling lock link is not a source, and nothing unexpected throws.
    symlinkSync(join(src, 'gone.ts'), join(src, '.#lock.ts'))
    assert.equal(currentBuild(src, cache), last)
    assert.equal(currentBuild(join(root, 'missing'), cache), null)

    process.env.BLOBFS_RUN_SOURCES = '1'
    try {
      assert.equal(currentBuild(src, cache), null, 'BLOBFS_RUN_SOURCES=1 forces the sources')
    } finally {
      delete process.env.BLOBFS_RUN_SOURCES
    }
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
})

test('npm run build makes a complete build of the sources present, and blobfs runs from it', { timeout: 300_000 }, () => {
  const build = spawnSync(process.execPath, [join(repo, 'src', 'cli', 'build.mjs')], { encoding: 'utf8' })
  assert.equal(build.status, 0, build.stderr + build.stdout)
  const main = currentBuild()
  assert.ok(main !== null, 'the build is current')
  // The compiled entry point answers on its own (ESM under node_modules, no tsx) ...
  const direct = spawnSync(process.execPath, ['--no-experimental-detect-module', main, '--help'], { encoding: 'utf8' })
  assert.equal(direct.status, 0, direct.stderr)
  assert.match(direct.stdout, /blobfs up/)
  // ... and a command that loads the native codec works from the compiled tree.
  const selftest = spawnSync(process.execPath, [main, 'selftest'], { encoding: 'utf8' })
  assert.equal(selftest.status, 0, selftest.stderr)
  assert.match(selftest.stdout, /kernel: \w+/)
})

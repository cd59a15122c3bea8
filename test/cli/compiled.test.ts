// bin.mjs runs the compiled build only when it was made from exactly the sources
// present: any edit, new file or removed file sends it back to the sources (tsx).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, utimesSync, writeFileSync, unlinkSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
// @ts-expect-error: a plain .mjs module without types
import { compiledIsCurrent, compiledMain, sourceFingerprint } from '../../src/cli/compiled.mjs'

const bin = join(import.meta.dirname, '..', '..', 'src', 'cli', 'bin.mjs')

test('the fingerprint follows every edit, new file and removed file; a stale stamp is not current', () => {
  const dir = mkdtempSync(join(tmpdir(), 'blobfs-fingerprint-'))
  try {
    mkdirSync(join(dir, 'sub'))
    writeFileSync(join(dir, 'a.ts'), 'export const a = 1\n')
    writeFileSync(join(dir, 'sub', 'b.ts'), 'export const b = 2\n')
    writeFileSync(join(dir, 'notes.md'), 'not a source\n')
    const stamp = join(dir, 'stamp')
    assert.equal(compiledIsCurrent(dir, stamp), false, 'no stamp: not current')
    const first = sourceFingerprint(dir)
    writeFileSync(stamp, first + '\n')
    assert.equal(compiledIsCurrent(dir, stamp), true)
    assert.equal(sourceFingerprint(dir), first, 'same sources, same fingerprint')

    writeFileSync(join(dir, 'notes.md'), 'other files do not count\n')
    assert.equal(compiledIsCurrent(dir, stamp), true)

    utimesSync(join(dir, 'sub', 'b.ts'), new Date(), new Date(Date.now() + 5000))
    assert.equal(compiledIsCurrent(dir, stamp), false, 'an edited source (new mtime) makes the build stale')
    writeFileSync(stamp, sourceFingerprint(dir) + '\n')
    assert.equal(compiledIsCurrent(dir, stamp), true)

    writeFileSync(join(dir, 'sub', 'c.ts'), 'export const c = 3\n')
    assert.equal(compiledIsCurrent(dir, stamp), false, 'a new source makes the build stale')
    writeFileSync(stamp, sourceFingerprint(dir) + '\n')
    unlinkSync(join(dir, 'a.ts'))
    assert.equal(compiledIsCurrent(dir, stamp), false, 'a removed source makes the build stale')

    writeFileSync(stamp, sourceFingerprint(dir) + '\n')
    process.env.BLOBFS_RUN_SOURCES = '1'
    try {
      assert.equal(compiledIsCurrent(dir, stamp), false, 'BLOBFS_RUN_SOURCES=1 forces the sources')
    } finally {
      delete process.env.BLOBFS_RUN_SOURCES
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('npm run build makes the compiled tree current, and blobfs runs from it', { timeout: 300_000 }, () => {
  const build = spawnSync(process.execPath, [join(import.meta.dirname, '..', '..', 'src', 'cli', 'build.mjs')], { encoding: 'utf8' })
  assert.equal(build.status, 0, build.stderr + build.stdout)
  assert.equal(compiledIsCurrent(), true)
  // The compiled entry point answers on its own (no tsx), and so does bin.mjs.
  const direct = spawnSync(process.execPath, [compiledMain, '--help'], { encoding: 'utf8' })
  assert.equal(direct.status, 0, direct.stderr)
  assert.match(direct.stdout, /blobfs up/)
  const viaBin = spawnSync(process.execPath, ['--trace-warnings', bin, 'selftest', '--help'], { encoding: 'utf8' })
  assert.equal(viaBin.status, 0, viaBin.stderr)
})

// `blobfs selftest` runs as the README says and reports every kernel agreeing.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const bin = fileURLToPath(new URL('../../src/cli/bin.mjs', import.meta.url))

test('blobfs selftest --json: every kernel agrees and the chosen kernel is named', () => {
  const result = spawnSync(process.execPath, [bin, 'selftest', '--stripes', '5', '--shard-kib', '16', '--json'], { encoding: 'utf8' })
  assert.equal(result.status, 0, result.stderr)
  const report = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as {
    ok: boolean
    kernel: string
    available: string[]
    reports: { kernel: string; encodeGbps: number }[]
    problems: string[]
  }
  assert.equal(report.ok, true)
  assert.deepEqual(report.problems, [])
  assert.ok(report.available.includes(report.kernel))
  assert.deepEqual(report.reports.map((r) => r.kernel), report.available)
  for (const r of report.reports) assert.ok(r.encodeGbps > 0)
})

test('blobfs selftest --help shows examples', () => {
  const result = spawnSync(process.execPath, [bin, 'selftest', '--help'], { encoding: 'utf8' })
  assert.equal(result.status, 0)
  assert.match(result.stdout, /Examples:/)
  assert.match(result.stdout, /blobfs selftest/)
})

// Durations on the command line: units required, positive unless the flag allows
// zero (a repair grace of 0s means "repair at once"), clear errors otherwise.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { formatDuration, parseDuration } from '../../src/cli/duration.ts'
import { isBlobfsError } from '../../src/errors.ts'

test('durations parse with their unit; zero only where allowed', () => {
  assert.equal(parseDuration('500ms', '--x'), 500)
  assert.equal(parseDuration('2.5s', '--x'), 2500)
  assert.equal(parseDuration('10m', '--down-timeout'), 600_000)
  assert.equal(parseDuration('7d', '--x'), 7 * 86_400_000)
  assert.equal(parseDuration('0s', '--repair-grace', { zero: true }), 0)
  for (const bad of ['0s', '60', '5 parsecs', '', '-1s']) {
    assert.throws(() => parseDuration(bad, '--down-timeout'), (e) => isBlobfsError(e, 'InvalidArgument') && e.message.includes('--down-timeout'))
  }
  assert.equal(formatDuration(600_000), '10m')
})

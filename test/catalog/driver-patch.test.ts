// The catalog driver carries blobfs's fix for the null-socket crash on a server
// restart (src/catalog/driver-patch.mjs; exercised end to end by
// test/faults/catalog-restart.test.ts). Without it, any blobfs process dies when
// the catalog restarts under traffic.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { driverFiles, patchDriver, patchMarker } from '../../src/catalog/driver-patch.mjs'

test('the postgres.js driver is patched (ESM and CommonJS builds), and patching again changes nothing', () => {
  for (const file of driverFiles()) {
    assert.ok(readFileSync(file, 'utf8').includes(patchMarker), `${file} is not patched: run \`npm run patch:driver\` (npm install does it)`)
  }
  assert.deepEqual(patchDriver(), [])
})

// How often a node's repair side reloads the node registry when it has nothing to
// do. The worker reloads it right after claiming work (test/repair/repair-worker
// .test.ts, "judges nodes on a view reloaded after it claimed"), so the background
// reload only keeps an idle view from growing old: with the default down-timeout,
// 12 idle nodes must not reload every 2 s (they did: a third of an idle cluster's
// catalog statements), and the view is never older than a quarter of the
// down-timeout nor than 30 s.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { repairRegistryRefreshMs, repairRegistryRefreshMsMax } from '../../src/cli/node-repair.ts'
import { downTimeoutMsDefault, downTimeoutMsProduction } from '../../src/limits.ts'

test('an idle repair side reloads the registry rarely, and never less often than a quarter of the down-timeout or 30 s', () => {
  assert.ok(repairRegistryRefreshMs(downTimeoutMsDefault) >= 10_000, `default down-timeout: every ${repairRegistryRefreshMs(downTimeoutMsDefault)} ms`)
  assert.equal(repairRegistryRefreshMsMax, 30_000)
  for (const downTimeoutMs of [1, 100, 1_000, 4_000, 30_000, downTimeoutMsDefault, 120_000, downTimeoutMsProduction, 86_400_000]) {
    const every = repairRegistryRefreshMs(downTimeoutMs)
    assert.ok(every >= 200, `${downTimeoutMs}: at least 200 ms apart`)
    assert.ok(every <= Math.max(200, downTimeoutMs / 4), `${downTimeoutMs}: within a quarter of the down-timeout`)
    assert.ok(every <= repairRegistryRefreshMsMax, `${downTimeoutMs}: within 30 s`)
  }
})

// Fault injection on real processes: 4 of 12 nodes SIGKILLed, one in each rack.
// Repair (the workers inside the surviving nodes) must bring every stripe back to
// 12 chunks on 12 distinct running nodes — onto 4 replacement nodes, since every
// stripe already used all 12 — with the rack rule kept; checked in the catalog's
// rows and on the nodes. Then 4 OTHER nodes die, and every object must still read
// back byte-identical: proof that full redundancy was really restored.
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { startTestCluster, type TestCluster } from '../support/cluster.ts'
import {
  assertAllReadBack,
  assertEveryChunkChecks,
  clientConfig,
  fastRepairArgs,
  putAll,
  redundancyGap,
  seededBytes,
  waitForFullRedundancy,
} from './support.ts'
import { seededRandom } from '../../src/random.ts'

describe('4 of 12 nodes die (one per rack), then 4 others', () => {
  let cluster: TestCluster
  before(async () => {
    cluster = await startTestCluster({ nodes: 12, racks: 4, nodeArgs: fastRepairArgs })
  })
  after(async () => {
    await cluster?.stop()
  })

  test('repair restores 12 chunks per stripe; after 4 more deaths every object reads back', async () => {
    const client = await cluster.open(clientConfig)
    await client.objects.createBucket('loss', 'tester')
    const random = seededRandom(8)
    const bodies = new Map([4 * 1024 * 1024 + 3, 1 * 1024 * 1024, 700_000, 5000, 3 * 1024 * 1024 - 1].map((size, i) => [`obj-${i}`, seededBytes(random, size)]))
    await putAll(client, 'loss', bodies)
    assert.equal(await redundancyGap(client.catalog, cluster), null, 'written with full redundancy')

    // Replacement hardware first, one node per rack, then the failures.
    for (let rack = 0; rack < 4; rack++) await cluster.addNode(`rack-${rack}`)
    const victims = [0, 5, 10, 3].map((i) => cluster.nodes[i]!)
    assert.deepEqual(new Set(victims.map((n) => n.rack)).size, 4, 'one victim per rack')
    await Promise.all(victims.map((n) => n.kill('SIGKILL')))
    await assertAllReadBack(client, 'loss', bodies) // degraded reads while nothing is repaired yet

    await waitForFullRedundancy(client.catalog, cluster, 120_000, 3)
    const checked = await assertEveryChunkChecks(client)
    assert.ok(checked >= 12 * 10, `every one of ${checked} chunks is on its node and passes its check`)
    const rebuilt = await client.catalog.db.sql`SELECT count(*)::int AS n FROM chunk_deletions WHERE reason = 'REPAIRED'`
    assert.ok(rebuilt[0]!.n > 0, 'the lost chunks were replaced and queued for deletion from the dead nodes')

    const others = [1, 6, 11, 12].map((i) => cluster.nodes[i]!)
    assert.ok(others.every((n) => !victims.includes(n)))
    await Promise.all(others.map((n) => n.kill('SIGKILL')))
    await assertAllReadBack(client, 'loss', bodies)
  })
})

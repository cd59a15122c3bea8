// Fault injection on real processes, one cluster, two failures in turn.
// 1. 4 of 12 nodes SIGKILLed, one in each rack. Repair (the workers inside the
//    surviving nodes) must bring every stripe back to 12 chunks on 12 distinct
//    running nodes — onto 4 replacement nodes, since every stripe already used all
//    12 — with the rack rule kept; checked in the catalog's rows and on the nodes.
//    Then 4 OTHER nodes die, and every object must still read back byte-identical:
//    proof that full redundancy was really restored.
// 2. A whole rack dies. No object may be lost (at most m chunks of a stripe share a
//    rack), `blobfs repair --wait` follows the repair to its end, and afterwards
//    every stripe is whole on running nodes — onto a replacement rack — every chunk
//    passes its check, and the work shows in the nodes' metrics.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { after, before, describe, test } from 'node:test'
import { blobfsBin, startTestCluster, type TestCluster } from '../support/cluster.ts'
import {
  assertAllReadBack,
  assertEveryChunkChecks,
  clientConfig,
  fastRepairArgs,
  putAll,
  redundancyGap,
  seededBytes,
  waitFor,
  waitForFullRedundancy,
} from './support.ts'
import { seededRandom } from '../../src/random.ts'

function blobfs(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [blobfsBin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.once('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

describe('nodes and a rack die; repair restores full redundancy', () => {
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

  test('no object is lost; blobfs repair --wait returns once a replacement rack holds the rebuilt chunks', async () => {
    const client = await cluster.open(clientConfig)
    // The 4 nodes killed last come back (their chunks are still the stripes' chunks): 12 running, 3 per rack.
    await Promise.all([1, 6, 11, 12].map((i) => cluster.nodes[i]!).filter((n) => n.process === null).map((n) => n.start()))
    await waitForFullRedundancy(client.catalog, cluster, 60_000, 3)
    await client.objects.createBucket('rack', 'tester')
    const random = seededRandom(4)
    const bodies = new Map([3 * 1024 * 1024 + 11, 2 * 1024 * 1024, 100_000].map((size, i) => [`r-${i}`, seededBytes(random, size)]))
    await putAll(client, 'rack', bodies)

    const idle = await blobfs(['repair', '--json', '--catalog', cluster.catalogUrl], 60_000)
    assert.equal(idle.code, 0, idle.stderr)
    assert.equal(JSON.parse(idle.stdout).backlog, 0)

    // The replacement rack is racked first, so the repair never waits (and backs off) for nodes to go to.
    for (let i = 0; i < 3; i++) await cluster.addNode('rack-4')
    const rack0 = cluster.nodes.filter((n) => n.rack === 'rack-0' && n.process !== null)
    assert.equal(rack0.length, 3)
    await Promise.all(rack0.map((n) => n.kill('SIGKILL')))
    await assertAllReadBack(client, 'rack', bodies) // 3 chunks of each stripe gone: reads decode

    // Wait for the detector to queue the stripes (or the repair to be over already), then follow it with the command.
    await waitFor('the dead rack\'s stripes to be queued', async () => {
      const stats = await client.catalog.repairs.stats()
      return stats.ready + stats.leased + stats.delayed > 0 || (await redundancyGap(client.catalog, cluster, 3)) === null
    }, 60_000, 100)
    const waited = await blobfs(['repair', '--wait', '--json', '--timeout', '2m', '--interval', '300ms', '--catalog', cluster.catalogUrl], 150_000)
    assert.equal(waited.code, 0, waited.stderr)
    assert.equal(JSON.parse(waited.stdout.trim().split('\n').pop()!).backlog, 0)

    assert.equal(await redundancyGap(client.catalog, cluster, 3), null, 'every stripe whole again, at most 3 chunks per rack')
    await assertEveryChunkChecks(client)
    await assertAllReadBack(client, 'rack', bodies)

    let rebuiltBytes = 0
    for (const node of cluster.nodes.filter((n) => n.process !== null)) {
      const text = await (await fetch(`${node.url}/metrics`)).text()
      assert.match(text, /^blobfs_repair_backlog_tasks\{state="ready"\} 0$/m)
      const match = /^blobfs_repair_bytes_rebuilt_total (\d+)$/m.exec(text)
      assert.ok(match, 'every node exports its repair counters')
      rebuiltBytes += Number(match[1])
    }
    assert.ok(rebuiltBytes >= 3 * 128 * 1024, `the nodes report ${rebuiltBytes} bytes rebuilt`)
  })
})

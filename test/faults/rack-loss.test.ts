// Fault injection on real processes: a whole rack (3 of 12 nodes) is SIGKILLed.
// No object may be lost (the rack rule puts at most m chunks of a stripe in one
// rack), `blobfs repair --wait` follows the repair to its end, and afterwards every
// stripe has 12 chunks on running nodes — onto a replacement rack — with the rule
// kept, every chunk passing its check, and the work visible in the nodes' metrics.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { after, before, describe, test } from 'node:test'
import { seededRandom } from '../../src/random.ts'
import { blobfsBin, startTestCluster, type TestCluster } from '../support/cluster.ts'
import { assertAllReadBack, assertEveryChunkChecks, clientConfig, fastRepairArgs, putAll, redundancyGap, seededBytes } from './support.ts'

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

describe('a whole rack dies', () => {
  let cluster: TestCluster
  before(async () => {
    cluster = await startTestCluster({ nodes: 12, racks: 4, nodeArgs: fastRepairArgs })
  })
  after(async () => {
    await cluster?.stop()
  })

  test('no object is lost; blobfs repair --wait returns once a replacement rack holds the rebuilt chunks', async () => {
    const client = await cluster.open(clientConfig)
    await client.objects.createBucket('rack', 'tester')
    const random = seededRandom(4)
    const bodies = new Map([3 * 1024 * 1024 + 11, 2 * 1024 * 1024, 100_000].map((size, i) => [`r-${i}`, seededBytes(random, size)]))
    await putAll(client, 'rack', bodies)

    const idle = await blobfs(['repair', '--json', '--catalog', cluster.catalogUrl], 60_000)
    assert.equal(idle.code, 0, idle.stderr)
    assert.equal(JSON.parse(idle.stdout).backlog, 0)

    const rack0 = cluster.nodes.filter((n) => n.rack === 'rack-0')
    assert.equal(rack0.length, 3)
    await Promise.all(rack0.map((n) => n.kill('SIGKILL')))
    await assertAllReadBack(client, 'rack', bodies) // 3 chunks of each stripe gone: reads decode

    for (let i = 0; i < 3; i++) await cluster.addNode('rack-4')
    // Wait for the detector to queue the stripes, then follow the repair with the command.
    const started = Date.now()
    while (Number((await client.catalog.repairs.stats()).ready) + Number((await client.catalog.repairs.stats()).leased) === 0) {
      assert.ok(Date.now() - started < 60_000, 'the dead rack\'s stripes were queued')
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
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

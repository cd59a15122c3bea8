// `blobfs status` and `blobfs node drain` as operators run them, against a real
// cluster (PostgreSQL + 8 `blobfs node` processes in 4 racks, RS(4,2) objects):
// status reports nodes, workers, scrub and multipart figures; a drain empties a
// node in the catalog while every object stays readable and status shows it
// DRAINED; a killed node shows up as DOWN with its stripes lacking one chunk each.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'
import type { Cluster } from '../../src/cli/cluster.ts'
import type { StatusReport } from '../../src/cli/status-report.ts'
import { blobfsBin, startTestCluster, type TestCluster } from '../support/cluster.ts'

const run = promisify(execFile)
const stripeSizeBytes = 4 * 64 * 1024

async function blobfs(args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [blobfsBin, ...args], { timeout: 90_000, maxBuffer: 16 * 1024 * 1024 })
    return { stdout, stderr, code: 0 }
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; code?: number }
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: typeof e.code === 'number' ? e.code : -1 }
  }
}

describe('blobfs status and blobfs node drain on a real cluster', () => {
  let cluster: TestCluster
  let client: Cluster
  const data = new Map<string, Buffer>()
  const status = async (): Promise<StatusReport> => {
    const result = await blobfs(['status', '--catalog', cluster.catalogUrl, '--json'])
    assert.equal(result.code, 0, result.stderr)
    return JSON.parse(result.stdout) as StatusReport
  }
  const readAll = async () => {
    for (const [key, bytes] of data) {
      const read = await client.objects.getObject('drain-test', key)
      assert.ok(Buffer.concat(await read.body.toArray()).equals(bytes), `${key} reads back byte-identical`)
    }
  }

  before(async () => {
    cluster = await startTestCluster({ nodes: 8, racks: 4 })
    client = await cluster.open({ dataShards: 4, parityShards: 2, stripeSizeBytes })
    await client.objects.createBucket('drain-test', 'tester')
    for (let i = 0; i < 12; i++) {
      const bytes = randomBytes(stripeSizeBytes * (1 + (i % 3)) + 11 * i)
      data.set(`obj-${i}`, bytes)
      await client.objects.putObject('drain-test', `obj-${i}`, Readable.from([bytes]))
    }
    await client.objects.createMultipartUpload('drain-test', 'pending')
  })
  after(async () => {
    await cluster?.stop()
  })

  test('status --json: every node by rack, its workers and scrub, the queues and multipart sessions', async () => {
    const report = await status()
    assert.equal(report.nodes.length, 8)
    assert.deepEqual(report.nodeStates, { UP: 8 })
    assert.equal(report.racks, 4)
    assert.equal(report.objects, 12)
    assert.deepEqual(report.degraded, { stripes: 0, byLacking: {}, truncated: false })
    assert.deepEqual(report.multipart, { open: 1, idle: 0, idleMs: 7 * 24 * 3600_000, capped: false })
    assert.equal(report.scrub.nodesReporting, 8)
    for (const name of ['scrub', 'compaction', 'heartbeat', 'chunk-gc', 'multipart-gc', 'inventory-sweep']) {
      assert.equal(report.workers[name]?.nodes, 8, `${name} runs on every node`)
    }
    assert.ok(report.nodes.every((n) => n.live !== null && n.unreachableReason === null))
    assert.equal(report.deletionRatePerSec, 0)
    const text = await blobfs(['status', '--catalog', cluster.catalogUrl])
    assert.equal(text.code, 0, text.stderr)
    for (const line of ['nodes:     8 in 4 racks (8 UP)', 'degraded:  none', 'multipart: 1 open, 0 idle longer than 7d', 'rack rack-0', 'rack rack-3']) {
      assert.ok(text.stdout.includes(line), `'${line}' in:\n${text.stdout}`)
    }
  })

  test('node drain empties the node in the catalog; objects stay readable; status shows it DRAINED; a re-run is a no-op', async () => {
    const node = cluster.nodes[5]!
    const before = await client.catalog.chunks.countOnNode(node.id)
    assert.ok(before > 0)
    const result = await blobfs(['node', 'drain', node.id.slice(0, 8), '--catalog', cluster.catalogUrl, '--json'])
    assert.equal(result.code, 0, result.stdout + result.stderr)
    const summary = JSON.parse(result.stdout) as { drained: boolean; moved: number; failed: number; remaining: number }
    assert.deepEqual([summary.drained, summary.moved, summary.failed, summary.remaining], [true, before, 0, 0])
    assert.equal(await client.catalog.chunks.countOnNode(node.id), 0)
    await readAll()
    const report = await status()
    const drained = report.nodes.find((n) => n.id === node.id)!
    assert.deepEqual([drained.state, drained.drained, drained.catalogChunks], ['DRAINING', true, 0])
    assert.equal(report.deletionBacklog.delayed, before, 'the old copies wait out the deletion delay in the GC queue')
    const text = await blobfs(['status', '--catalog', cluster.catalogUrl])
    assert.match(text.stdout, new RegExp(`${node.id}  DRAINED`))
    const again = await blobfs(['node', 'drain', node.url, '--catalog', cluster.catalogUrl])
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stdout, /0 chunks moved/)
    assert.match(again.stdout, /is drained/)
  })

  test('a killed node: status shows it DOWN and its stripes lacking one chunk each; drain refuses it', async () => {
    const node = cluster.nodes[2]!
    const stripes = await client.catalog.db.sql`SELECT DISTINCT object_id, part_index, stripe_index FROM object_chunks_allocation WHERE storage_node_id = ${node.id}`
    assert.ok(stripes.length > 0)
    await node.kill('SIGKILL')
    await client.catalog.nodes.markDown(node.id)
    const report = await status()
    assert.equal(report.nodeStates.DOWN, 1)
    assert.deepEqual(report.degraded, { stripes: stripes.length, byLacking: { 1: stripes.length }, truncated: false })
    const down = report.nodes.find((n) => n.id === node.id)!
    assert.deepEqual([down.live, down.unreachableReason], [null, 'node is DOWN'])
    const text = await blobfs(['status', '--catalog', cluster.catalogUrl])
    assert.ok(text.stdout.includes(`degraded:  ${stripes.length} lacking 1 chunk`), text.stdout)
    const refused = await blobfs(['node', 'drain', node.id, '--catalog', cluster.catalogUrl])
    assert.equal(refused.code, 2)
    assert.match(refused.stderr, /DOWN: its chunks cannot be copied/)
    await readAll()
  })
})

// Fault: one node's disk fills up under a steady stream of writes. Every node's
// data directory is a 32 MiB tmpfs, so placement sees them alike; on one of them
// something else has already taken all but a few MiB (a filler file), as happens
// when a disk is shared or a log grows. What must hold: every write
// is acknowledged — the full node answers 507 and the stripe goes to an alternate,
// then the node flags itself READONLY and placement skips it — later stripes keep
// full redundancy (k+m chunks, none on the full node, no repair needed), and every
// object reads back byte-identical, including those with chunks on the full node.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { startTestCluster, type TestCluster } from '../support/cluster.ts'

const stripeSizeBytes = 4 * 64 * 1024
const fullNode = 0

function sha(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

describe('fault: one node runs out of disk', { timeout: 180_000 }, () => {
  let cluster: TestCluster
  before(async () => {
    cluster = await startTestCluster({
      nodes: 7,
      racks: 3,
      blockSize: '2MiB',
      prepareDataDir: (index, dir) => {
        try {
          execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=32m', 'tmpfs', dir])
        } catch (error) {
          throw new Error(`this test gives each node a small tmpfs as its disk; it needs root (mount -t tmpfs): ${(error as Error).message}`)
        }
        if (index === fullNode) writeFileSync(join(dir, 'filler'), Buffer.alloc(26 * 1024 * 1024, 1))
      },
      cleanupDataDir: (_index, dir) => {
        execFileSync('umount', ['-l', dir])
      },
    })
  })
  after(async () => {
    await cluster?.stop()
  })

  test('writes go elsewhere once it is full; nothing is lost, redundancy stays full', async () => {
    const { objects, catalog } = await cluster.open({ dataShards: 4, parityShards: 2, stripeSizeBytes })
    const full = cluster.nodes[fullNode]!
    await objects.createBucket('full-disk', 'tester')
    const written = new Map<string, string>()
    let readOnlyAfter = -1
    // 7 nodes, 6 chunks per stripe: the node takes most stripes until its few MiB run out.
    for (let i = 0; i < 90; i++) {
      const data = randomBytes(2 * stripeSizeBytes + 1000 * i)
      await objects.putObject('full-disk', `obj-${i}`, Readable.from([data]))
      written.set(`obj-${i}`, sha(data))
      if (readOnlyAfter < 0 && (await catalog.nodes.get(full.id))!.state === 'READONLY') readOnlyAfter = i
    }
    assert.ok(readOnlyAfter >= 0 && readOnlyAfter < 80, `the node filled up and flagged itself READONLY (after object ${readOnlyAfter})`)

    const rows = await catalog.db.sql<{ key: Buffer; part_index: number; stripe_index: number; chunks: bigint; on_full: bigint }[]>`
      SELECT o.object_key AS key, c.part_index, c.stripe_index, count(*) AS chunks,
        sum(CASE WHEN c.storage_node_id = ${full.id} THEN 1 ELSE 0 END) AS on_full
      FROM object_chunks_allocation c JOIN bucket_objects o ON o.object_id = c.object_id
      GROUP BY o.object_key, c.part_index, c.stripe_index`
    assert.ok(rows.every((r) => Number(r.chunks) === 6), 'every stripe has all k+m chunks')
    assert.ok(rows.some((r) => Number(r.on_full) > 0), 'the full node holds chunks of earlier objects')
    const lastObjects = [...written.keys()].slice(-10)
    for (const r of rows.filter((r) => lastObjects.includes(Buffer.from(r.key).toString()))) {
      assert.equal(Number(r.on_full), 0, 'objects written after the node filled have no chunk on it')
    }
    assert.deepEqual(await catalog.repairs.stats(), { ready: 0, leased: 0, delayed: 0 }, 'no stripe was written degraded')
    for (const [key, digest] of written) {
      const read = await objects.getObject('full-disk', key)
      assert.equal(sha(Buffer.concat(await read.body.toArray())), digest, `${key} reads back byte-identical`)
    }
    const health = await fetch(`${full.url}/health`).then((r) => r.json() as Promise<{ status: string }>)
    assert.equal(health.status, 'read-only')
    const metrics = await fetch(`${full.url}/metrics`).then((r) => r.text())
    const refused = Number(/blobfs_node_errors_total\{code="InsufficientStorage"\} (\d+)/.exec(metrics)?.[1] ?? 0)
    assert.ok(refused > 0, 'the full node answered 507 to writes, which went to alternates')
  })
})

// The GC workers inside real `blobfs node` processes (catalog on PostgreSQL), with
// the times made short: a deleted object, an idle multipart upload and the chunks
// of a writer that never committed all disappear from the nodes by themselves, so
// the nodes end holding exactly the chunks the catalog references; the workers
// show in every node's /health and /metrics.
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { Readable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { request } from 'undici'
import { checksumTree } from '../../src/codec/checksum.ts'
import { startTestCluster, type TestCluster } from '../support/cluster.ts'
import { difference, referencedChunks, storedChunks, waitUntil } from '../support/inventory.ts'

const stripeSizeBytes = 4 * 64 * 1024

describe('GC workers in blobfs node processes', () => {
  let cluster: TestCluster
  before(async () => {
    cluster = await startTestCluster({
      nodes: 6,
      racks: 3,
      nodeArgs: ['--gc-interval-ms', '300', '--orphan-grace', '3s', '--multipart-idle', '2s'],
    })
  })
  after(async () => {
    await cluster?.stop()
  })

  test('deleted objects, idle uploads and a crashed writer leave nothing on the nodes', async () => {
    const { objects, catalog, store } = await cluster.open({ dataShards: 4, parityShards: 2, stripeSizeBytes }, { deletionDelayMs: 0 })
    const nodeIds = cluster.nodes.map((n) => n.id)
    await objects.createBucket('gc-test', 'tester')
    const kept = randomBytes(2 * stripeSizeBytes + 3)
    await objects.putObject('gc-test', 'kept', Readable.from([kept]))
    await objects.putObject('gc-test', 'deleted', Readable.from([randomBytes(3 * stripeSizeBytes)]))
    await objects.deleteObject('gc-test', 'deleted')
    const upload = await objects.createMultipartUpload('gc-test', 'abandoned')
    await objects.uploadPart('gc-test', 'abandoned', upload.uploadId, 1, Readable.from([randomBytes(stripeSizeBytes)]))
    // A writer that stored chunks and died before its commit.
    // (No "more stored than referenced" check here: on a loaded machine the 3 s grace can
    // pass before it runs, and the workers may already have done their job.)
    const orphans: string[] = []
    for (const node of nodeIds) {
      const data = randomBytes(64 * 1024)
      const chunkId = randomUUID()
      await store.put(node, chunkId, data, checksumTree(data))
      orphans.push(chunkId)
    }

    await waitUntil(
      async () => {
        const [stored, referenced] = [await storedChunks(store, nodeIds), await referencedChunks(catalog)]
        return difference(stored, referenced).length === 0 && difference(referenced, stored).length === 0
      },
      45_000,
      async () => `left on the nodes: ${difference(await storedChunks(store, nodeIds), await referencedChunks(catalog)).length} chunks`,
    )
    const left = await storedChunks(store, nodeIds)
    assert.deepEqual(orphans.filter((id) => [...left].some((entry) => entry.endsWith(id))), [], 'the crashed writer\'s chunks are gone')
    assert.equal(await catalog.multipart.get(upload.uploadId), null, 'the idle upload was aborted')
    assert.deepEqual(await catalog.deletions.stats(), { ready: 0, leased: 0, delayed: 0 })
    const read = await objects.getObject('gc-test', 'kept')
    assert.ok(Buffer.concat(await read.body.toArray()).equals(kept), 'the kept object reads back intact')

    const health = (await (await request(`${cluster.nodes[0]!.url}/health`)).body.json()) as { workers: { name: string; steps: number }[] }
    const names = health.workers.map((w) => w.name)
    for (const name of ['chunk-gc', 'multipart-gc', 'inventory-sweep']) assert.ok(names.includes(name), `${name} in /health (${names.join(', ')})`)
    const metrics = await (await request(`${cluster.nodes[0]!.url}/metrics`)).body.text()
    assert.match(metrics, /blobfs_node_worker\{worker="chunk-gc",field="deleted"\}/)
    assert.match(metrics, /blobfs_node_worker\{worker="inventory-sweep",field="passes"\}/)
  })
})

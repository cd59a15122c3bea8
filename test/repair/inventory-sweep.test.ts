// The inventory sweep over a real catalog and in-memory nodes on a test clock:
// chunks nothing references (a writer that crashed before its commit, a copy left
// on a node a stripe write timed out on) are queued once older than the grace and
// then deleted by the chunk GC, so afterwards the nodes hold exactly the
// referenced chunks; a chunk younger than the grace — a write in progress — is
// never touched; a chunk already waiting out the deletion delay keeps its
// schedule; a broken inventory stream restarts the pass. And the object layer
// refuses to commit a write that took longer than its bound (the grace invariant).
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import { checksumTree } from '../../src/codec/checksum.ts'
import { isBlobfsError } from '../../src/errors.ts'
import { objectStoreConfig } from '../../src/objects/config.ts'
import { ObjectStore } from '../../src/objects/object-store.ts'
import { ChunkGc } from '../../src/repair/chunk-gc.ts'
import { InventorySweep } from '../../src/repair/inventory-sweep.ts'
import { forEachBackend } from '../catalog/harness.ts'
import { memoryCluster, nodeIds, quietLog, rackOf, runUntilIdle, stripeSizeBytes } from './harness.ts'

const graceMs = 60 * 60_000
const hourMs = 60 * 60_000

forEachBackend((backend) => {
  test('orphans older than the grace are deleted, young ones and referenced ones stay: the nodes end with exactly the referenced chunks', async () => {
    let nowMs = 1_000_000
    const catalog = await backend.freshCatalog({ deletionDelayMs: 0 })
    const cluster = await memoryCluster(catalog, { now: () => nowMs })
    await cluster.put('a', randomBytes(2 * stripeSizeBytes))
    await cluster.put('b', randomBytes(stripeSizeBytes + 1))
    const plant = async (node: string, chunkId: string = randomUUID(), data: Buffer = randomBytes(4096)) => {
      await cluster.memory.put(node, chunkId, data, checksumTree(data))
      return `${node}/${chunkId}`
    }
    // A crashed writer: chunks on the nodes, never committed.
    const crashed = await Promise.all(nodeIds.map((node) => plant(node)))
    // A stripe write that timed out on one node and went to an alternate with the same chunk id.
    const [referencedKey] = [...(await cluster.referenced())]
    const [home, sharedId] = referencedKey!.split('/') as [string, string]
    const elsewhere = nodeIds.find((n) => n !== home)!
    const duplicate = await plant(elsewhere, sharedId, await cluster.memory.get(home, sharedId))
    nowMs += graceMs + 1
    // A write in progress: stored just now, not referenced yet.
    const young = await Promise.all(nodeIds.slice(0, 3).map((node) => plant(node)))

    const sweeps = nodeIds.map((nodeId) => new InventorySweep({ catalog, store: cluster.store, nodeId, log: quietLog, graceMs, intervalMs: hourMs, batchChunks: 3, chunksPerSecMax: 1e9, now: () => nowMs }))
    for (const sweep of sweeps) await runUntilIdle(sweep)
    const queued = sweeps.reduce((sum, s) => sum + Number(s.status().orphansQueued), 0)
    assert.equal(queued, crashed.length + 1, 'every old orphan is queued, the duplicate copy included')
    for (const node of nodeIds) await runUntilIdle(new ChunkGc({ catalog, store: cluster.store, nodeId: node, owner: 't', log: quietLog, deletesPerSecMax: 1e6 }))
    const expected = new Set([...(await cluster.referenced()), ...young])
    assert.deepEqual(cluster.stored(), expected, 'the nodes hold the referenced chunks and the young ones, nothing else')
    assert.ok(!cluster.stored().has(duplicate) && cluster.stored().has(referencedKey!), 'the stray copy went, the referenced one stayed')
    for (const key of ['a', 'b']) {
      const read = await cluster.objects.getObject(cluster.bucket, key)
      assert.ok((await read.body.toArray()).length > 0)
    }
    // The next pass waits for the interval; then nothing more is found (node 5 had no young chunk).
    const sweep = sweeps[5]!
    assert.equal((await sweep.step(new AbortController().signal)).state, 'idle')
    nowMs += hourMs
    const again = await runUntilIdle(sweep)
    assert.ok(again.length > 1, 'a new pass ran')
    assert.equal(sweep.status().lastPassOrphans, 0)
    assert.equal(sweep.status().passes, 2)
  })

  test('chunks waiting out the deletion delay keep their schedule', async () => {
    let nowMs = 5_000_000
    const catalog = await backend.freshCatalog({ deletionDelayMs: 10 * 60_000 })
    const cluster = await memoryCluster(catalog, { now: () => nowMs })
    await cluster.put('gone', randomBytes(stripeSizeBytes))
    await cluster.objects.deleteObject(cluster.bucket, 'gone')
    nowMs += graceMs + 1
    const node = nodeIds[2]!
    const sweep = new InventorySweep({ catalog, store: cluster.store, nodeId: node, log: quietLog, graceMs, chunksPerSecMax: 1e9, now: () => nowMs })
    await runUntilIdle(sweep)
    assert.equal(sweep.status().orphansQueued, 0, 'already queued: not queued again')
    assert.deepEqual(await catalog.deletions.stats({ nodeId: node }), { ready: 0, leased: 0, delayed: 1 }, 'still delayed')
  })

  test('a broken inventory stream fails the step and the pass starts over', async () => {
    const catalog = await backend.freshCatalog()
    const cluster = await memoryCluster(catalog)
    const node = nodeIds[1]!
    const sweep = new InventorySweep({ catalog, store: cluster.store, nodeId: node, log: quietLog, graceMs, chunksPerSecMax: 1e9 })
    cluster.store.setNodeFaults(node, { down: true })
    await assert.rejects(sweep.step(new AbortController().signal), (e) => isBlobfsError(e, 'NodeUnavailable'))
    assert.equal(sweep.status().inPass, false)
    cluster.store.clearNodeFaults(node)
    await runUntilIdle(sweep)
    assert.equal(sweep.status().passes, 1)
  })

  test('the object layer refuses to commit a write that took longer than its bound, and leaves nothing behind', async () => {
    const catalog = await backend.freshCatalog()
    const cluster = await memoryCluster(catalog)
    const slow = new ObjectStore({
      catalog,
      store: cluster.store,
      candidates: () => nodeIds.map((id) => ({ id, rack: rackOf(id), freeBytes: 1e12 })),
      config: objectStoreConfig({ stripeSizeBytes, writeDurationMsMax: 50 }),
    })
    async function* trickle() {
      yield randomBytes(stripeSizeBytes)
      await new Promise((resolve) => setTimeout(resolve, 120))
      yield randomBytes(10)
    }
    await assert.rejects(slow.putObject(cluster.bucket, 'slow', Readable.from(trickle())), (e) => isBlobfsError(e, 'Timeout'))
    assert.equal(await catalog.objects.get(cluster.bucket, 'slow'), null, 'nothing committed')
    const upload = await slow.createMultipartUpload(cluster.bucket, 'slow-mp')
    await assert.rejects(slow.uploadPart(cluster.bucket, 'slow-mp', upload.uploadId, 1, Readable.from(trickle())), (e) => isBlobfsError(e, 'Timeout'))
    assert.equal((await slow.listParts(cluster.bucket, 'slow-mp', upload.uploadId)).parts.length, 0)
    assert.equal(cluster.stored().size, 0, 'the chunks written were deleted')
  })
})

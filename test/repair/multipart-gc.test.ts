// Multipart GC over a real catalog and in-memory nodes: sessions idle past the
// limit are aborted and, after the chunk GC, their chunks are gone from the nodes;
// a session that received a part recently stays, however old it is; a part
// recorded after the scan saw a session keeps it alive.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'node:test'
import { ChunkGc } from '../../src/repair/chunk-gc.ts'
import { MultipartGc } from '../../src/repair/multipart-gc.ts'
import { forEachBackend } from '../catalog/harness.ts'
import { memoryCluster, nodeIds, quietLog, runUntilIdle, stripeSizeBytes } from './harness.ts'

const idleMs = 600

forEachBackend((backend) => {
  test('idle sessions are aborted and their chunks deleted; active and completed uploads are untouched', async () => {
    const catalog = await backend.freshCatalog({ deletionDelayMs: 0 })
    const cluster = await memoryCluster(catalog)
    const { objects, bucket } = cluster
    const part = () => Readable.from([randomBytes(stripeSizeBytes + 7)])
    const abandoned = []
    for (let i = 0; i < 5; i++) {
      const upload = await objects.createMultipartUpload(bucket, `abandoned-${i}`)
      if (i > 0) await objects.uploadPart(bucket, `abandoned-${i}`, upload.uploadId, 1, part())
      abandoned.push(upload.uploadId)
    }
    const active = await objects.createMultipartUpload(bucket, 'active')
    await objects.uploadPart(bucket, 'active', active.uploadId, 1, part())
    const done = await objects.createMultipartUpload(bucket, 'done')
    const p1 = await objects.uploadPart(bucket, 'done', done.uploadId, 1, part())
    await objects.completeMultipartUpload(bucket, 'done', done.uploadId, [{ partNumber: 1, etag: p1.etag }])
    await sleep(idleMs + 100)
    await objects.uploadPart(bucket, 'active', active.uploadId, 2, part()) // activity: the session is not idle

    const gc = new MultipartGc({ catalog, log: quietLog, idleMs, intervalMs: 60_000 })
    const [result] = await runUntilIdle(gc)
    assert.deepEqual(result, { state: 'idle', delayMs: 60_000 })
    assert.equal(gc.status().aborted, 5)
    assert.equal(gc.status().chunksQueued, 4 * 2 * 12, 'four sessions had one two-stripe part each')
    for (const uploadId of abandoned) assert.equal(await catalog.multipart.get(uploadId), null)
    assert.ok(await catalog.multipart.get(active.uploadId), 'the active session is kept')
    assert.deepEqual(await catalog.multipart.sessionStats({ idleMs, countMax: 100 }), { open: 1, idle: 0, capped: false })

    for (const node of nodeIds) await runUntilIdle(new ChunkGc({ catalog, store: cluster.store, nodeId: node, owner: 't', log: quietLog, deletesPerSecMax: 1e6 }))
    assert.deepEqual(cluster.stored(), await cluster.referenced(), 'only chunks of the active session and the completed object remain')
    const parts = await objects.listParts(bucket, 'active', active.uploadId)
    assert.deepEqual(parts.parts.map((p) => p.partNumber), [1, 2])
    const read = await objects.getObject(bucket, 'done')
    assert.equal(Buffer.concat(await read.body.toArray()).length, stripeSizeBytes + 7)
  })

  test('abortIdle re-checks: a part recorded after the scan keeps the session; a second abort finds it gone', async () => {
    const catalog = await backend.freshCatalog({ deletionDelayMs: 0 })
    const cluster = await memoryCluster(catalog)
    const upload = await cluster.objects.createMultipartUpload(cluster.bucket, 'late')
    await sleep(idleMs + 100)
    const [seen] = await catalog.multipart.findIdle({ idleMs, limit: 10 })
    assert.equal(seen?.uploadId, upload.uploadId)
    assert.deepEqual(await catalog.multipart.sessionStats({ idleMs, countMax: 100 }), { open: 1, idle: 1, capped: false })
    await cluster.objects.uploadPart(cluster.bucket, 'late', upload.uploadId, 1, Readable.from([randomBytes(1000)]))
    assert.equal(await catalog.multipart.abortIdle(upload.uploadId, idleMs), null, 'busy again: not aborted')
    await sleep(idleMs + 100)
    assert.deepEqual(await catalog.multipart.abortIdle(upload.uploadId, idleMs), { chunksQueued: 12 })
    assert.equal(await catalog.multipart.abortIdle(upload.uploadId, idleMs), null, 'already gone')
    await assert.rejects(catalog.multipart.abortIdle('not-a-uuid', idleMs), /upload id/)
  })

  test('sessionStats counts stop at countMax', async () => {
    const catalog = await backend.freshCatalog()
    const cluster = await memoryCluster(catalog)
    for (let i = 0; i < 4; i++) await cluster.objects.createMultipartUpload(cluster.bucket, `k${i}`)
    assert.deepEqual(await catalog.multipart.sessionStats({ idleMs: 3_600_000, countMax: 3 }), { open: 3, idle: 0, capped: true })
  })
})

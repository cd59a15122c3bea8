// Many writers racing on one key: exactly one version stays visible, and every
// other version that was ever committed is in the deletion queue — nothing leaked
// (a committed version's chunks neither visible nor queued), nothing lost (a
// visible version's chunks queued). Writers that gave up after their retries left
// no trace at all.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { openCatalog } from '../../src/catalog/catalog.ts'
import { isBlobfsError } from '../../src/errors.ts'
import { bucketName, chunkIdsOf, MiB, queuedDeletions, stripedObject } from './fixtures.ts'
import { forEachBackend } from './harness.ts'

forEachBackend((backend) => {
  test('concurrent commits to one key: one visible version, every replaced version queued for deletion', async () => {
    const url = await backend.freshUrl()
    // Two processes' worth of pools, so commits really run side by side.
    const writers = [await openCatalog(url, { connectionsMax: 8 }), await openCatalog(url, { connectionsMax: 8 })]
    try {
      for (let round = 0; round < 3; round++) {
        const bucket = bucketName('race')
        await writers[0]!.buckets.create({ name: bucket, owner: 'o' })
        const inputs = Array.from({ length: 16 }, () => stripedObject(bucket, 'hot-key', 16 * MiB))
        const outcomes = await Promise.allSettled(inputs.map((input, i) => writers[i % 2]!.objects.commit(input)))
        const committed = inputs.filter((_, i) => outcomes[i]!.status === 'fulfilled')
        const failed = inputs.filter((_, i) => outcomes[i]!.status === 'rejected')
        for (const outcome of outcomes) {
          if (outcome.status === 'rejected') assert.ok(isBlobfsError(outcome.reason, 'SerializationFailure'), String(outcome.reason))
        }
        assert.ok(committed.length >= 1)

        const listing = await writers[0]!.objects.list(bucket)
        assert.equal(listing.objects.length, 1, 'exactly one visible version')
        const visible = listing.objects[0]!.objectId
        assert.ok(committed.some((c) => c.objectId === visible))

        const queued = await queuedDeletions(writers[0]!)
        const liveRows = await writers[0]!.db.sql<{ chunk_id: string; object_id: string }[]>`
          SELECT chunk_id, object_id FROM object_chunks_allocation WHERE object_id IN ${writers[0]!.db.sql(inputs.map((i) => i.objectId))}`
        assert.ok(liveRows.every((r) => r.object_id === visible), 'only the visible version has chunk rows')
        assert.equal(liveRows.length, 12)
        for (const input of committed) {
          for (const id of chunkIdsOf(input)) {
            assert.equal(queued.has(id), input.objectId !== visible, `chunk of ${input.objectId === visible ? 'visible' : 'replaced'} version`)
          }
        }
        for (const input of failed) for (const id of chunkIdsOf(input)) assert.ok(!queued.has(id))
        const replacedCount = outcomes.filter((o) => o.status === 'fulfilled' && o.value.replaced !== null).length
        assert.equal(replacedCount, committed.length - 1, 'every commit but the first replaced exactly one version')
        console.log(`round ${round}: ${committed.length} committed, ${failed.length} gave up, ${writers[0]!.db.stats.retries + writers[1]!.db.stats.retries} retries so far`)
      }
    } finally {
      await Promise.all(writers.map((w) => w.close()))
    }
  })
})

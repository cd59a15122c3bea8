import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import fc from 'fast-check'
import { isBlobfsError } from '../../src/errors.ts'
import type { CommitObjectInput, StripeRecord } from '../../src/catalog/types.ts'
import { bucketName, chunkIdsOf, countRows, inlineObject, MiB, queuedDeletions, stripedObject } from './fixtures.ts'
import { openCatalog } from '../../src/catalog/catalog.ts'
import { forEachBackend } from './harness.ts'

/** Every stripe of a commit input located in the object, computed independently of the catalog. */
function allStripes(input: CommitObjectInput, k: number): StripeRecord[] {
  assert.ok('parts' in input.content)
  const out: StripeRecord[] = []
  let partOffset = 0
  for (const part of input.content.parts) {
    for (const stripe of part.stripes) {
      const lengthBytes = Math.min(part.stripeSizeBytes, part.sizeBytes - stripe.stripeIndex * part.stripeSizeBytes)
      out.push({
        partNumber: part.partNumber,
        stripeIndex: stripe.stripeIndex,
        objectOffsetBytes: partOffset + stripe.stripeIndex * part.stripeSizeBytes,
        lengthBytes,
        shardSizeBytes: Math.ceil(lengthBytes / k),
        chunks: [...stripe.chunks].sort((a, b) => a.chunkIndex - b.chunkIndex),
      })
    }
    partOffset += part.sizeBytes
  }
  return out
}

function overlapping(stripes: StripeRecord[], from: number, to: number): StripeRecord[] {
  return stripes.filter((s) => s.objectOffsetBytes < to && s.objectOffsetBytes + s.lengthBytes > from)
}

forEachBackend((backend) => {
  test('an inline object is committed and read back with its bytes and attributes', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'alice' })
    const input = {
      ...inlineObject(bucket, 'docs/hello.txt', Buffer.from('hello')),
      contentType: 'text/plain',
      userMetadata: { color: 'blue' },
      httpHeaders: { 'cache-control': 'max-age=60', 'content-disposition': 'attachment; filename="hello.txt"', expires: 'Thu, 01 Jan 2032 00:00:00 GMT' },
      posix: { mode: 0o100644, uid: 1000, gid: 100, mtimeNs: 1_700_000_000_123_456_789n, ctimeNs: 1_700_000_000_123_456_789n },
      checksumCrc32c: 0x9a71bb4c,
    }
    const { object, replaced } = await catalog.objects.commit(input)
    assert.equal(replaced, null)
    assert.equal(object.key, 'docs/hello.txt')
    assert.equal(object.scheme, 'INLINE')
    assert.equal(object.sizeBytes, 5)
    const found = await catalog.objects.lookup(bucket, 'docs/hello.txt', { offsetBytes: 0, lengthBytes: 5 })
    assert.ok(found)
    assert.deepEqual(found.inlineData, Buffer.from('hello'))
    assert.deepEqual(found.stripes, [])
    assert.equal(found.object.contentType, 'text/plain')
    assert.deepEqual(found.object.userMetadata, { color: 'blue' })
    assert.deepEqual(found.object.httpHeaders, input.httpHeaders)
    assert.deepEqual(object.httpHeaders, input.httpHeaders, 'the commit returns what it stored')
    const listed = await catalog.objects.list(bucket, { prefix: 'docs/', delimiter: '/' })
    const { key, objectId, sizeBytes, etag, lastModified, posix, symlinkTarget } = found.object
    assert.deepEqual(listed.objects, [{ key, objectId, sizeBytes, etag, lastModified, posix, symlinkTarget }], 'a listing shows the listed fields of the row')
    assert.deepEqual(found.object.posix, input.posix)
    assert.equal(found.object.checksumCrc32c, 0x9a71bb4c)
    assert.equal(found.object.partsCount, null)
    assert.equal(await catalog.objects.get(bucket, 'docs/other.txt'), null)
  })

  test('a range lookup returns exactly the stripes that cover it, with their chunk rows', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'alice' })
    const input = stripedObject(bucket, 'video.mp4', 40 * MiB) // stripes of 16, 16 and 8 MiB
    await catalog.objects.commit(input)
    const expected = allStripes(input, 8)
    assert.equal(expected.length, 3)
    const cases: [number, number][] = [
      [0, 1],
      [16 * MiB - 1, 2],
      [16 * MiB, 16 * MiB],
      [39 * MiB, MiB],
      [0, 40 * MiB],
      [40 * MiB, 10],
      [0, 0],
    ]
    for (const [offsetBytes, lengthBytes] of cases) {
      const found = await catalog.objects.lookup(bucket, 'video.mp4', { offsetBytes, lengthBytes })
      assert.ok(found)
      assert.deepEqual(found.stripes, overlapping(expected, offsetBytes, offsetBytes + lengthBytes), `range ${offsetBytes}+${lengthBytes}`)
      assert.deepEqual(await catalog.objects.stripes(found.object.objectId, { offsetBytes, lengthBytes }), found.stripes)
    }
    const last = (await catalog.objects.lookup(bucket, 'video.mp4', { offsetBytes: 33 * MiB, lengthBytes: 1 }))!.stripes
    assert.equal(last.length, 1)
    assert.equal(last[0]!.lengthBytes, 8 * MiB)
    assert.equal(last[0]!.shardSizeBytes, MiB)
    assert.equal(last[0]!.chunks.length, 12)
  })

  test('range lookups over multipart layouts match a brute-force model', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'alice' })
    // Small stripes keep the rows few while exercising part and stripe boundaries.
    const input = stripedObject(bucket, 'multi', 5000 + 7001 + 1 + 2999, {
      parts: [5000, 7001, 1, 2999],
      stripeSizeBytes: 1024,
      shape: { dataShards: 4, parityShards: 2 },
    })
    await catalog.objects.commit(input)
    const expected = allStripes(input, 4)
    const size = input.sizeBytes
    // Boundaries (part and stripe edges, the end, one past) are where off-by-ones live.
    const edges = [...new Set(expected.flatMap((s) => [s.objectOffsetBytes, s.objectOffsetBytes + s.lengthBytes]).flatMap((x) => [x - 1, x, x + 1]))].filter((x) => x >= 0)
    const offset = fc.oneof(fc.integer({ min: 0, max: size + 100 }), fc.constantFrom(...edges))
    const length = fc.oneof(fc.integer({ min: 0, max: size }), fc.constantFrom(0, 1, 1023, 1024, 1025))
    await fc.assert(
      fc.asyncProperty(offset, length, async (offsetBytes, lengthBytes) => {
        const found = await catalog.objects.lookup(bucket, 'multi', { offsetBytes, lengthBytes })
        assert.deepEqual(found!.stripes, overlapping(expected, offsetBytes, offsetBytes + lengthBytes))
      }),
      { numRuns: 150 },
    )
    assert.equal((await catalog.objects.get(bucket, 'multi'))!.partsCount, 4)
  })

  test('committing over a key replaces the version and queues every old chunk for deletion in the same transaction', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'alice' })
    const first = stripedObject(bucket, 'k', 20 * MiB)
    const second = stripedObject(bucket, 'k', 3 * MiB)
    await catalog.objects.commit(first)
    const result = await catalog.objects.commit(second)
    assert.deepEqual(result.replaced, { objectId: first.objectId, chunksQueued: 24 })
    const queued = await queuedDeletions(catalog)
    for (const id of chunkIdsOf(first)) assert.ok(queued.has(id), `old chunk ${id} queued`)
    for (const id of chunkIdsOf(second)) assert.ok(!queued.has(id), `new chunk ${id} not queued`)
    assert.deepEqual(await catalog.objects.stripes(first.objectId, { offsetBytes: 0, lengthBytes: 20 * MiB }), [])
    const now = await catalog.objects.lookup(bucket, 'k', { offsetBytes: 0, lengthBytes: 3 * MiB })
    assert.equal(now!.object.objectId, second.objectId)
    assert.equal(now!.stripes.length, 1)
    // Replacing a striped version with an inline one queues the striped chunks too.
    const third = inlineObject(bucket, 'k')
    assert.equal((await catalog.objects.commit(third)).replaced!.chunksQueued, 12)
    for (const id of chunkIdsOf(second)) assert.ok((await queuedDeletions(catalog)).has(id))
  })

  test('committing the same version twice is a no-op (a retried commit is safe)', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'alice' })
    const input = stripedObject(bucket, 'again', MiB)
    await catalog.objects.commit(input)
    const before = await countRows(catalog, 'chunk_deletions')
    const again = await catalog.objects.commit(input)
    assert.equal(again.replaced, null)
    assert.equal(again.object.objectId, input.objectId)
    assert.equal(await countRows(catalog, 'chunk_deletions'), before)
    assert.equal((await catalog.objects.lookup(bucket, 'again', { offsetBytes: 0, lengthBytes: 1 }))!.stripes[0]!.chunks.length, 12)
  })

  test('conditional commits: ifNoneMatch and ifMatchObjectId refuse without writing', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'alice' })
    const first = inlineObject(bucket, 'c')
    await catalog.objects.commit({ ...first, ifNoneMatch: true })
    await assert.rejects(catalog.objects.commit({ ...inlineObject(bucket, 'c'), ifNoneMatch: true }), (e) => isBlobfsError(e, 'PreconditionFailed'))
    await assert.rejects(catalog.objects.commit({ ...inlineObject(bucket, 'c'), ifMatchObjectId: randomUUID() }), (e) => isBlobfsError(e, 'PreconditionFailed'))
    assert.equal((await catalog.objects.get(bucket, 'c'))!.objectId, first.objectId)
    const next = inlineObject(bucket, 'c')
    await catalog.objects.commit({ ...next, ifMatchObjectId: first.objectId })
    assert.equal((await catalog.objects.get(bucket, 'c'))!.objectId, next.objectId)
  })

  test('a stripe written with fewer than k+m chunks is queued for repair with the commit', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'alice' })
    const input = stripedObject(bucket, 'degraded', 17 * MiB, { shape: { missing: [3, 11] } })
    const result = await catalog.objects.commit(input)
    assert.equal(result.repairsQueued, 2)
    const rows = await catalog.db.sql`SELECT part_index, stripe_index, reason, detail FROM repair_tasks WHERE object_id = ${input.objectId} ORDER BY stripe_index`
    assert.deepEqual(
      rows.map((r) => [r.part_index, r.stripe_index, r.reason, r.detail]),
      [
        [1, 0, 'DEGRADED_WRITE', 'missing chunk indexes 3,11'],
        [1, 1, 'DEGRADED_WRITE', 'missing chunk indexes 3,11'],
      ],
    )
    const found = await catalog.objects.lookup(bucket, 'degraded', { offsetBytes: 0, lengthBytes: 1 })
    assert.deepEqual(found!.stripes[0]!.chunks.map((c) => c.chunkIndex), [0, 1, 2, 4, 5, 6, 7, 8, 9, 10])
  })

  test('delete removes the version and queues its chunks; deleting again finds nothing', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'alice' })
    const input = stripedObject(bucket, 'gone', 2 * MiB)
    await catalog.objects.commit(input)
    await assert.rejects(catalog.objects.delete(bucket, 'gone', { ifObjectId: randomUUID() }), (e) => isBlobfsError(e, 'PreconditionFailed'))
    const deleted = await catalog.objects.delete(bucket, 'gone', { ifObjectId: input.objectId })
    assert.equal(deleted!.object.objectId, input.objectId)
    assert.equal(deleted!.chunksQueued, 12)
    const queued = await queuedDeletions(catalog)
    for (const id of chunkIdsOf(input)) assert.ok(queued.has(id))
    assert.equal(await catalog.objects.get(bucket, 'gone'), null)
    assert.equal(await catalog.objects.delete(bucket, 'gone'), null)
    const rows = await catalog.db.sql`SELECT count(*) AS n FROM object_chunks_allocation WHERE object_id = ${input.objectId}`
    assert.equal(Number(rows[0]!.n), 0)
  })

  test('attributes change in place: same version, new POSIX attributes and metadata', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'alice' })
    const input = inlineObject(bucket, 'attr')
    await catalog.objects.commit(input)
    const posix = { mode: 0o100600, uid: 1, gid: 2, mtimeNs: 5n, ctimeNs: 6n }
    const updated = await catalog.objects.setAttributes(bucket, 'attr', { posix, userMetadata: { a: 'b' }, contentType: 'text/x' })
    assert.equal(updated.objectId, input.objectId)
    assert.deepEqual(updated.posix, posix)
    assert.deepEqual(updated.userMetadata, { a: 'b' })
    assert.equal(updated.contentType, 'text/x')
    assert.deepEqual(updated.httpHeaders, {}, 'an object committed without stored headers has none')
    const withHeaders = await catalog.objects.setAttributes(bucket, 'attr', { httpHeaders: { 'content-language': 'de' } })
    assert.deepEqual([withHeaders.httpHeaders, withHeaders.userMetadata], [{ 'content-language': 'de' }, { a: 'b' }])
    const metadataOnly = await catalog.objects.setAttributes(bucket, 'attr', { userMetadata: {} })
    assert.deepEqual(metadataOnly.posix, posix)
    assert.deepEqual(metadataOnly.httpHeaders, { 'content-language': 'de' }, 'changing one attribute keeps the others')
    await assert.rejects(catalog.objects.setAttributes(bucket, 'missing', { posix }), (e) => isBlobfsError(e, 'NoSuchKey'))
    await assert.rejects(catalog.objects.setAttributes(bucket, 'attr', { posix }, { ifObjectId: randomUUID() }), (e) => isBlobfsError(e, 'PreconditionFailed'))
  })

  test('usage counts objects and logical bytes', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'alice' })
    await catalog.objects.commit(stripedObject(bucket, 'a', 3 * MiB))
    await catalog.objects.commit(inlineObject(bucket, 'b', Buffer.alloc(10)))
    assert.deepEqual(await catalog.objects.usage(bucket), { objects: 2, bytes: 3 * MiB + 10 })
  })

  test('an inline commit of a new key is one statement; over an existing key, retried, or into a missing bucket it answers as before', async () => {
    const statements: string[] = []
    const catalog = await openCatalog(await backend.freshUrl(), { connectionsMax: 1, onStatement: (text) => statements.push(text) })
    try {
      const bucket = bucketName()
      await catalog.buckets.create({ name: bucket, owner: 'alice' })
      statements.length = 0
      const fresh = inlineObject(bucket, 'new', Buffer.from('small file'))
      const pending = catalog.objects.commit(fresh)
      assert.deepEqual(await pending.then((r) => [r.object.objectId, r.replaced]), [fresh.objectId, null])
      // The insert alone: no BEGIN, no bucket check, no COMMIT (the foreign key checks the bucket).
      assert.deepEqual(statements.map((text) => text.trim().split(/\s+/)[0]), ['INSERT'])
      assert.deepEqual((await catalog.objects.lookup(bucket, 'new'))!.inlineData, Buffer.from('small file'))

      assert.equal((await catalog.objects.commit(fresh)).object.objectId, fresh.objectId, 'a retried commit is a no-op')
      const over = inlineObject(bucket, 'new', Buffer.from('replaced'))
      assert.deepEqual((await catalog.objects.commit(over)).replaced, { objectId: fresh.objectId, chunksQueued: 0 })
      assert.deepEqual((await catalog.objects.lookup(bucket, 'new'))!.inlineData, Buffer.from('replaced'))
      await assert.rejects(catalog.objects.commit({ ...inlineObject(bucket, 'new'), ifNoneMatch: true }), (e) => isBlobfsError(e, 'PreconditionFailed'))
      const missing = bucketName()
      await assert.rejects(catalog.objects.commit(inlineObject(missing, 'k')), (e) => isBlobfsError(e, 'NoSuchBucket'))
      assert.equal(await catalog.objects.get(bucket, 'k'), null)
    } finally {
      await catalog.close()
    }
  })
})

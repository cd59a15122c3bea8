import assert from 'node:assert/strict'
import { createHash, randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { multipartEtag } from '../../src/catalog/multipart.ts'
import type { PartInput } from '../../src/catalog/types.ts'
import { isBlobfsError } from '../../src/errors.ts'
import { bucketName, countRows, MiB, partInput, queuedDeletions, stripedObject } from './fixtures.ts'
import { forEachBackend } from './harness.ts'

const chunkIds = (part: PartInput) => part.stripes.flatMap((s) => s.chunks.map((c) => c.chunkId))

forEachBackend((backend) => {
  test('a multipart upload completes atomically into one object with every listed part', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'o' })
    const upload = await catalog.multipart.create({ bucket, key: 'big.bin', contentType: 'video/mp4', userMetadata: { a: '1' }, httpHeaders: { 'content-encoding': 'gzip' } })
    assert.deepEqual(upload.httpHeaders, { 'content-encoding': 'gzip' })
    assert.equal(upload.key, 'big.bin')
    const parts = [partInput(1, 20 * MiB), partInput(2, 6 * MiB), partInput(3, MiB)]
    // Parts arrive out of order and in parallel.
    await Promise.all([3, 1, 2].map((n) => catalog.multipart.recordPart(upload.uploadId, parts[n - 1]!)))
    assert.equal(await catalog.objects.get(bucket, 'big.bin'), null, 'nothing is visible before completion')
    const listed = await catalog.multipart.listParts(upload.uploadId, { maxParts: 2 })
    assert.deepEqual(listed.parts.map((p) => [p.partNumber, p.sizeBytes]), [[1, 20 * MiB], [2, 6 * MiB]])
    assert.equal(listed.isTruncated, true)
    const rest = await catalog.multipart.listParts(upload.uploadId, { partNumberMarker: listed.nextPartNumberMarker! })
    assert.deepEqual(rest.parts.map((p) => p.partNumber), [3])
    assert.equal(rest.isTruncated, false)

    const done = await catalog.multipart.complete({
      uploadId: upload.uploadId,
      bucket,
      key: 'big.bin',
      parts: parts.map((p) => ({ partNumber: p.partNumber, etag: p.etag })),
    })
    assert.equal(done.object.objectId, upload.objectId)
    assert.equal(done.object.sizeBytes, 27 * MiB)
    assert.equal(done.object.partsCount, 3)
    assert.equal(done.object.contentType, 'video/mp4')
    assert.deepEqual(done.object.userMetadata, { a: '1' })
    assert.deepEqual(done.object.httpHeaders, { 'content-encoding': 'gzip' }, 'the session\'s stored headers become the object\'s')
    assert.equal(done.object.etag, multipartEtag(parts.map((p) => p.etag)))
    assert.match(done.object.etag, /^"[0-9a-f]{32}-3"$/)
    // The object's stripes: part 1 has 2 stripes (16 + 4 MiB), then part 2 and part 3.
    const found = await catalog.objects.lookup(bucket, 'big.bin', { offsetBytes: 0, lengthBytes: 27 * MiB })
    assert.deepEqual(
      found!.stripes.map((s) => [s.partNumber, s.stripeIndex, s.objectOffsetBytes, s.lengthBytes]),
      [
        [1, 0, 0, 16 * MiB],
        [1, 1, 16 * MiB, 4 * MiB],
        [2, 0, 20 * MiB, 6 * MiB],
        [3, 0, 26 * MiB, MiB],
      ],
    )
    assert.equal(await catalog.multipart.get(upload.uploadId), null)
    await assert.rejects(catalog.multipart.listParts(upload.uploadId), (e) => isBlobfsError(e, 'NoSuchUpload'))
  })

  test('a re-uploaded part replaces the earlier one; parts left out of the list are queued for deletion', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'o' })
    const old = stripedObject(bucket, 'k', MiB)
    await catalog.objects.commit(old)
    const upload = await catalog.multipart.create({ bucket, key: 'k' })
    const first = partInput(1, 5 * MiB)
    const again = { ...partInput(1, 6 * MiB), etag: '"second"' }
    const unused = partInput(2, 5 * MiB)
    const last = partInput(3, MiB)
    await catalog.multipart.recordPart(upload.uploadId, first)
    const replaced = await catalog.multipart.recordPart(upload.uploadId, again)
    assert.deepEqual(replaced, { replaced: true, chunksQueued: 12, repairsQueued: 0 })
    await catalog.multipart.recordPart(upload.uploadId, unused)
    await catalog.multipart.recordPart(upload.uploadId, last)
    const done = await catalog.multipart.complete({
      uploadId: upload.uploadId,
      bucket,
      key: 'k',
      parts: [
        { partNumber: 1, etag: 'second' }, // quotes do not matter
        { partNumber: 3, etag: last.etag },
      ],
    })
    assert.equal(done.unusedChunksQueued, 12)
    assert.deepEqual(done.replaced, { objectId: old.objectId, chunksQueued: 12 })
    assert.equal(done.object.sizeBytes, 7 * MiB)
    const queued = await queuedDeletions(catalog)
    for (const id of [...chunkIds(first), ...chunkIds(unused)]) assert.ok(queued.has(id))
    for (const id of [...chunkIds(again), ...chunkIds(last)]) assert.ok(!queued.has(id))
    const found = await catalog.objects.lookup(bucket, 'k', { offsetBytes: 6 * MiB, lengthBytes: MiB })
    assert.deepEqual(found!.stripes.map((s) => [s.partNumber, s.objectOffsetBytes]), [[3, 6 * MiB]])
  })

  test('completion refuses bad part lists without writing anything', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'o' })
    const upload = await catalog.multipart.create({ bucket, key: 'k' })
    const small = partInput(1, MiB)
    const big = partInput(2, 5 * MiB)
    await catalog.multipart.recordPart(upload.uploadId, small)
    await catalog.multipart.recordPart(upload.uploadId, big)
    const complete = (parts: { partNumber: number; etag: string }[], extra = {}) =>
      catalog.multipart.complete({ uploadId: upload.uploadId, bucket, key: 'k', parts, ...extra })
    const objectsBefore = await countRows(catalog, 'bucket_objects')
    await assert.rejects(complete([{ partNumber: 2, etag: big.etag }, { partNumber: 1, etag: small.etag }]), (e) => isBlobfsError(e, 'InvalidPartOrder'))
    await assert.rejects(complete([{ partNumber: 1, etag: '"wrong"' }]), (e) => isBlobfsError(e, 'InvalidPart'))
    await assert.rejects(complete([{ partNumber: 4, etag: big.etag }]), (e) => isBlobfsError(e, 'InvalidPart'))
    await assert.rejects(complete([{ partNumber: 1, etag: small.etag }, { partNumber: 2, etag: big.etag }]), (e) => isBlobfsError(e, 'EntityTooSmall'))
    await assert.rejects(
      catalog.multipart.complete({ uploadId: upload.uploadId, bucket, key: 'other', parts: [{ partNumber: 2, etag: big.etag }] }),
      (e) => isBlobfsError(e, 'NoSuchUpload'),
    )
    assert.equal(await countRows(catalog, 'bucket_objects'), objectsBefore)
    assert.equal((await catalog.multipart.listParts(upload.uploadId)).parts.length, 2, 'the session is intact')
    // A smaller minimum (configurable) lets the same list through.
    const done = await complete([{ partNumber: 1, etag: small.etag }, { partNumber: 2, etag: big.etag }], { partSizeBytesMin: MiB })
    assert.equal(done.object.sizeBytes, 6 * MiB)
  })

  test('abort queues every part for deletion; a part recorded after abort is NoSuchUpload', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'o' })
    const upload = await catalog.multipart.create({ bucket, key: 'aborted' })
    const part = partInput(1, 17 * MiB)
    await catalog.multipart.recordPart(upload.uploadId, part)
    assert.deepEqual(await catalog.multipart.abort(upload.uploadId, { bucket, key: 'aborted' }), { chunksQueued: 24 })
    const queued = await queuedDeletions(catalog)
    for (const id of chunkIds(part)) assert.ok(queued.has(id))
    await assert.rejects(catalog.multipart.recordPart(upload.uploadId, partInput(2, MiB)), (e) => isBlobfsError(e, 'NoSuchUpload'))
    await assert.rejects(catalog.multipart.abort(upload.uploadId), (e) => isBlobfsError(e, 'NoSuchUpload'))
    await assert.rejects(catalog.multipart.abort(randomUUID()), (e) => isBlobfsError(e, 'NoSuchUpload'))
    await assert.rejects(catalog.multipart.create({ bucket: bucketName('gone'), key: 'k' }), (e) => isBlobfsError(e, 'NoSuchBucket'))
  })

  test('uploads are listed by key then age, with markers; idle sessions are found', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'o' })
    const made: Awaited<ReturnType<typeof catalog.multipart.create>>[] = []
    for (const key of ['b', 'a', 'b', 'c/x']) made.push(await catalog.multipart.create({ bucket, key }))
    // Initiation times an hour ago, one second apart (clocks may be coarse; the order must not be).
    for (const [i, upload] of made.entries()) {
      await catalog.db.sql`UPDATE multipart_uploads SET initiated_at = now() - INTERVAL '1 hour' + ${i} * INTERVAL '1 second' WHERE upload_id = ${upload.uploadId}`
    }
    const page = await catalog.multipart.list(bucket, { maxUploads: 2 })
    assert.deepEqual(page.uploads.map((u) => u.key), ['a', 'b'])
    assert.equal(page.isTruncated, true)
    const next = await catalog.multipart.list(bucket, { keyMarker: page.nextKeyMarker!, uploadIdMarker: page.nextUploadIdMarker! })
    assert.deepEqual(next.uploads.map((u) => u.key), ['b', 'c/x'])
    assert.equal(next.uploads[0]!.uploadId, made[2]!.uploadId, 'the second upload of b, started later')
    assert.deepEqual((await catalog.multipart.list(bucket, { prefix: 'c/' })).uploads.map((u) => u.key), ['c/x'])
    assert.deepEqual((await catalog.multipart.list(bucket, { keyMarker: 'b' })).uploads.map((u) => u.key), ['c/x'])

    const idle = await catalog.multipart.findIdle({ idleMs: 30 * 60_000, limit: 1000 })
    for (const upload of made) assert.ok(idle.some((u) => u.uploadId === upload.uploadId))
    const recent = await catalog.multipart.findIdle({ idleMs: 2 * 3600_000, limit: 1000 })
    for (const upload of made) assert.ok(!recent.some((u) => u.uploadId === upload.uploadId))
    // A session started long ago with a recent part is not idle.
    await catalog.db.sql`UPDATE multipart_uploads SET initiated_at = now() - INTERVAL '30 days' WHERE upload_id = ${made[0]!.uploadId}`
    await catalog.db.sql`UPDATE multipart_uploads SET initiated_at = now() - INTERVAL '30 days' WHERE upload_id = ${made[1]!.uploadId}`
    await catalog.multipart.recordPart(made[1]!.uploadId, partInput(1, MiB))
    const week = await catalog.multipart.findIdle({ idleMs: 7 * 24 * 3600_000, limit: 1000 })
    assert.ok(week.some((u) => u.uploadId === made[0]!.uploadId))
    assert.ok(!week.some((u) => u.uploadId === made[1]!.uploadId))
  })

  test('deleting a bucket aborts its open uploads', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'o' })
    const upload = await catalog.multipart.create({ bucket, key: 'k' })
    const part = partInput(1, MiB)
    await catalog.multipart.recordPart(upload.uploadId, part)
    await catalog.buckets.delete(bucket)
    assert.equal(await catalog.multipart.get(upload.uploadId), null)
    const queued = await queuedDeletions(catalog)
    for (const id of chunkIds(part)) assert.ok(queued.has(id))
  })

  test('the multipart etag is MD5 over the binary part MD5s', () => {
    const md5 = (s: string) => createHash('md5').update(s).digest('hex')
    const parts = [md5('a'), md5('b')]
    const expected = createHash('md5').update(Buffer.concat(parts.map((p) => Buffer.from(p, 'hex')))).digest('hex')
    assert.equal(multipartEtag(parts.map((p) => `"${p}"`)), `"${expected}-2"`)
  })
})

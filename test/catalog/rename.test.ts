import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isBlobfsError } from '../../src/errors.ts'
import { bucketName, chunkIdsOf, inlineObject, MiB, queuedDeletions, stripedObject } from './fixtures.ts'
import { forEachBackend } from './harness.ts'

forEachBackend((backend) => {
  test('renaming a key keeps the version and its chunks, and replaces the target', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'o' })
    const source = stripedObject(bucket, 'a.txt', 2 * MiB)
    const target = stripedObject(bucket, 'b.txt', MiB)
    await catalog.objects.commit({ ...source, posix: { mode: 0o100644, uid: 0, gid: 0, mtimeNs: 1n, ctimeNs: 1n } })
    await catalog.objects.commit(target)
    await assert.rejects(catalog.objects.rename(bucket, 'a.txt', 'b.txt', { noReplace: true }), (e) => isBlobfsError(e, 'AlreadyExists'))
    const result = await catalog.objects.rename(bucket, 'a.txt', 'b.txt', { ctimeNs: 99n })
    assert.deepEqual(result, { moved: 1, replaced: [{ objectId: target.objectId, chunksQueued: 12 }] })
    assert.equal(await catalog.objects.get(bucket, 'a.txt'), null)
    const moved = await catalog.objects.lookup(bucket, 'b.txt', { offsetBytes: 0, lengthBytes: 2 * MiB })
    assert.equal(moved!.object.objectId, source.objectId)
    assert.equal(moved!.object.posix!.ctimeNs, 99n)
    assert.deepEqual(moved!.stripes.flatMap((s) => s.chunks.map((c) => c.chunkId)).sort(), chunkIdsOf(source).sort())
    const queued = await queuedDeletions(catalog)
    for (const id of chunkIdsOf(target)) assert.ok(queued.has(id))
    for (const id of chunkIdsOf(source)) assert.ok(!queued.has(id))
    await assert.rejects(catalog.objects.rename(bucket, 'a.txt', 'c.txt'), (e) => isBlobfsError(e, 'NoSuchKey'))
  })

  test('renaming a directory moves every key below it in one transaction', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'o' })
    const keys = ['dir/', 'dir/a', 'dir/sub/b', 'dir/sub/c/d', 'dira', 'dir0/x', 'other/z']
    for (const key of keys) await catalog.objects.commit(inlineObject(bucket, key))
    const before = await catalog.objects.get(bucket, 'dir/sub/b')
    const result = await catalog.objects.renamePrefix(bucket, 'dir/', 'moved/')
    assert.equal(result.moved, 4)
    assert.deepEqual(result.replaced, [])
    const listing = await catalog.objects.list(bucket)
    assert.deepEqual(listing.objects.map((o) => o.key), ['dir0/x', 'dira', 'moved/', 'moved/a', 'moved/sub/b', 'moved/sub/c/d', 'other/z'])
    assert.equal((await catalog.objects.get(bucket, 'moved/sub/b'))!.objectId, before!.objectId)
  })

  test('a directory rename onto a non-empty directory is refused unless overwriting; colliding targets are replaced', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'o' })
    const a1 = stripedObject(bucket, 'src/1', MiB)
    const a2 = stripedObject(bucket, 'src/2', MiB)
    const b1 = stripedObject(bucket, 'dst/1', MiB)
    const b3 = stripedObject(bucket, 'dst/3', MiB)
    for (const input of [a1, a2, b1, b3]) await catalog.objects.commit(input)
    await assert.rejects(catalog.objects.renamePrefix(bucket, 'src/', 'dst/'), (e) => isBlobfsError(e, 'DirectoryNotEmpty'))
    assert.equal((await catalog.objects.get(bucket, 'src/1'))!.objectId, a1.objectId, 'nothing moved')
    const result = await catalog.objects.renamePrefix(bucket, 'src/', 'dst/', { overwrite: true })
    assert.equal(result.moved, 2)
    assert.deepEqual(result.replaced, [{ objectId: b1.objectId, chunksQueued: 12 }])
    const listing = await catalog.objects.list(bucket)
    assert.deepEqual(listing.objects.map((o) => [o.key, o.objectId]), [
      ['dst/1', a1.objectId],
      ['dst/2', a2.objectId],
      ['dst/3', b3.objectId],
    ])
    const queued = await queuedDeletions(catalog)
    for (const id of chunkIdsOf(b1)) assert.ok(queued.has(id))
    for (const input of [a1, a2, b3]) for (const id of chunkIdsOf(input)) assert.ok(!queued.has(id))
  })

  test('an empty target directory (only its marker) is replaced by the moved directory, as rename(2) does', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'o' })
    const marker = inlineObject(bucket, 'to/', Buffer.alloc(0))
    await catalog.objects.commit(inlineObject(bucket, 'from/'))
    await catalog.objects.commit(inlineObject(bucket, 'from/f'))
    await catalog.objects.commit(marker)
    const result = await catalog.objects.renamePrefix(bucket, 'from/', 'to/')
    assert.equal(result.moved, 2)
    assert.deepEqual(result.replaced.map((r) => r.objectId), [marker.objectId])
    assert.deepEqual((await catalog.objects.list(bucket)).objects.map((o) => o.key), ['to/', 'to/f'])
  })

  test('prefix renames refuse nesting, missing sources and unknown buckets', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'o' })
    await catalog.objects.commit(inlineObject(bucket, 'p/x'))
    await assert.rejects(catalog.objects.renamePrefix(bucket, 'p/', 'p/q/'), (e) => isBlobfsError(e, 'InvalidArgument'))
    await assert.rejects(catalog.objects.renamePrefix(bucket, 'p/q/', 'p/'), (e) => isBlobfsError(e, 'InvalidArgument'))
    await assert.rejects(catalog.objects.renamePrefix(bucket, 'none/', 'z/'), (e) => isBlobfsError(e, 'NoSuchKey'))
    await assert.rejects(catalog.objects.renamePrefix(bucketName('nope'), 'p/', 'z/'), (e) => isBlobfsError(e, 'NoSuchBucket'))
  })
})

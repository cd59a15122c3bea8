// Listing (V2 and V1: prefix, delimiter, paging, start-after/marker, encoding-type)
// and CopyObject (metadata directive, copy-source conditions, tenants) through the
// AWS SDK against the real gateway.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteObjectsCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  type ListObjectsCommandOutput,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3'
import { alice, bob, startHarness } from './harness.ts'

const tree = ['a.txt', 'b/1.txt', 'b/2.txt', 'b/c/3.txt', 'b/c/4.txt', 'd/5.txt', 'e.txt', 'f/6.txt', 'f/7.txt', 'g.txt', 'h/i/8.txt', 'z.txt']

async function fill(s3: S3Client, bucket: string, keys: string[]) {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }))
  for (const key of keys) await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key }))
}

test('ListObjectsV2: prefix, delimiter, and paging by continuation token return every entry exactly once', async () => {
  const h = await startHarness()
  try {
    const s3 = h.client()
    await fill(s3, 'list', tree)
    const all = await s3.send(new ListObjectsV2Command({ Bucket: 'list' }))
    assert.deepEqual(all.Contents?.map((c) => c.Key), tree)
    assert.equal(all.KeyCount, tree.length)
    assert.equal(all.IsTruncated, false)
    assert.equal(all.Contents?.[0]?.Size, 'a.txt'.length)

    const top = await s3.send(new ListObjectsV2Command({ Bucket: 'list', Delimiter: '/' }))
    assert.deepEqual(top.Contents?.map((c) => c.Key), ['a.txt', 'e.txt', 'g.txt', 'z.txt'])
    assert.deepEqual(top.CommonPrefixes?.map((p) => p.Prefix), ['b/', 'd/', 'f/', 'h/'])

    const underB = await s3.send(new ListObjectsV2Command({ Bucket: 'list', Prefix: 'b/', Delimiter: '/' }))
    assert.deepEqual(underB.Contents?.map((c) => c.Key), ['b/1.txt', 'b/2.txt'])
    assert.deepEqual(underB.CommonPrefixes?.map((p) => p.Prefix), ['b/c/'])

    for (const delimiter of [undefined, '/']) {
      for (const maxKeys of [1, 2, 3, 5]) {
        const seen: string[] = []
        let token: string | undefined
        let pages = 0
        do {
          const page = await s3.send(new ListObjectsV2Command({ Bucket: 'list', Delimiter: delimiter, MaxKeys: maxKeys, ContinuationToken: token }))
          const entries = [...(page.Contents ?? []).map((c) => c.Key!), ...(page.CommonPrefixes ?? []).map((p) => p.Prefix!)]
          assert.ok(entries.length <= maxKeys)
          assert.equal(page.KeyCount, entries.length)
          seen.push(...entries)
          token = page.IsTruncated ? page.NextContinuationToken : undefined
          pages++
        } while (token)
        const expected = delimiter ? ['a.txt', 'b/', 'd/', 'e.txt', 'f/', 'g.txt', 'h/', 'z.txt'] : tree
        // within a page S3 returns keys and common prefixes in separate lists
        assert.deepEqual([...seen].sort(), expected, `delimiter ${delimiter} max-keys ${maxKeys}`)
        assert.equal(new Set(seen).size, seen.length, 'no entry twice')
        assert.equal(pages, Math.ceil(expected.length / maxKeys))
      }
    }

    const after = await s3.send(new ListObjectsV2Command({ Bucket: 'list', StartAfter: 'e.txt' }))
    assert.deepEqual(after.Contents?.map((c) => c.Key), ['f/6.txt', 'f/7.txt', 'g.txt', 'h/i/8.txt', 'z.txt'])
    assert.equal(after.StartAfter, 'e.txt')
    const withOwner = await s3.send(new ListObjectsV2Command({ Bucket: 'list', FetchOwner: true, MaxKeys: 1 }))
    assert.equal(withOwner.Contents?.[0]?.Owner?.ID, 'alice')
    const none = await s3.send(new ListObjectsV2Command({ Bucket: 'list', MaxKeys: 0 }))
    assert.equal(none.KeyCount, 0)
    assert.equal(none.IsTruncated, false)
  } finally {
    await h.close()
  }
})

test('ListObjects (V1): marker paging with a delimiter never repeats a common prefix; encoding-type=url encodes keys', async () => {
  const h = await startHarness()
  try {
    const s3 = h.client()
    await fill(s3, 'list-v1', tree)
    const seen: string[] = []
    let marker: string | undefined
    do {
      const page = await s3.send(new ListObjectsCommand({ Bucket: 'list-v1', Delimiter: '/', MaxKeys: 2, Marker: marker }))
      seen.push(...(page.Contents ?? []).map((c) => c.Key!), ...(page.CommonPrefixes ?? []).map((p) => p.Prefix!))
      marker = page.IsTruncated ? page.NextMarker : undefined
      if (page.IsTruncated) assert.ok(page.NextMarker)
    } while (marker)
    assert.equal(new Set(seen).size, seen.length, 'no entry twice')
    assert.deepEqual(seen.sort(), ['a.txt', 'b/', 'd/', 'e.txt', 'f/', 'g.txt', 'h/', 'z.txt'])

    const noDelimiter: string[] = []
    marker = undefined
    do {
      const page: ListObjectsCommandOutput = await s3.send(new ListObjectsCommand({ Bucket: 'list-v1', MaxKeys: 5, Marker: marker }))
      noDelimiter.push(...(page.Contents ?? []).map((c) => c.Key!))
      marker = page.IsTruncated ? page.Contents!.at(-1)!.Key : undefined
    } while (marker)
    assert.deepEqual(noDelimiter, tree)

    await s3.send(new PutObjectCommand({ Bucket: 'list-v1', Key: 'sp ace/ü+%.txt', Body: 'x' }))
    const encoded = await s3.send(new ListObjectsCommand({ Bucket: 'list-v1', Prefix: 'sp ace/', EncodingType: 'url' }))
    assert.equal(encoded.Contents?.[0]?.Key, 'sp%20ace/%C3%BC%2B%25.txt')
    assert.equal(encoded.Prefix, 'sp%20ace/')
  } finally {
    await h.close()
  }
})

test('DeleteObjects: many keys at once, quiet and verbose, missing keys succeed', async () => {
  const h = await startHarness()
  try {
    const s3 = h.client()
    await fill(s3, 'del', tree)
    const verbose = await s3.send(new DeleteObjectsCommand({ Bucket: 'del', Delete: { Objects: [{ Key: 'a.txt' }, { Key: 'b/1.txt' }, { Key: 'never-existed' }] } }))
    assert.deepEqual(verbose.Deleted?.map((d) => d.Key).sort(), ['a.txt', 'b/1.txt', 'never-existed'])
    assert.equal(verbose.Errors, undefined)
    const quiet = await s3.send(new DeleteObjectsCommand({ Bucket: 'del', Delete: { Quiet: true, Objects: tree.slice(2).map((Key) => ({ Key })) } }))
    assert.equal(quiet.Deleted, undefined)
    assert.deepEqual((await h.objects.listObjects('del')).objects, [])
  } finally {
    await h.close()
  }
})

test('CopyObject: COPY keeps metadata, REPLACE replaces it, self-copy needs REPLACE, copy-source conditions, tenants', async () => {
  const h = await startHarness()
  try {
    const s3 = h.client()
    await s3.send(new CreateBucketCommand({ Bucket: 'src' }))
    await s3.send(new CreateBucketCommand({ Bucket: 'dst' }))
    const put = await s3.send(new PutObjectCommand({ Bucket: 'src', Key: 'orig.txt', Body: 'original bytes', ContentType: 'text/plain', Metadata: { color: 'blue' } }))

    const copied = await s3.send(new CopyObjectCommand({ Bucket: 'dst', Key: 'copy.txt', CopySource: 'src/orig.txt' }))
    assert.equal(copied.CopyObjectResult?.ETag, put.ETag)
    const copyHead = await s3.send(new HeadObjectCommand({ Bucket: 'dst', Key: 'copy.txt' }))
    assert.deepEqual(copyHead.Metadata, { color: 'blue' })
    assert.equal(copyHead.ContentType, 'text/plain')

    await s3.send(new CopyObjectCommand({ Bucket: 'dst', Key: 'replaced.txt', CopySource: '/src/orig.txt', MetadataDirective: 'REPLACE', ContentType: 'text/markdown', Metadata: { color: 'red' } }))
    const replaced = await s3.send(new HeadObjectCommand({ Bucket: 'dst', Key: 'replaced.txt' }))
    assert.deepEqual(replaced.Metadata, { color: 'red' })
    assert.equal(replaced.ContentType, 'text/markdown')

    await assert.rejects(s3.send(new CopyObjectCommand({ Bucket: 'src', Key: 'orig.txt', CopySource: 'src/orig.txt' })), { name: 'InvalidRequest' })
    await s3.send(new CopyObjectCommand({ Bucket: 'src', Key: 'orig.txt', CopySource: 'src/orig.txt', MetadataDirective: 'REPLACE', Metadata: { color: 'green' } }))
    assert.deepEqual((await h.objects.headObject('src', 'orig.txt')).userMetadata, { color: 'green' })

    await assert.rejects(s3.send(new CopyObjectCommand({ Bucket: 'dst', Key: 'c1', CopySource: 'src/orig.txt', CopySourceIfMatch: '"0123456789abcdef0123456789abcdef"' })), {
      name: 'PreconditionFailed',
    })
    await assert.rejects(s3.send(new CopyObjectCommand({ Bucket: 'dst', Key: 'c2', CopySource: 'src/orig.txt', CopySourceIfNoneMatch: put.ETag })), { name: 'PreconditionFailed' })
    await assert.rejects(s3.send(new CopyObjectCommand({ Bucket: 'dst', Key: 'c3', CopySource: 'src/orig.txt', CopySourceIfModifiedSince: new Date(Date.now() + 3600_000) })), {
      name: 'PreconditionFailed',
    })
    await s3.send(new CopyObjectCommand({ Bucket: 'dst', Key: 'c4', CopySource: 'src/orig.txt', CopySourceIfMatch: put.ETag, CopySourceIfUnmodifiedSince: new Date(0) }))
    for (const key of ['c1', 'c2', 'c3']) await assert.rejects(h.objects.headObject('dst', key), { code: 'NoSuchKey' })
    await assert.rejects(s3.send(new CopyObjectCommand({ Bucket: 'dst', Key: 'x', CopySource: 'src/missing.txt' })), { name: 'NoSuchKey' })

    const b = h.client(bob)
    await b.send(new CreateBucketCommand({ Bucket: 'bobs' }))
    await assert.rejects(b.send(new CopyObjectCommand({ Bucket: 'bobs', Key: 'stolen', CopySource: 'src/orig.txt' })), { name: 'AccessDenied' })
    await assert.rejects(s3.send(new CopyObjectCommand({ Bucket: 'bobs', Key: 'pushed', CopySource: 'src/orig.txt' })), { name: 'AccessDenied' })
    assert.deepEqual((await h.objects.listObjects('bobs')).objects, [])
    assert.equal(alice.owner, 'alice')
  } finally {
    await h.close()
  }
})

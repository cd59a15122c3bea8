// The gateway's bucket cache (src/s3/bucket-cache.ts): object requests within the
// TTL authorize against a recent read of their bucket instead of reading it from the
// object layer (the catalog) every time; bucket requests always read it; the owner
// check still applies to a cached bucket; a DeleteBucket through the gateway drops
// the entry at once, so a bucket recreated by another tenant is not served to the
// old owner; a TTL of 0 turns the cache off.
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import type { BucketInfo } from '../../src/objects/types.ts'
import { alice, bob, collect, startHarness, type Harness } from './harness.ts'

/** Counts the gateway's getBucket calls (the in-memory layer's own code does not use getBucket). */
function countBucketReads(h: Harness): { count: number } {
  const counter = { count: 0 }
  const read = h.objects.getBucket.bind(h.objects)
  h.objects.getBucket = (name: string): Promise<BucketInfo> => {
    counter.count++
    return read(name)
  }
  return counter
}

test('object GETs within the TTL read their bucket once; after the TTL it is read again; bucket requests always read it', async () => {
  let skewMs = 0
  const h = await startHarness({ now: () => Date.now() + skewMs, bucketCacheTtlMs: 1_000 })
  try {
    const s3 = h.client(alice)
    await s3.send(new CreateBucketCommand({ Bucket: 'cached' }))
    await s3.send(new PutObjectCommand({ Bucket: 'cached', Key: 'k', Body: 'hello' }))
    const reads = countBucketReads(h)
    skewMs += 2_000
    for (let i = 0; i < 5; i++) {
      const got = await s3.send(new GetObjectCommand({ Bucket: 'cached', Key: 'k' }))
      assert.equal((await collect(got.Body as AsyncIterable<Uint8Array>)).toString(), 'hello')
    }
    assert.equal(reads.count, 1)
    await s3.send(new PutObjectCommand({ Bucket: 'cached', Key: 'k2', Body: 'again' }))
    assert.equal(reads.count, 1)
    skewMs += 2_000
    await s3.send(new GetObjectCommand({ Bucket: 'cached', Key: 'k' }))
    assert.equal(reads.count, 2)
    for (let i = 0; i < 3; i++) await s3.send(new HeadBucketCommand({ Bucket: 'cached' }))
    assert.equal(reads.count, 5)
  } finally {
    await h.close()
  }
})

test('a cached bucket still refuses another tenant', async () => {
  const h = await startHarness({ bucketCacheTtlMs: 60_000 })
  try {
    await h.client(alice).send(new CreateBucketCommand({ Bucket: 'alices' }))
    await h.client(alice).send(new PutObjectCommand({ Bucket: 'alices', Key: 'k', Body: 'private' }))
    await h.client(alice).send(new GetObjectCommand({ Bucket: 'alices', Key: 'k' }))
    await assert.rejects(h.client(bob).send(new GetObjectCommand({ Bucket: 'alices', Key: 'k' })), { name: 'AccessDenied' })
    await assert.rejects(h.client(bob).send(new PutObjectCommand({ Bucket: 'alices', Key: 'k', Body: 'overwrite' })), { name: 'AccessDenied' })
  } finally {
    await h.close()
  }
})

test('DeleteBucket through the gateway drops the cached bucket: recreated by another tenant, it is not served to the old owner', async () => {
  const h = await startHarness({ bucketCacheTtlMs: 60_000 })
  try {
    const a = h.client(alice)
    await a.send(new CreateBucketCommand({ Bucket: 'handed-over' }))
    await a.send(new PutObjectCommand({ Bucket: 'handed-over', Key: 'k', Body: 'x' }))
    await a.send(new GetObjectCommand({ Bucket: 'handed-over', Key: 'k' }))
    await a.send(new DeleteObjectCommand({ Bucket: 'handed-over', Key: 'k' }))
    await a.send(new DeleteBucketCommand({ Bucket: 'handed-over' }))
    await h.objects.createBucket('handed-over', bob.owner)
    await h.objects.putObject('handed-over', 'k', Readable.from([Buffer.from('bob')]))
    await assert.rejects(a.send(new GetObjectCommand({ Bucket: 'handed-over', Key: 'k' })), { name: 'AccessDenied' })
    await assert.rejects(a.send(new PutObjectCommand({ Bucket: 'handed-over', Key: 'k', Body: 'alice' })), { name: 'AccessDenied' })
  } finally {
    await h.close()
  }
})

test('bucketCacheTtlMs 0 reads the bucket for every request', async () => {
  const h = await startHarness({ bucketCacheTtlMs: 0 })
  try {
    const s3 = h.client(alice)
    await s3.send(new CreateBucketCommand({ Bucket: 'uncached' }))
    await s3.send(new PutObjectCommand({ Bucket: 'uncached', Key: 'k', Body: 'hello' }))
    const reads = countBucketReads(h)
    for (let i = 0; i < 3; i++) await s3.send(new GetObjectCommand({ Bucket: 'uncached', Key: 'k' }))
    assert.equal(reads.count, 3)
  } finally {
    await h.close()
  }
})

// The AWS SDK (default checksum settings) against the real gateway: buckets and
// single-part objects, metadata, streaming (aws-chunked + CRC32 trailer) bodies.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3'
import { collect, patternBytes, startHarness } from './harness.ts'

test('buckets: create, head, location, list, delete', async () => {
  const h = await startHarness()
  try {
    const s3 = h.client()
    await s3.send(new CreateBucketCommand({ Bucket: 'photos' }))
    await s3.send(new CreateBucketCommand({ Bucket: 'archive' }))
    await s3.send(new HeadBucketCommand({ Bucket: 'photos' }))
    const location = await s3.send(new GetBucketLocationCommand({ Bucket: 'photos' }))
    assert.equal(location.LocationConstraint ?? '', '')
    const listed = await s3.send(new ListBucketsCommand({}))
    assert.deepEqual(listed.Buckets?.map((b) => b.Name), ['archive', 'photos'])
    assert.equal((await h.objects.getBucket('photos')).owner, 'alice')
    await s3.send(new DeleteBucketCommand({ Bucket: 'archive' }))
    await assert.rejects(h.objects.getBucket('archive'), { code: 'NoSuchBucket' })
    await assert.rejects(s3.send(new HeadBucketCommand({ Bucket: 'archive' })), { name: 'NotFound' })
    await assert.rejects(s3.send(new CreateBucketCommand({ Bucket: 'photos' })), { name: 'BucketAlreadyOwnedByYou' })
  } finally {
    await h.close()
  }
})

test('objects: put a buffer, get, head with metadata, delete', async () => {
  const h = await startHarness()
  try {
    const s3 = h.client()
    await s3.send(new CreateBucketCommand({ Bucket: 'docs' }))
    const body = Buffer.from('hello, blobfs\n')
    const put = await s3.send(
      new PutObjectCommand({ Bucket: 'docs', Key: 'a/hello.txt', Body: body, ContentType: 'text/plain', Metadata: { owner: 'Zoë', purpose: 'test' }, CacheControl: 'max-age=60' }),
    )
    assert.equal(put.ETag, `"${createHash('md5').update(body).digest('hex')}"`)
    assert.ok(put.ChecksumCRC32, 'the verified CRC32 the SDK sent is echoed')

    const got = await s3.send(new GetObjectCommand({ Bucket: 'docs', Key: 'a/hello.txt' }))
    assert.deepEqual(await collect(got.Body as AsyncIterable<Uint8Array>), body)
    assert.equal(got.ContentType, 'text/plain')
    assert.equal(got.CacheControl, 'max-age=60')
    assert.deepEqual(got.Metadata, { owner: 'Zoë', purpose: 'test' })
    assert.equal(got.ETag, put.ETag)

    const head = await s3.send(new HeadObjectCommand({ Bucket: 'docs', Key: 'a/hello.txt' }))
    assert.equal(head.ContentLength, body.length)
    assert.equal(head.ETag, put.ETag)

    const stored = await h.objects.headObject('docs', 'a/hello.txt')
    assert.deepEqual(stored.userMetadata, { owner: 'Zoë', purpose: 'test' })

    await s3.send(new DeleteObjectCommand({ Bucket: 'docs', Key: 'a/hello.txt' }))
    await assert.rejects(s3.send(new GetObjectCommand({ Bucket: 'docs', Key: 'a/hello.txt' })), { name: 'NoSuchKey' })
    await assert.rejects(s3.send(new HeadObjectCommand({ Bucket: 'docs', Key: 'a/hello.txt' })), { name: 'NotFound' })
    // deleting a missing key succeeds, as in S3
    await s3.send(new DeleteObjectCommand({ Bucket: 'docs', Key: 'a/hello.txt' }))
  } finally {
    await h.close()
  }
})

test('objects: a stream body goes aws-chunked with a CRC32 trailer and is stored byte-equal', async () => {
  const h = await startHarness()
  try {
    const s3 = h.client()
    await s3.send(new CreateBucketCommand({ Bucket: 'stream' }))
    const data = patternBytes(3 * 1024 * 1024 + 17)
    const seen: Record<string, string | undefined> = {}
    s3.middlewareStack.add(
      (next) => async (args) => {
        const request = (args as { request: { headers: Record<string, string> } }).request
        seen['content-encoding'] = request.headers['content-encoding']
        seen['x-amz-content-sha256'] = request.headers['x-amz-content-sha256']
        seen['x-amz-trailer'] = request.headers['x-amz-trailer']
        return next(args)
      },
      { step: 'finalizeRequest', name: 'spy' },
    )
    const put = await s3.send(new PutObjectCommand({ Bucket: 'stream', Key: 'big.bin', Body: Readable.from([data.subarray(0, 1000000), data.subarray(1000000)]), ContentLength: data.length }))
    assert.equal(seen['content-encoding'], 'aws-chunked')
    assert.equal(seen['x-amz-content-sha256'], 'STREAMING-UNSIGNED-PAYLOAD-TRAILER')
    assert.equal(seen['x-amz-trailer'], 'x-amz-checksum-crc32')
    assert.ok(put.ChecksumCRC32)
    const read = await h.objects.getObject('stream', 'big.bin')
    assert.deepEqual(await collect(read.body), data)
    assert.equal((await h.objects.headObject('stream', 'big.bin')).httpHeaders?.['content-encoding'], undefined, 'aws-chunked is not stored as an encoding')
    const got = await s3.send(new GetObjectCommand({ Bucket: 'stream', Key: 'big.bin' }))
    assert.deepEqual(await collect(got.Body as AsyncIterable<Uint8Array>), data)
  } finally {
    await h.close()
  }
})

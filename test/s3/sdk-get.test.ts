// GetObject and HeadObject: byte ranges (bounded, open, suffix, unsatisfiable),
// conditional headers with RFC 7232 precedence, response-* overrides, and the
// end-to-end CRC32C the SDK verifies in checksum mode.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import { alice, collect, patternBytes, startHarness } from './harness.ts'
import { objectPath, send, signed } from './raw.ts'

const data = patternBytes(100_000, 42)

test('ranges: bounded, open, suffix, clipped, unsatisfiable (416 with the size), ignored when malformed', async () => {
  const h = await startHarness()
  try {
    const s3 = h.client()
    await s3.send(new CreateBucketCommand({ Bucket: 'ranges' }))
    await s3.send(new PutObjectCommand({ Bucket: 'ranges', Key: 'data.bin', Body: data }))
    const get = async (range: string) => {
      const r = await s3.send(new GetObjectCommand({ Bucket: 'ranges', Key: 'data.bin', Range: range }))
      return { body: await collect(r.Body as AsyncIterable<Uint8Array>), contentRange: r.ContentRange, length: r.ContentLength }
    }
    const bounded = await get('bytes=0-9')
    assert.deepEqual(bounded.body, data.subarray(0, 10))
    assert.equal(bounded.contentRange, `bytes 0-9/${data.length}`)
    assert.deepEqual((await get('bytes=99990-')).body, data.subarray(99990))
    const suffix = await get('bytes=-25')
    assert.deepEqual(suffix.body, data.subarray(data.length - 25))
    assert.equal(suffix.contentRange, `bytes ${data.length - 25}-${data.length - 1}/${data.length}`)
    assert.deepEqual((await get('bytes=-1000000')).body, data, 'a suffix longer than the object is the whole object')
    assert.deepEqual((await get('bytes=50000-999999999')).body, data.subarray(50000), 'the end is clipped')
    await assert.rejects(get(`bytes=${data.length}-`), (e: Error & { $metadata?: { httpStatusCode?: number }; $response?: { headers: Record<string, string> } }) => {
      assert.equal(e.name, 'InvalidRange')
      assert.equal(e.$metadata?.httpStatusCode, 416)
      assert.equal(e.$response?.headers['content-range'], `bytes */${data.length}`)
      return true
    })
    const whole = await get('bytes=9-2') // not a valid range: ignored, the whole object
    assert.deepEqual(whole.body, data)
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'ranges', Key: 'data.bin', Range: 'bytes=10-19' }))
    assert.equal(head.ContentLength, 10)
    assert.equal(head.ContentRange, `bytes 10-19/${data.length}`)
  } finally {
    await h.close()
  }
})

test('conditionals: If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since with RFC 7232 precedence', async () => {
  const h = await startHarness()
  try {
    const s3 = h.client()
    await s3.send(new CreateBucketCommand({ Bucket: 'cond' }))
    const put = await s3.send(new PutObjectCommand({ Bucket: 'cond', Key: 'k', Body: data }))
    const etag = put.ETag!
    const past = new Date(Date.now() - 24 * 3600_000)
    const future = new Date(Date.now() + 24 * 3600_000)
    const status = async (input: Record<string, unknown>): Promise<number> => {
      try {
        const r = await s3.send(new GetObjectCommand({ Bucket: 'cond', Key: 'k', ...input }))
        await collect(r.Body as AsyncIterable<Uint8Array>)
        return r.$metadata.httpStatusCode!
      } catch (e) {
        return (e as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode
      }
    }
    assert.equal(await status({ IfMatch: etag }), 200)
    assert.equal(await status({ IfMatch: '"00000000000000000000000000000000"' }), 412)
    assert.equal(await status({ IfMatch: `"nope", ${etag}` }), 200)
    assert.equal(await status({ IfMatch: '*' }), 200)
    assert.equal(await status({ IfNoneMatch: etag }), 304)
    assert.equal(await status({ IfNoneMatch: '"other"' }), 200)
    assert.equal(await status({ IfModifiedSince: future }), 304)
    assert.equal(await status({ IfModifiedSince: past }), 200)
    assert.equal(await status({ IfUnmodifiedSince: past }), 412)
    assert.equal(await status({ IfUnmodifiedSince: future }), 200)
    // precedence: If-Match holding overrides a failing If-Unmodified-Since
    assert.equal(await status({ IfMatch: etag, IfUnmodifiedSince: past }), 200)
    // If-None-Match present: If-Modified-Since is not evaluated
    assert.equal(await status({ IfNoneMatch: '"other"', IfModifiedSince: future }), 200)
    // a failing If-Match wins over If-None-Match
    assert.equal(await status({ IfMatch: '"x"', IfNoneMatch: etag }), 412)
    // conditions come before an unsatisfiable range
    assert.equal(await status({ IfNoneMatch: etag, Range: 'bytes=999999-' }), 304)
    assert.equal(await status({ IfMatch: etag, Range: 'bytes=999999-' }), 416)
    // HEAD answers the same
    await assert.rejects(s3.send(new HeadObjectCommand({ Bucket: 'cond', Key: 'k', IfMatch: '"x"' })), (e: { $metadata: { httpStatusCode: number } }) => e.$metadata.httpStatusCode === 412)
    await assert.rejects(s3.send(new HeadObjectCommand({ Bucket: 'cond', Key: 'k', IfNoneMatch: etag })), (e: { $metadata: { httpStatusCode: number } }) => e.$metadata.httpStatusCode === 304)
  } finally {
    await h.close()
  }
})

test('response-* overrides need a signature; checksum mode returns the CRC32C the SDK verifies', async () => {
  const h = await startHarness()
  try {
    const s3 = h.client()
    await s3.send(new CreateBucketCommand({ Bucket: 'over', ACL: 'public-read' }))
    await s3.send(new PutObjectCommand({ Bucket: 'over', Key: 'k', Body: data, ContentType: 'application/octet-stream' }))
    const r = await s3.send(
      new GetObjectCommand({ Bucket: 'over', Key: 'k', ResponseContentType: 'image/png', ResponseContentDisposition: 'attachment; filename="x.png"', ResponseCacheControl: 'no-cache' }),
    )
    await collect(r.Body as AsyncIterable<Uint8Array>)
    assert.equal(r.ContentType, 'image/png')
    assert.equal(r.ContentDisposition, 'attachment; filename="x.png"')
    assert.equal(r.CacheControl, 'no-cache')
    const presigned = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'over', Key: 'k', ResponseContentType: 'text/plain' }), { expiresIn: 60 })
    assert.equal((await fetch(presigned)).headers.get('content-type'), 'text/plain')
    const anonymous = await fetch(`${h.endpoint}/over/k?response-content-type=text/plain`)
    assert.equal(anonymous.status, 400)

    const checked = await s3.send(new GetObjectCommand({ Bucket: 'over', Key: 'k', ChecksumMode: 'ENABLED' }))
    assert.ok(checked.ChecksumCRC32C, 'the stored CRC32C is returned')
    assert.deepEqual(await collect(checked.Body as AsyncIterable<Uint8Array>), data)

    // the header is the object layer's stored CRC32C, not one computed for the response
    const stored = await h.objects.headObject('over', 'k')
    const s = signed({ key: alice, port: h.port, method: 'GET', path: objectPath('over', 'k'), payloadHash: 'UNSIGNED-PAYLOAD', headers: { 'x-amz-checksum-mode': 'ENABLED' } })
    const raw = await send(h.port, 'GET', s.path, s.headers)
    assert.equal(raw.headers['x-amz-checksum-crc32c'], stored.checksumCrc32c)
  } finally {
    await h.close()
  }
})

// Authentication and authorization through the real server: wrong secrets, unknown
// keys, other tenants, anonymous access, presigned URLs (the SDK's presigner), clock
// skew, and signed streaming bodies whose chunks or trailer were tampered with.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import { alice, bob, collect, patternBytes, startHarness } from './harness.ts'
import { objectPath, streamingPut } from './raw.ts'
import { checksumOf } from '../../src/s3/checksums.ts'

function xmlCode(body: Buffer): string | undefined {
  return /<Code>([^<]*)<\/Code>/.exec(body.toString())?.[1]
}

test('wrong secret -> 403 SignatureDoesNotMatch; unknown key -> 403 InvalidAccessKeyId', async () => {
  const h = await startHarness()
  try {
    await h.client().send(new CreateBucketCommand({ Bucket: 'private' }))
    const wrongSecret = h.client({ ...alice, secretAccessKey: 'not-the-secret' })
    await assert.rejects(wrongSecret.send(new ListObjectsV2Command({ Bucket: 'private' })), (e: Error & { $metadata?: { httpStatusCode?: number } }) => {
      assert.equal(e.name, 'SignatureDoesNotMatch')
      assert.equal(e.$metadata?.httpStatusCode, 403)
      return true
    })
    const unknown = h.client({ accessKeyId: 'AKIANOSUCHKEY0000000', secretAccessKey: 'x', owner: 'nobody' })
    await assert.rejects(unknown.send(new ListObjectsV2Command({ Bucket: 'private' })), (e: Error & { $metadata?: { httpStatusCode?: number } }) => {
      assert.equal(e.name, 'InvalidAccessKeyId')
      assert.equal(e.$metadata?.httpStatusCode, 403)
      return true
    })
    // a wrong-secret PUT stores nothing
    await assert.rejects(wrongSecret.send(new PutObjectCommand({ Bucket: 'private', Key: 'k', Body: 'x' })), { name: 'SignatureDoesNotMatch' })
    await assert.rejects(h.objects.headObject('private', 'k'), { code: 'NoSuchKey' })
  } finally {
    await h.close()
  }
})

test("another tenant's private bucket -> 403 AccessDenied; a PUBLIC_READ bucket reads for anyone, writes only for its owner", async () => {
  const h = await startHarness()
  try {
    const a = h.client(alice)
    const b = h.client(bob)
    await a.send(new CreateBucketCommand({ Bucket: 'alice-private' }))
    await a.send(new CreateBucketCommand({ Bucket: 'alice-public', ACL: 'public-read' }))
    assert.equal((await h.objects.getBucket('alice-public')).policy, 'PUBLIC_READ')
    await a.send(new PutObjectCommand({ Bucket: 'alice-private', Key: 'secret.txt', Body: 'secret' }))
    await a.send(new PutObjectCommand({ Bucket: 'alice-public', Key: 'page.html', Body: '<p>hi</p>', ContentType: 'text/html' }))

    for (const command of [
      new GetObjectCommand({ Bucket: 'alice-private', Key: 'secret.txt' }),
      new ListObjectsV2Command({ Bucket: 'alice-private' }),
      new PutObjectCommand({ Bucket: 'alice-private', Key: 'x', Body: 'x' }),
      new PutObjectCommand({ Bucket: 'alice-public', Key: 'x', Body: 'x' }),
    ]) {
      await assert.rejects(b.send(command as never), (e: Error & { $metadata?: { httpStatusCode?: number } }) => {
        assert.equal(e.name, 'AccessDenied')
        assert.equal(e.$metadata?.httpStatusCode, 403)
        return true
      })
    }
    await assert.rejects(h.objects.headObject('alice-public', 'x'), { code: 'NoSuchKey' })

    // bob (authenticated) and anonymous clients read the public bucket
    const viaBob = await b.send(new GetObjectCommand({ Bucket: 'alice-public', Key: 'page.html' }))
    assert.equal((await collect(viaBob.Body as AsyncIterable<Uint8Array>)).toString(), '<p>hi</p>')
    const anonymous = await fetch(`${h.endpoint}/alice-public/page.html`)
    assert.equal(anonymous.status, 200)
    assert.equal(await anonymous.text(), '<p>hi</p>')
    const anonymousList = await fetch(`${h.endpoint}/alice-public?list-type=2`)
    assert.equal(anonymousList.status, 200)
    assert.match(await anonymousList.text(), /<Key>page.html<\/Key>/)

    const denied = await fetch(`${h.endpoint}/alice-private/secret.txt`)
    assert.equal(denied.status, 403)
    assert.equal(xmlCode(Buffer.from(await denied.arrayBuffer())), 'AccessDenied')
    const anonymousPut = await fetch(`${h.endpoint}/alice-public/new.txt`, { method: 'PUT', body: 'x' })
    assert.equal(anonymousPut.status, 403)
    await assert.rejects(h.objects.headObject('alice-public', 'new.txt'), { code: 'NoSuchKey' })
    const anonymousBuckets = await fetch(`${h.endpoint}/`)
    assert.equal(anonymousBuckets.status, 403)
  } finally {
    await h.close()
  }
})

test('presigned URLs (the SDK presigner): GET and PUT work; expired -> 403; tampered -> 403; over 7 days refused', async () => {
  const h = await startHarness()
  try {
    const s3 = h.client()
    await s3.send(new CreateBucketCommand({ Bucket: 'shared' }))
    await s3.send(new PutObjectCommand({ Bucket: 'shared', Key: 'report 2024+final%.txt', Body: 'quarterly' }))
    const getUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'shared', Key: 'report 2024+final%.txt' }), { expiresIn: 300 })
    const got = await fetch(getUrl)
    assert.equal(got.status, 200)
    assert.equal(await got.text(), 'quarterly')

    const putUrl = await getSignedUrl(s3, new PutObjectCommand({ Bucket: 'shared', Key: 'upload.bin' }), { expiresIn: 300 })
    const data = patternBytes(100_000)
    const put = await fetch(putUrl, { method: 'PUT', body: data })
    assert.equal(put.status, 200, await put.text())
    assert.deepEqual(await collect((await h.objects.getObject('shared', 'upload.bin')).body), data)

    const expiredUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket: 'shared', Key: 'report 2024+final%.txt' }), {
      expiresIn: 60,
      signingDate: new Date(Date.now() - 10 * 60_000),
    })
    const expired = await fetch(expiredUrl)
    assert.equal(expired.status, 403)
    assert.equal(xmlCode(Buffer.from(await expired.arrayBuffer())), 'AccessDenied')

    const tampered = await fetch(getUrl.replace('report%202024', 'report%202025'))
    assert.equal(tampered.status, 403)
    assert.equal(xmlCode(Buffer.from(await tampered.arrayBuffer())), 'SignatureDoesNotMatch')

    const tooLong = await fetch(getUrl.replace(/X-Amz-Expires=\d+/, 'X-Amz-Expires=604801'))
    assert.equal(tooLong.status, 400)
    assert.equal(xmlCode(Buffer.from(await tooLong.arrayBuffer())), 'AuthorizationHeaderMalformed')
  } finally {
    await h.close()
  }
})

test('a clock more than 15 minutes off -> 403 RequestTimeTooSkewed', async () => {
  const h = await startHarness({ now: () => Date.now() + 60 * 60_000 })
  try {
    await assert.rejects(h.client().send(new CreateBucketCommand({ Bucket: 'skewed' })), (e: Error & { $metadata?: { httpStatusCode?: number } }) => {
      assert.equal(e.name, 'RequestTimeTooSkewed')
      assert.equal(e.$metadata?.httpStatusCode, 403)
      return true
    })
  } finally {
    await h.close()
  }
})

test('signed streaming upload (STREAMING-AWS4-HMAC-SHA256-PAYLOAD): stored when every chunk verifies', async () => {
  const h = await startHarness()
  try {
    await h.client().send(new CreateBucketCommand({ Bucket: 'chunks' }))
    const data = patternBytes(200_000, 7)
    const chunks = [data.subarray(0, 65536), data.subarray(65536, 131072), data.subarray(131072)]
    const ok = await streamingPut({ key: alice, port: h.port, path: objectPath('chunks', 'signed.bin'), chunks })
    assert.equal(ok.status, 200, ok.body.toString())
    assert.deepEqual(await collect((await h.objects.getObject('chunks', 'signed.bin')).body), data)

    const withTrailer = await streamingPut({
      key: alice,
      port: h.port,
      path: objectPath('chunks', 'trailer.bin'),
      chunks,
      trailer: ['x-amz-checksum-crc32c', checksumOf('crc32c', data)],
    })
    assert.equal(withTrailer.status, 200, withTrailer.body.toString())
    assert.equal(withTrailer.headers['x-amz-checksum-crc32c'], checksumOf('crc32c', data))
    assert.deepEqual(await collect((await h.objects.getObject('chunks', 'trailer.bin')).body), data)
  } finally {
    await h.close()
  }
})

test('signed streaming upload: a tampered chunk or trailer -> 403 and nothing stored (an existing object is untouched)', async () => {
  const h = await startHarness()
  try {
    await h.client().send(new CreateBucketCommand({ Bucket: 'chunks' }))
    await h.client().send(new PutObjectCommand({ Bucket: 'chunks', Key: 'kept.bin', Body: 'original' }))
    const data = patternBytes(150_000, 9)
    const chunks = [data.subarray(0, 65536), data.subarray(65536, 131072), data.subarray(131072)]
    const tamperedData = await streamingPut({
      key: alice,
      port: h.port,
      path: objectPath('chunks', 'kept.bin'),
      chunks,
      tamper: (wire) => {
        wire[wire.length - 5000] ^= 0x01 // inside the last data chunk
      },
    })
    assert.equal(tamperedData.status, 403)
    assert.equal(xmlCode(tamperedData.body), 'SignatureDoesNotMatch')
    assert.equal((await collect((await h.objects.getObject('chunks', 'kept.bin')).body)).toString(), 'original')

    const tamperedTrailer = await streamingPut({
      key: alice,
      port: h.port,
      path: objectPath('chunks', 'new.bin'),
      chunks,
      trailer: ['x-amz-checksum-crc32', checksumOf('crc32', data)],
      tamper: (wire) => {
        const at = wire.lastIndexOf('x-amz-checksum-crc32:') + 'x-amz-checksum-crc32:'.length
        wire[at] = wire[at] === 0x41 ? 0x42 : 0x41
      },
    })
    assert.equal(tamperedTrailer.status, 403)
    assert.equal(xmlCode(tamperedTrailer.body), 'SignatureDoesNotMatch')
    await assert.rejects(h.objects.headObject('chunks', 'new.bin'), { code: 'NoSuchKey' })
  } finally {
    await h.close()
  }
})

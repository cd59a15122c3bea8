// Bad input through the real server: malformed XML, digests and checksums that do
// not match, wrong payload hashes, bodies cut off or stalled, invalid bucket names,
// over-long keys, unsupported features — each answered with its S3 error and
// nothing stored. And keys that are easy to mangle round-trip exactly.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { connect } from 'node:net'
import { test } from 'node:test'
import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetBucketCorsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  PutObjectTaggingCommand,
} from '@aws-sdk/client-s3'
import { checksumOf } from '../../src/s3/checksums.ts'
import { encodeAwsChunked } from '../../src/s3/chunked.ts'
import { alice, collect, patternBytes, startHarness } from './harness.ts'
import { objectPath, send, sha256Hex, signed } from './raw.ts'

function xmlCode(body: Buffer): string | undefined {
  return /<Code>([^<]*)<\/Code>/.exec(body.toString())?.[1]
}

test('malformed XML -> 400 MalformedXML (DeleteObjects, CompleteMultipartUpload, CreateBucket)', async () => {
  const h = await startHarness()
  try {
    await h.client().send(new CreateBucketCommand({ Bucket: 'xml' }))
    for (const [query, body] of [
      [[['delete', '']], '<Delete><Object><Key>a</Key></Object>'],
      [[['delete', '']], 'not xml at all'],
      [[['delete', '']], '<Other><Object><Key>a</Key></Object></Other>'],
      [[['delete', '']], '<!DOCTYPE x [<!ENTITY a "aaaa">]><Delete><Object><Key>&a;</Key></Object></Delete>'],
    ] as [[string, string][], string][]) {
      const bytes = Buffer.from(body)
      const s = signed({ key: alice, port: h.port, method: 'POST', path: '/xml', query, payloadHash: sha256Hex(bytes), headers: { 'content-md5': createHashBase64('md5', bytes) } })
      const res = await send(h.port, 'POST', s.path, s.headers, bytes)
      assert.equal(res.status, 400, body)
      assert.equal(xmlCode(res.body), 'MalformedXML', body)
    }
    const upload = await h.client().send(new CreateMultipartUploadCommand({ Bucket: 'xml', Key: 'k' }))
    const bytes = Buffer.from('<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>')
    const s = signed({ key: alice, port: h.port, method: 'POST', path: '/xml/k', query: [['uploadId', upload.UploadId!]], payloadHash: sha256Hex(bytes) })
    const res = await send(h.port, 'POST', s.path, s.headers, bytes)
    assert.equal(res.status, 400)
    assert.equal(xmlCode(res.body), 'MalformedXML')
    const create = Buffer.from('<CreateBucketConfiguration><LocationConstraint>')
    const c = signed({ key: alice, port: h.port, method: 'PUT', path: '/newbucket', payloadHash: sha256Hex(create) })
    const created = await send(h.port, 'PUT', c.path, c.headers, create)
    assert.equal(xmlCode(created.body), 'MalformedXML')
    await assert.rejects(h.objects.getBucket('newbucket'), { code: 'NoSuchBucket' })
  } finally {
    await h.close()
  }
})

function createHashBase64(algorithm: string, bytes: Buffer): string {
  return createHash(algorithm).update(bytes).digest('base64')
}

test('Content-MD5 or x-amz-checksum-* mismatch -> 400 BadDigest, nothing stored; malformed Content-MD5 -> InvalidDigest', async () => {
  const h = await startHarness()
  try {
    const s3 = h.client()
    await s3.send(new CreateBucketCommand({ Bucket: 'digest' }))
    const body = Buffer.from('the real body')
    const wrongMd5 = createHashBase64('md5', Buffer.from('another body'))
    await assert.rejects(s3.send(new PutObjectCommand({ Bucket: 'digest', Key: 'md5', Body: body, ContentMD5: wrongMd5 })), (e: Error & { $metadata?: { httpStatusCode?: number } }) => {
      assert.equal(e.name, 'BadDigest')
      assert.equal(e.$metadata?.httpStatusCode, 400)
      return true
    })
    await assert.rejects(h.objects.headObject('digest', 'md5'), { code: 'NoSuchKey' })
    await assert.rejects(s3.send(new PutObjectCommand({ Bucket: 'digest', Key: 'crc', Body: body, ChecksumCRC32C: checksumOf('crc32c', Buffer.from('x')) })), { name: 'BadDigest' })
    await assert.rejects(h.objects.headObject('digest', 'crc'), { code: 'NoSuchKey' })
    await assert.rejects(s3.send(new PutObjectCommand({ Bucket: 'digest', Key: 'sha', Body: body, ChecksumSHA256: checksumOf('sha256', Buffer.from('x')) })), { name: 'BadDigest' })
    await assert.rejects(h.objects.headObject('digest', 'sha'), { code: 'NoSuchKey' })
    await assert.rejects(s3.send(new PutObjectCommand({ Bucket: 'digest', Key: 'bad', Body: body, ContentMD5: 'not-base64!' })), { name: 'InvalidDigest' })

    // correct ones are stored and echoed
    const good = await s3.send(new PutObjectCommand({ Bucket: 'digest', Key: 'good', Body: body, ChecksumSHA256: checksumOf('sha256', body), ContentMD5: createHashBase64('md5', body) }))
    assert.equal(good.ChecksumSHA256, checksumOf('sha256', body))
  } finally {
    await h.close()
  }
})

test('a wrong trailing checksum -> 400 BadDigest; a wrong signed payload hash -> 400 XAmzContentSHA256Mismatch; nothing stored', async () => {
  const h = await startHarness()
  try {
    await h.client().send(new CreateBucketCommand({ Bucket: 'hash' }))
    const data = patternBytes(50_000, 3)
    const wire = encodeAwsChunked([data.subarray(0, 30_000), data.subarray(30_000)], { trailers: [['x-amz-checksum-crc32', checksumOf('crc32', Buffer.from('other'))]] })
    const t = signed({
      key: alice,
      port: h.port,
      method: 'PUT',
      path: objectPath('hash', 'trailer'),
      payloadHash: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
      headers: { 'content-encoding': 'aws-chunked', 'x-amz-trailer': 'x-amz-checksum-crc32', 'x-amz-decoded-content-length': String(data.length) },
    })
    const trailerRes = await send(h.port, 'PUT', t.path, t.headers, wire)
    assert.equal(trailerRes.status, 400)
    assert.equal(xmlCode(trailerRes.body), 'BadDigest')
    await assert.rejects(h.objects.headObject('hash', 'trailer'), { code: 'NoSuchKey' })

    const p = signed({ key: alice, port: h.port, method: 'PUT', path: objectPath('hash', 'payload'), payloadHash: sha256Hex(Buffer.from('something else')) })
    const payloadRes = await send(h.port, 'PUT', p.path, p.headers, data)
    assert.equal(payloadRes.status, 400)
    assert.equal(xmlCode(payloadRes.body), 'XAmzContentSHA256Mismatch')
    await assert.rejects(h.objects.headObject('hash', 'payload'), { code: 'NoSuchKey' })

    const ok = signed({ key: alice, port: h.port, method: 'PUT', path: objectPath('hash', 'payload'), payloadHash: sha256Hex(data) })
    assert.equal((await send(h.port, 'PUT', ok.path, ok.headers, data)).status, 200)
    assert.deepEqual(await collect((await h.objects.getObject('hash', 'payload')).body), data)
  } finally {
    await h.close()
  }
})

test('a client that disconnects mid-body leaves nothing visible', async () => {
  const h = await startHarness()
  try {
    await h.client().send(new CreateBucketCommand({ Bucket: 'cut' }))
    const length = 4 * 1024 * 1024
    const s = signed({ key: alice, port: h.port, method: 'PUT', path: objectPath('cut', 'partial.bin'), payloadHash: 'UNSIGNED-PAYLOAD', headers: { 'content-length': String(length) } })
    const settled = once(h.objects.writes, 'settled')
    const socket = connect(h.port, '127.0.0.1')
    await once(socket, 'connect')
    socket.write(`PUT ${s.path} HTTP/1.1\r\n` + Object.entries(s.headers).map(([n, v]) => `${n}: ${v}\r\n`).join('') + '\r\n')
    socket.write(patternBytes(length / 2))
    // wait until the object layer has started receiving, then cut the connection
    while (h.objects.calls.putObject === 0) await new Promise((r) => setImmediate(r))
    socket.destroy()
    const [event] = (await settled) as [{ error: { code?: string } | null }]
    assert.equal(event.error?.code, 'IncompleteBody')
    await assert.rejects(h.objects.headObject('cut', 'partial.bin'), { code: 'NoSuchKey' })
  } finally {
    await h.close()
  }
})

test('a body that stalls -> 400 RequestTimeout, nothing stored', async () => {
  const h = await startHarness({ requestIdleTimeoutMs: 300 })
  try {
    await h.client().send(new CreateBucketCommand({ Bucket: 'slow' }))
    const s = signed({ key: alice, port: h.port, method: 'PUT', path: objectPath('slow', 'stalled.bin'), payloadHash: 'UNSIGNED-PAYLOAD', headers: { 'content-length': '1000' } })
    const socket = connect(h.port, '127.0.0.1')
    await once(socket, 'connect')
    const chunks: Buffer[] = []
    socket.on('data', (c: Buffer) => chunks.push(c))
    socket.write(`PUT ${s.path} HTTP/1.1\r\n` + Object.entries(s.headers).map(([n, v]) => `${n}: ${v}\r\n`).join('') + '\r\n')
    socket.write(Buffer.alloc(100))
    await once(socket, 'close')
    const response = Buffer.concat(chunks).toString()
    assert.match(response, /^HTTP\/1.1 400 /)
    assert.match(response, /<Code>RequestTimeout<\/Code>/)
    await assert.rejects(h.objects.headObject('slow', 'stalled.bin'), { code: 'NoSuchKey' })
  } finally {
    await h.close()
  }
})

test('invalid bucket names -> 400 InvalidBucketName', async () => {
  const h = await startHarness()
  try {
    for (const name of ['ab', 'Upper-Case', 'under_score', '-leading', 'trailing-', 'two..dots', '192.168.0.1', 'a'.repeat(64), 'xn--punycode', 'api', 'metrics']) {
      const s = signed({ key: alice, port: h.port, method: 'PUT', path: '/' + encodeURIComponent(name), payloadHash: sha256Hex(Buffer.alloc(0)) })
      const res = await send(h.port, 'PUT', s.path, s.headers)
      assert.equal(res.status, 400, name)
      assert.equal(xmlCode(res.body), 'InvalidBucketName', name)
    }
    assert.deepEqual(await h.objects.listBuckets(), [])
  } finally {
    await h.close()
  }
})

test('keys with unicode, spaces, +, %, and other awkward characters round-trip exactly', async () => {
  const h = await startHarness()
  try {
    const s3 = h.client()
    await s3.send(new CreateBucketCommand({ Bucket: 'keys' }))
    const keys = ['with space.txt', 'plus+sign', 'percent%20literal', 'ünïcödé/日本語/файл', 'emoji 😀', 'a&b=c?d#e', "quote'\"<xml>", 'slash//double', ' leading space', 'tilde~!*()']
    for (const [i, key] of keys.entries()) await s3.send(new PutObjectCommand({ Bucket: 'keys', Key: key, Body: `body ${i}` }))
    for (const [i, key] of keys.entries()) {
      const got = await s3.send(new GetObjectCommand({ Bucket: 'keys', Key: key }))
      assert.equal((await collect(got.Body as AsyncIterable<Uint8Array>)).toString(), `body ${i}`, key)
      assert.equal((await h.objects.headObject('keys', key)).key, key)
    }
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'keys' }))
    assert.deepEqual(new Set(listed.Contents?.map((c) => c.Key)), new Set(keys))
    const encoded = await s3.send(new ListObjectsV2Command({ Bucket: 'keys', EncodingType: 'url' }))
    assert.deepEqual(new Set(encoded.Contents?.map((c) => decodeURIComponent(c.Key!))), new Set(keys))
    // a raw '+' in the path is a plus (S3 paths are not form-encoded)
    const s = signed({ key: alice, port: h.port, method: 'GET', path: '/keys/plus+sign', payloadHash: 'UNSIGNED-PAYLOAD' })
    const raw = await send(h.port, 'GET', s.path, s.headers)
    assert.equal(raw.body.toString(), 'body 1')
  } finally {
    await h.close()
  }
})

test('over-long keys -> KeyTooLongError; unsupported features -> 501 NotImplemented, never a wrong success', async () => {
  const h = await startHarness()
  try {
    const s3 = h.client()
    await s3.send(new CreateBucketCommand({ Bucket: 'limits' }))
    await assert.rejects(s3.send(new PutObjectCommand({ Bucket: 'limits', Key: 'k'.repeat(1025), Body: 'x' })), { name: 'KeyTooLongError' })
    await s3.send(new PutObjectCommand({ Bucket: 'limits', Key: 'k', Body: 'x' }))
    await assert.rejects(s3.send(new GetBucketCorsCommand({ Bucket: 'limits' })), (e: Error & { $metadata?: { httpStatusCode?: number } }) => {
      assert.equal(e.name, 'NotImplemented')
      assert.equal(e.$metadata?.httpStatusCode, 501)
      return true
    })
    await assert.rejects(s3.send(new PutObjectTaggingCommand({ Bucket: 'limits', Key: 'k', Tagging: { TagSet: [{ Key: 'a', Value: 'b' }] } })), { name: 'NotImplemented' })
    await assert.rejects(s3.send(new PutObjectCommand({ Bucket: 'limits', Key: 'sse', Body: 'x', ServerSideEncryption: 'AES256' })), { name: 'NotImplemented' })
    await assert.rejects(s3.send(new PutObjectCommand({ Bucket: 'limits', Key: 'tagged', Body: 'x', Tagging: 'a=b' })), { name: 'NotImplemented' })
    await assert.rejects(s3.send(new PutObjectCommand({ Bucket: 'limits', Key: 'glacier', Body: 'x', StorageClass: 'GLACIER' })), { name: 'NotImplemented' })
    for (const key of ['sse', 'tagged', 'glacier']) await assert.rejects(h.objects.headObject('limits', key), { code: 'NoSuchKey' })
    const versioned = await s3.send(new DeleteObjectsCommand({ Bucket: 'limits', Delete: { Objects: [{ Key: 'k', VersionId: 'v1' }] } }))
    assert.equal(versioned.Errors?.[0]?.Code, 'NotImplemented')
    assert.equal((await h.objects.headObject('limits', 'k')).sizeBytes, 1, 'a versioned delete deletes nothing')
    const options = await fetch(`${h.endpoint}/limits/k`, { method: 'OPTIONS' })
    assert.equal(options.status, 405)
  } finally {
    await h.close()
  }
})

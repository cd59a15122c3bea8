// The seed's JSON API (/api/v1/buckets/{bucket}/objects/{key}) on the S3 port, with
// SigV4 like S3: multipart with the seed's request and response shapes, whole-object
// GET/PUT/DELETE, JSON errors, and the same tenants and presigned URLs.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import { CreateBucketCommand } from '@aws-sdk/client-s3'
import { checksumOf } from '../../src/s3/checksums.ts'
import { formatAmzDate, presignQuery, uriEncode } from '../../src/s3/sigv4.ts'
import type { AccessKey } from '../../src/objects/types.ts'
import { alice, bob, collect, patternBytes, startHarness, type Harness } from './harness.ts'
import { send, sha256Hex, signed, type RawResponse } from './raw.ts'

const MiB = 1024 * 1024

function apiPath(bucket: string, key: string): string {
  return `/api/v1/buckets/${bucket}/objects/${uriEncode(key)}`
}

async function api(h: Harness, method: string, path: string, query: [string, string][], options: { body?: Buffer; headers?: Record<string, string>; key?: AccessKey } = {}): Promise<RawResponse & { json: any }> {
  const body = options.body ?? Buffer.alloc(0)
  const s = signed({ key: options.key ?? alice, port: h.port, method, path, query, payloadHash: sha256Hex(body), headers: options.headers })
  const res = await send(h.port, method, s.path, s.headers, body)
  const type = res.headers['content-type'] ?? ''
  return { ...res, json: type.startsWith('application/json') ? JSON.parse(res.body.toString()) : null }
}

const md5b64 = (data: Buffer) => createHash('md5').update(data).digest('base64')

test('multipart with the seed contracts: ?uploads, ?uploadId=&partNumber= with Content-MD5, ?complete -> 201', async () => {
  const h = await startHarness()
  try {
    await h.client().send(new CreateBucketCommand({ Bucket: 'assets-production' }))
    const key = 'videos/sprint_masterclass.mp4'
    const path = apiPath('assets-production', key)
    const init = await api(h, 'POST', path, [['uploads', '']])
    assert.equal(init.status, 200)
    assert.deepEqual(Object.keys(init.json).sort(), ['bucket', 'chunk_size_bytes', 'initiated_at', 'key', 'upload_id'])
    assert.equal(init.json.bucket, 'assets-production')
    assert.equal(init.json.key, key)
    assert.equal(init.json.chunk_size_bytes, 16777216)
    assert.match(init.json.initiated_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
    const uploadId: string = init.json.upload_id

    const part1 = patternBytes(5 * MiB, 21)
    const part2 = patternBytes(4321, 22)
    const up1 = await api(h, 'PUT', path, [['uploadId', uploadId], ['partNumber', '1']], { body: part1, headers: { 'content-md5': md5b64(part1), 'content-type': 'application/octet-stream' } })
    assert.equal(up1.status, 200)
    assert.deepEqual(up1.json, {
      upload_id: uploadId,
      part_number: 1,
      etag: createHash('md5').update(part1).digest('hex'),
      checksum_crc32c: Buffer.from(checksumOf('crc32c', part1), 'base64').toString('hex'),
      bytes_written: part1.length,
    })
    assert.match(up1.json.checksum_crc32c, /^[0-9a-f]{8}$/)

    const bad = await api(h, 'PUT', path, [['uploadId', uploadId], ['partNumber', '2']], { body: part2, headers: { 'content-md5': md5b64(part1) } })
    assert.equal(bad.status, 400)
    assert.equal(bad.json.error.code, 'BadDigest')
    assert.ok(bad.json.error.request_id)
    const up2 = await api(h, 'PUT', path, [['uploadId', uploadId], ['partNumber', '2']], { body: part2, headers: { 'content-md5': md5b64(part2) } })
    assert.equal(up2.json.bytes_written, part2.length)

    const complete = await api(h, 'POST', path, [['complete', ''], ['uploadId', uploadId]], {
      body: Buffer.from(JSON.stringify({ parts: [{ part_number: 1, etag: up1.json.etag }, { part_number: 2, etag: up2.json.etag }] })),
    })
    assert.equal(complete.status, 201)
    assert.equal(complete.json.size_bytes, part1.length + part2.length)
    assert.equal(complete.json.parts_count, 2)
    assert.match(complete.json.etag, /^[0-9a-f]{32}-2$/)
    assert.ok((await collect((await h.objects.getObject('assets-production', key)).body)).equals(Buffer.concat([part1, part2])))

    // complete with no parts named: every uploaded part, upload id in the body
    const again = await api(h, 'POST', path, [['uploads', '']])
    await api(h, 'PUT', path, [['uploadId', again.json.upload_id], ['partNumber', '1']], { body: part2 })
    const implicit = await api(h, 'POST', path, [['complete', '']], { body: Buffer.from(JSON.stringify({ upload_id: again.json.upload_id })) })
    assert.equal(implicit.status, 201)
    assert.equal(implicit.json.size_bytes, part2.length)

    // abort
    const third = await api(h, 'POST', path, [['uploads', '']])
    assert.equal((await api(h, 'DELETE', path, [['uploadId', third.json.upload_id]])).status, 204)
    const gone = await api(h, 'PUT', path, [['uploadId', third.json.upload_id], ['partNumber', '1']], { body: part2 })
    assert.equal(gone.status, 404)
    assert.equal(gone.json.error.code, 'NoSuchUpload')
  } finally {
    await h.close()
  }
})

test('whole objects: PUT -> 201 JSON, GET bytes (with Range), DELETE -> 204, errors as JSON', async () => {
  const h = await startHarness()
  try {
    await h.client().send(new CreateBucketCommand({ Bucket: 'json-api' }))
    const data = patternBytes(100_000, 31)
    const path = apiPath('json-api', 'dir/file with space.bin')
    const put = await api(h, 'PUT', path, [], { body: data, headers: { 'content-type': 'image/png', 'content-md5': md5b64(data) } })
    assert.equal(put.status, 201)
    assert.equal(put.json.size_bytes, data.length)
    assert.equal(put.json.etag, createHash('md5').update(data).digest('hex'))
    assert.equal(put.json.checksum_crc32c, Buffer.from(checksumOf('crc32c', data), 'base64').toString('hex'))
    assert.equal((await h.objects.headObject('json-api', 'dir/file with space.bin')).contentType, 'image/png')

    const got = await api(h, 'GET', path, [])
    assert.equal(got.status, 200)
    assert.ok(got.body.equals(data))
    assert.equal(got.headers['content-type'], 'image/png')
    const ranged = await api(h, 'GET', path, [], { headers: { range: 'bytes=10-19' } })
    assert.equal(ranged.status, 206)
    assert.ok(ranged.body.equals(data.subarray(10, 20)))

    assert.equal((await api(h, 'DELETE', path, [])).status, 204)
    const missing = await api(h, 'GET', path, [])
    assert.equal(missing.status, 404)
    assert.equal(missing.json.error.code, 'NoSuchKey')
    const noBucket = await api(h, 'GET', apiPath('no-such-bucket', 'k'), [])
    assert.equal(noBucket.json.error.code, 'NoSuchBucket')
    const wrongMethod = await api(h, 'POST', path, [])
    assert.equal(wrongMethod.status, 405)
    assert.equal(wrongMethod.json.error.code, 'MethodNotAllowed')
  } finally {
    await h.close()
  }
})

test('same auth as S3: anonymous and other tenants are refused, presigned URLs work', async () => {
  const h = await startHarness()
  try {
    await h.client().send(new CreateBucketCommand({ Bucket: 'json-private' }))
    const path = apiPath('json-private', 'k.txt')
    await api(h, 'PUT', path, [], { body: Buffer.from('private') })
    const anonymous = await send(h.port, 'GET', path, {})
    assert.equal(anonymous.status, 403)
    assert.equal(JSON.parse(anonymous.body.toString()).error.code, 'AccessDenied')
    const other = await api(h, 'GET', path, [], { key: bob })
    assert.equal(other.status, 403)
    const wrongSecret = await api(h, 'GET', path, [], { key: { ...alice, secretAccessKey: 'wrong' } })
    assert.equal(wrongSecret.json.error.code, 'SignatureDoesNotMatch')

    const query = presignQuery({
      method: 'GET',
      path,
      headers: { host: `127.0.0.1:${h.port}` },
      accessKeyId: alice.accessKeyId,
      secretAccessKey: alice.secretAccessKey,
      region: 'us-east-1',
      amzDate: formatAmzDate(Date.now()),
      expiresSeconds: 60,
    })
    const presigned = await fetch(`${h.endpoint}${path}?${query}`)
    assert.equal(presigned.status, 200)
    assert.equal(await presigned.text(), 'private')
  } finally {
    await h.close()
  }
})

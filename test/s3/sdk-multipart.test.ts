// Multipart through the AWS SDK: a 200 MiB object whose parts are uploaded in
// parallel and out of order, UploadPartCopy with ranges, ListParts and
// ListMultipartUploads, abort, and the errors S3 defines for completion.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3'
import { seededRandom } from '../../src/random.ts'
import { collect, patternBytes, startHarness } from './harness.ts'

const MiB = 1024 * 1024

test('a 200 MiB object in 25 parts uploaded 4 at a time in shuffled order reads back byte-equal', async () => {
  const h = await startHarness()
  try {
    const s3 = h.client()
    await s3.send(new CreateBucketCommand({ Bucket: 'big' }))
    const partSize = 8 * MiB
    const parts = 25
    const partBytes = (n: number) => patternBytes(partSize, 1000 + n)
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'big', Key: 'video.bin', ContentType: 'video/mp4', Metadata: { source: 'camera' } }))
    const order = Array.from({ length: parts }, (_, i) => i + 1)
    const random = seededRandom(6)
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1))
      ;[order[i], order[j]] = [order[j]!, order[i]!]
    }
    assert.notDeepEqual(order, [...order].sort((a, b) => a - b))
    const etags = new Map<number, string>()
    const md5s: Buffer[] = new Array(parts + 1)
    let next = 0
    const worker = async () => {
      while (next < order.length) {
        const n = order[next++]!
        const body = partBytes(n)
        md5s[n] = createHash('md5').update(body).digest()
        const r = await s3.send(new UploadPartCommand({ Bucket: 'big', Key: 'video.bin', UploadId, PartNumber: n, Body: body }))
        assert.equal(r.ETag, `"${md5s[n]!.toString('hex')}"`)
        etags.set(n, r.ETag!)
      }
    }
    await Promise.all([worker(), worker(), worker(), worker()])

    const listed = await s3.send(new ListPartsCommand({ Bucket: 'big', Key: 'video.bin', UploadId, MaxParts: 10 }))
    assert.deepEqual(listed.Parts?.map((p) => p.PartNumber), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    assert.equal(listed.IsTruncated, true)
    const rest = await s3.send(new ListPartsCommand({ Bucket: 'big', Key: 'video.bin', UploadId, PartNumberMarker: listed.NextPartNumberMarker }))
    assert.equal(rest.Parts?.length, 15)
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: 'big' }))
    assert.deepEqual(uploads.Uploads?.map((u) => [u.Key, u.UploadId]), [['video.bin', UploadId]])

    const done = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'big',
        Key: 'video.bin',
        UploadId,
        MultipartUpload: { Parts: order.map((n) => n).sort((a, b) => a - b).map((n) => ({ PartNumber: n, ETag: etags.get(n) })) },
      }),
    )
    const expectedEtag = `"${createHash('md5').update(Buffer.concat(md5s.slice(1))).digest('hex')}-${parts}"`
    assert.equal(done.ETag, expectedEtag)
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'big', Key: 'video.bin' }))
    assert.equal(head.ContentLength, parts * partSize)
    assert.equal(head.ContentType, 'video/mp4')
    assert.deepEqual(head.Metadata, { source: 'camera' })

    const got = await s3.send(new GetObjectCommand({ Bucket: 'big', Key: 'video.bin' }))
    const whole = createHash('sha256')
    let length = 0
    for await (const piece of got.Body as AsyncIterable<Uint8Array>) {
      whole.update(piece)
      length += piece.length
    }
    const expected = createHash('sha256')
    for (let n = 1; n <= parts; n++) expected.update(partBytes(n))
    assert.equal(length, parts * partSize)
    assert.equal(whole.digest('hex'), expected.digest('hex'))
    assert.deepEqual((await s3.send(new ListMultipartUploadsCommand({ Bucket: 'big' }))).Uploads ?? [], [])
  } finally {
    await h.close()
  }
})

test('UploadPartCopy with source ranges assembles an object from another', async () => {
  const h = await startHarness()
  try {
    const s3 = h.client()
    await s3.send(new CreateBucketCommand({ Bucket: 'copyparts' }))
    const source = patternBytes(12 * MiB, 77)
    await s3.send(new PutObjectCommand({ Bucket: 'copyparts', Key: 'source', Body: source }))
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'copyparts', Key: 'assembled' }))
    const first = await s3.send(new UploadPartCopyCommand({ Bucket: 'copyparts', Key: 'assembled', UploadId, PartNumber: 1, CopySource: 'copyparts/source', CopySourceRange: `bytes=${6 * MiB}-${12 * MiB - 1}` }))
    const second = await s3.send(new UploadPartCopyCommand({ Bucket: 'copyparts', Key: 'assembled', UploadId, PartNumber: 2, CopySource: 'copyparts/source', CopySourceRange: 'bytes=0-99' }))
    await assert.rejects(
      s3.send(new UploadPartCopyCommand({ Bucket: 'copyparts', Key: 'assembled', UploadId, PartNumber: 3, CopySource: 'copyparts/source', CopySourceIfMatch: '"other"' })),
      { name: 'PreconditionFailed' },
    )
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: 'copyparts',
        Key: 'assembled',
        UploadId,
        MultipartUpload: { Parts: [{ PartNumber: 1, ETag: first.CopyPartResult!.ETag }, { PartNumber: 2, ETag: second.CopyPartResult!.ETag }] },
      }),
    )
    const got = await s3.send(new GetObjectCommand({ Bucket: 'copyparts', Key: 'assembled' }))
    assert.deepEqual(await collect(got.Body as AsyncIterable<Uint8Array>), Buffer.concat([source.subarray(6 * MiB), source.subarray(0, 100)]))
  } finally {
    await h.close()
  }
})

test('completion errors: EntityTooSmall, InvalidPart, InvalidPartOrder, NoSuchUpload after abort — and nothing visible', async () => {
  const h = await startHarness()
  try {
    const s3 = h.client()
    await s3.send(new CreateBucketCommand({ Bucket: 'mperr' }))
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'mperr', Key: 'k' }))
    const p1 = await s3.send(new UploadPartCommand({ Bucket: 'mperr', Key: 'k', UploadId, PartNumber: 1, Body: patternBytes(MiB, 1) }))
    const p2 = await s3.send(new UploadPartCommand({ Bucket: 'mperr', Key: 'k', UploadId, PartNumber: 2, Body: patternBytes(MiB, 2) }))
    const complete = (parts: { PartNumber: number; ETag?: string }[]) =>
      s3.send(new CompleteMultipartUploadCommand({ Bucket: 'mperr', Key: 'k', UploadId, MultipartUpload: { Parts: parts } }))
    await assert.rejects(complete([{ PartNumber: 1, ETag: p1.ETag }, { PartNumber: 2, ETag: p2.ETag }]), { name: 'EntityTooSmall' })
    await assert.rejects(complete([{ PartNumber: 1, ETag: p2.ETag }]), { name: 'InvalidPart' })
    await assert.rejects(complete([{ PartNumber: 2, ETag: p2.ETag }, { PartNumber: 1, ETag: p1.ETag }]), { name: 'InvalidPartOrder' })
    await assert.rejects(s3.send(new UploadPartCommand({ Bucket: 'mperr', Key: 'k', UploadId, PartNumber: 10001, Body: 'x' })), { name: 'InvalidArgument' })
    await assert.rejects(h.objects.headObject('mperr', 'k'), { code: 'NoSuchKey' })
    await s3.send(new AbortMultipartUploadCommand({ Bucket: 'mperr', Key: 'k', UploadId }))
    await assert.rejects(complete([{ PartNumber: 1, ETag: p1.ETag }]), { name: 'NoSuchUpload' })
    await assert.rejects(s3.send(new ListPartsCommand({ Bucket: 'mperr', Key: 'k', UploadId })), { name: 'NoSuchUpload' })
    // a single small last part is allowed
    const small = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'mperr', Key: 'small' }))
    const only = await s3.send(new UploadPartCommand({ Bucket: 'mperr', Key: 'small', UploadId: small.UploadId, PartNumber: 1, Body: 'tiny' }))
    await s3.send(new CompleteMultipartUploadCommand({ Bucket: 'mperr', Key: 'small', UploadId: small.UploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: only.ETag }] } }))
    assert.equal((await h.objects.headObject('mperr', 'small')).sizeBytes, 4)
  } finally {
    await h.close()
  }
})

// The gateway over the real object layer (ObjectStore: catalog on PostgreSQL,
// in-memory storage nodes), driven by the AWS SDK: what the in-memory layer's tests
// establish must hold on the layer the gateway will actually run on — bytes equal
// both ways, listing and paging (markers that are common prefixes), copy, multipart,
// digests, tenants and access keys from the catalog.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3'
import { MemoryChunkStore } from '../../src/cluster/memory-store.ts'
import { objectStoreConfig } from '../../src/objects/config.ts'
import { ObjectStore } from '../../src/objects/object-store.ts'
import type { AccessKey } from '../../src/objects/types.ts'
import { forEachBackend } from '../catalog/harness.ts'
import { collect, patternBytes, startGateway } from './harness.ts'

const MiB = 1024 * 1024
const nodeIds = Array.from({ length: 12 }, (_, i) => `00000000-0000-4000-8000-${String(i + 100).padStart(12, '0')}`)

forEachBackend((backend) => {
  test('the SDK through the gateway over ObjectStore: objects, listing, copy, multipart, digests, tenants', async () => {
    const catalog = await backend.sharedCatalog()
    const objects = new ObjectStore({
      catalog,
      store: new MemoryChunkStore(nodeIds),
      candidates: () => nodeIds.map((id, i) => ({ id, rack: `rack-${i % 4}`, freeBytes: 1e12 })),
      config: objectStoreConfig({ stripeSizeBytes: 8 * 128 * 1024, loadWindowBytes: 2 * 8 * 128 * 1024 }),
    })
    const carol: AccessKey = await catalog.accessKeys.create({ owner: 'carol', accessKeyId: 'AKIACAROLREALLAYER01', secretAccessKey: 'carol/secret/real-layer-0123456789' })
    const dave: AccessKey = await catalog.accessKeys.create({ owner: 'dave', accessKeyId: 'AKIADAVEREALLAYER001', secretAccessKey: 'dave/secret/real-layer-0123456789' })
    const h = await startGateway({ objects })
    try {
      const s3 = h.client(carol)
      await s3.send(new CreateBucketCommand({ Bucket: 'real-s3' }))
      assert.equal((await objects.getBucket('real-s3')).owner, 'carol')

      // bytes through S3 read back through the object layer, and the other way round
      const data = patternBytes(3 * MiB + 17, 61)
      const put = await s3.send(new PutObjectCommand({ Bucket: 'real-s3', Key: 'dir/a b+c.bin', Body: data, ContentType: 'video/mp4', Metadata: { k: 'v' } }))
      assert.equal(put.ETag, `"${createHash('md5').update(data).digest('hex')}"`)
      assert.ok((await collect((await objects.getObject('real-s3', 'dir/a b+c.bin')).body)).equals(data))
      const streamed = patternBytes(MiB + 5, 62)
      await s3.send(new PutObjectCommand({ Bucket: 'real-s3', Key: 'dir/streamed', Body: Readable.from([streamed]), ContentLength: streamed.length }))
      assert.ok((await collect((await objects.getObject('real-s3', 'dir/streamed')).body)).equals(streamed))
      const direct = patternBytes(700_000, 63)
      await objects.putObject('real-s3', 'direct.bin', Readable.from([direct]))
      assert.ok((await collect((await s3.send(new GetObjectCommand({ Bucket: 'real-s3', Key: 'direct.bin' }))).Body as AsyncIterable<Uint8Array>)).equals(direct))
      const ranged = await s3.send(new GetObjectCommand({ Bucket: 'real-s3', Key: 'dir/a b+c.bin', Range: 'bytes=-1000' }))
      assert.ok((await collect(ranged.Body as AsyncIterable<Uint8Array>)).equals(data.subarray(data.length - 1000)))
      const head = await s3.send(new HeadObjectCommand({ Bucket: 'real-s3', Key: 'dir/a b+c.bin' }))
      assert.deepEqual([head.ContentType, head.Metadata, head.ContentLength], ['video/mp4', { k: 'v' }, data.length])
      // the stored standard headers (S3 system metadata) come back on HEAD and GET, and survive a copy
      const expires = new Date('2031-02-03T04:05:06Z')
      const headers = { CacheControl: 'max-age=60, public', ContentDisposition: 'attachment; filename="report 2031.txt"', ContentEncoding: 'gzip', ContentLanguage: 'fr-CA', Expires: expires }
      await s3.send(new PutObjectCommand({ Bucket: 'real-s3', Key: 'headers.txt', Body: 'h', ...headers }))
      const withHeaders = await s3.send(new HeadObjectCommand({ Bucket: 'real-s3', Key: 'headers.txt' }))
      assert.deepEqual(
        [withHeaders.CacheControl, withHeaders.ContentDisposition, withHeaders.ContentEncoding, withHeaders.ContentLanguage, withHeaders.Expires?.getTime()],
        [headers.CacheControl, headers.ContentDisposition, 'gzip', 'fr-CA', expires.getTime()],
      )
      await s3.send(new CopyObjectCommand({ Bucket: 'real-s3', Key: 'headers-copy.txt', CopySource: 'real-s3/headers.txt' }))
      const copied = await s3.send(new GetObjectCommand({ Bucket: 'real-s3', Key: 'headers-copy.txt' }))
      await collect(copied.Body as AsyncIterable<Uint8Array>)
      assert.deepEqual([copied.CacheControl, copied.ContentLanguage], [headers.CacheControl, 'fr-CA'])
      await s3.send(new CopyObjectCommand({ Bucket: 'real-s3', Key: 'headers-copy.txt', CopySource: 'real-s3/headers.txt', MetadataDirective: 'REPLACE', CacheControl: 'no-store' }))
      const replaced = await s3.send(new HeadObjectCommand({ Bucket: 'real-s3', Key: 'headers-copy.txt' }))
      assert.deepEqual([replaced.CacheControl, replaced.ContentLanguage], ['no-store', undefined], 'REPLACE replaces the stored headers too')
      await s3.send(new DeleteObjectsCommand({ Bucket: 'real-s3', Delete: { Objects: [{ Key: 'headers.txt' }, { Key: 'headers-copy.txt' }] } }))

      const checked = await s3.send(new GetObjectCommand({ Bucket: 'real-s3', Key: 'direct.bin', ChecksumMode: 'ENABLED' }))
      assert.ok(checked.ChecksumCRC32C, 'the catalog CRC32C is returned and the SDK verifies it')
      await collect(checked.Body as AsyncIterable<Uint8Array>)

      // listing: paging by V1 marker through common prefixes never repeats one
      for (const key of ['p/1', 'p/2', 'q/1', 'r', 's/t/u']) await s3.send(new PutObjectCommand({ Bucket: 'real-s3', Key: key, Body: key }))
      const seen: string[] = []
      let marker: string | undefined
      do {
        const page = await s3.send(new ListObjectsCommand({ Bucket: 'real-s3', Delimiter: '/', MaxKeys: 2, Marker: marker }))
        seen.push(...(page.Contents ?? []).map((c) => c.Key!), ...(page.CommonPrefixes ?? []).map((p) => p.Prefix!))
        marker = page.IsTruncated ? page.NextMarker : undefined
      } while (marker)
      assert.deepEqual(seen.sort(), ['dir/', 'direct.bin', 'p/', 'q/', 'r', 's/'])
      const v2: string[] = []
      let token: string | undefined
      do {
        const page = await s3.send(new ListObjectsV2Command({ Bucket: 'real-s3', MaxKeys: 3, ContinuationToken: token }))
        v2.push(...(page.Contents ?? []).map((c) => c.Key!))
        token = page.NextContinuationToken
      } while (token)
      assert.deepEqual(v2, ['dir/a b+c.bin', 'dir/streamed', 'direct.bin', 'p/1', 'p/2', 'q/1', 'r', 's/t/u'])

      // copy, delete many
      await s3.send(new CopyObjectCommand({ Bucket: 'real-s3', Key: 'copy.bin', CopySource: 'real-s3/dir/a%20b%2Bc.bin' }))
      assert.ok((await collect((await objects.getObject('real-s3', 'copy.bin')).body)).equals(data))
      const deleted = await s3.send(new DeleteObjectsCommand({ Bucket: 'real-s3', Delete: { Objects: ['p/1', 'p/2', 'q/1'].map((Key) => ({ Key })) } }))
      assert.equal(deleted.Deleted?.length, 3)

      // multipart, with a copied part
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: 'real-s3', Key: 'multi.bin', ContentDisposition: 'inline' }))
      const p1 = patternBytes(5 * MiB, 64)
      const e1 = await s3.send(new UploadPartCommand({ Bucket: 'real-s3', Key: 'multi.bin', UploadId, PartNumber: 1, Body: p1 }))
      const e2 = await s3.send(new UploadPartCopyCommand({ Bucket: 'real-s3', Key: 'multi.bin', UploadId, PartNumber: 2, CopySource: 'real-s3/direct.bin', CopySourceRange: 'bytes=0-99999' }))
      await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: 'real-s3',
          Key: 'multi.bin',
          UploadId,
          MultipartUpload: { Parts: [{ PartNumber: 1, ETag: e1.ETag }, { PartNumber: 2, ETag: e2.CopyPartResult!.ETag }] },
        }),
      )
      const multi = await objects.headObject('real-s3', 'multi.bin')
      assert.equal(multi.partsCount, 2)
      assert.match(multi.etag, /-2"$/)
      assert.deepEqual(multi.httpHeaders, { 'content-disposition': 'inline' }, 'headers given at CreateMultipartUpload are the object\'s')
      assert.ok((await collect((await objects.getObject('real-s3', 'multi.bin')).body)).equals(Buffer.concat([p1, direct.subarray(0, 100_000)])))

      // a wrong digest stores nothing; another tenant is refused
      await assert.rejects(s3.send(new PutObjectCommand({ Bucket: 'real-s3', Key: 'bad', Body: 'abc', ContentMD5: createHash('md5').update('abd').digest('base64') })), { name: 'BadDigest' })
      await assert.rejects(objects.headObject('real-s3', 'bad'), { code: 'NoSuchKey' })
      await assert.rejects(h.client(dave).send(new GetObjectCommand({ Bucket: 'real-s3', Key: 'r' })), { name: 'AccessDenied' })
      await assert.rejects(h.client({ ...carol, secretAccessKey: 'wrong' }).send(new GetObjectCommand({ Bucket: 'real-s3', Key: 'r' })), { name: 'SignatureDoesNotMatch' })
    } finally {
      await h.close()
    }
  })
})

// Bad input gets a typed error and writes nothing: every table's row count is the
// same after the refused call as before it.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Catalog } from '../../src/catalog/catalog.ts'
import { bucketNameProblem } from '../../src/catalog/keys.ts'
import { isBlobfsError, type ErrorCode } from '../../src/errors.ts'
import { bucketName, countRows, inlineObject, MiB, stripedObject } from './fixtures.ts'
import { forEachBackend } from './harness.ts'

const tables = [
  'storage_buckets',
  'bucket_objects',
  'object_parts',
  'object_chunks_allocation',
  'multipart_uploads',
  'multipart_parts',
  'repair_tasks',
  'chunk_deletions',
]

async function snapshot(catalog: Catalog): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const table of tables) out[table] = await countRows(catalog, table)
  return out
}

async function refusedWithoutWrites(catalog: Catalog, code: ErrorCode, call: () => Promise<unknown>): Promise<void> {
  const before = await snapshot(catalog)
  await assert.rejects(call(), (error) => isBlobfsError(error, code), `expected ${code}`)
  assert.deepEqual(await snapshot(catalog), before, 'nothing was written')
}

const invalidBucketNames = [
  'ab',
  'a'.repeat(64),
  'Upper',
  'under_score',
  '-starts-with-hyphen',
  'ends-with-hyphen-',
  '.dot-start',
  'two..dots',
  '192.168.5.4',
  'xn--punycode',
  'sthree-bucket',
  'amzn-s3-demo-bucket',
  'name-s3alias',
  'name--ol-s3',
  'name.mrap',
  'name--x-s3',
  'name--table-s3',
  'spa ce',
  'ümlaut',
]
const validBucketNames = ['abc', 'a'.repeat(63), 'my.bucket-1', '1-2-3', 'xn-fine', '192.168.5.4a']

forEachBackend((backend) => {
  test('S3 bucket naming rules: invalid names are InvalidBucketName, valid ones are accepted', async () => {
    const catalog = await backend.sharedCatalog()
    for (const name of invalidBucketNames) {
      assert.ok(bucketNameProblem(name) !== null, name)
      await refusedWithoutWrites(catalog, 'InvalidBucketName', () => catalog.buckets.create({ name, owner: 'o' }))
    }
    for (const name of validBucketNames) {
      assert.equal(bucketNameProblem(name), null, name)
      await catalog.buckets.create({ name, owner: 'o' })
      await catalog.buckets.delete(name)
    }
  })

  test('keys over 1024 bytes of UTF-8 are KeyTooLong everywhere; exactly 1024 bytes is fine', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'o' })
    const longAscii = 'k'.repeat(1025)
    const longUtf8 = '€'.repeat(342) // 342 characters, 1026 bytes
    for (const key of [longAscii, longUtf8]) {
      await refusedWithoutWrites(catalog, 'KeyTooLong', () => catalog.objects.commit(inlineObject(bucket, key, Buffer.from('x'))))
      await refusedWithoutWrites(catalog, 'KeyTooLong', () => catalog.objects.lookup(bucket, key))
      await refusedWithoutWrites(catalog, 'KeyTooLong', () => catalog.objects.delete(bucket, key))
      await refusedWithoutWrites(catalog, 'KeyTooLong', () => catalog.objects.rename(bucket, 'a', key))
    }
    const exact = 'é'.repeat(512)
    await catalog.objects.commit(inlineObject(bucket, exact, Buffer.from('x')))
    assert.equal((await catalog.objects.get(bucket, exact))!.key, exact)
  })

  test('keys that are not valid Unicode are refused', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'o' })
    for (const key of ['\uD800', 'a\uDC00b', '']) {
      await refusedWithoutWrites(catalog, 'InvalidArgument', () => catalog.objects.commit(inlineObject(bucket, key, Buffer.from('x'))))
    }
  })

  test('unknown buckets are NoSuchBucket for every operation', async () => {
    const catalog = await backend.sharedCatalog()
    const missing = bucketName('missing')
    await refusedWithoutWrites(catalog, 'NoSuchBucket', () => catalog.objects.commit(stripedObject(missing, 'k', MiB)))
    await refusedWithoutWrites(catalog, 'NoSuchBucket', () => catalog.objects.lookup(missing, 'k'))
    await refusedWithoutWrites(catalog, 'NoSuchBucket', () => catalog.objects.delete(missing, 'k'))
    await refusedWithoutWrites(catalog, 'NoSuchBucket', () => catalog.objects.list(missing))
    await refusedWithoutWrites(catalog, 'NoSuchBucket', () => catalog.objects.rename(missing, 'a', 'b'))
    await refusedWithoutWrites(catalog, 'NoSuchBucket', () => catalog.objects.renamePrefix(missing, 'a/', 'b/'))
    await refusedWithoutWrites(catalog, 'NoSuchBucket', () => catalog.objects.setAttributes(missing, 'k', { userMetadata: {} }))
    await refusedWithoutWrites(catalog, 'NoSuchBucket', () => catalog.buckets.delete(missing))
    await refusedWithoutWrites(catalog, 'NoSuchBucket', () => catalog.buckets.setPolicy(missing, 'PUBLIC_READ'))
    assert.equal(await catalog.buckets.get(missing), null)
  })

  test('a malformed stripe description is InvalidArgument and writes nothing', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    await catalog.buckets.create({ name: bucket, owner: 'o' })
    const good = stripedObject(bucket, 'k', 20 * MiB)
    const variants: ((input: ReturnType<typeof stripedObject>) => void)[] = [
      (i) => (i.sizeBytes += 1), // parts do not add up
      (i) => partsOf(i)[0]!.stripes.pop(), // a stripe missing
      (i) => (partsOf(i)[0]!.stripes[0]!.chunks as unknown[]).splice(0, 5), // fewer than k chunks
      (i) => ((partsOf(i)[0]!.stripes[1]!.chunks[0] as { chunkId: string }).chunkId = partsOf(i)[0]!.stripes[0]!.chunks[0]!.chunkId), // chunk id twice
      (i) => ((partsOf(i)[0]!.stripes[0]!.chunks[0] as { lengthBytes: number }).lengthBytes += 1), // wrong shard size
      (i) => ((partsOf(i)[0]!.stripes[0]!.chunks[1] as { chunkIndex: number }).chunkIndex = 0), // chunk index twice
      (i) => ((partsOf(i)[0]!.stripes[0]!.chunks[0] as { chunkIndex: number }).chunkIndex = 12), // index out of range
      (i) => (i.objectId = 'not-a-uuid'),
      (i) => ((i.content as { scheme: string }).scheme = 'RS_8'),
      (i) => (i.userMetadata = { big: 'x'.repeat(3000) }),
      (i) => (i.httpHeaders = { 'cache-control': 'no-cache\r\nset-cookie: a=b' }), // would split a response
      (i) => (i.httpHeaders = { 'Cache-Control': 'no-cache' }), // names are stored lower-case
      (i) => (i.httpHeaders = { 'content-language': 'x'.repeat(9000) }), // over httpHeadersBytesMax
      (i) => (i.httpHeaders = { expires: 5 as unknown as string }),
    ]
    for (const mutate of variants) {
      const input = structuredClone(good)
      mutate(input)
      await refusedWithoutWrites(catalog, 'InvalidArgument', () => catalog.objects.commit(input))
    }
    await catalog.objects.commit(good)
    assert.equal((await catalog.objects.get(bucket, 'k'))!.objectId, good.objectId)
  })

  test('buckets: taken names, non-empty buckets and policies', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName()
    const created = await catalog.buckets.create({ name: bucket, owner: 'alice' })
    assert.deepEqual([created.name, created.owner, created.policy], [bucket, 'alice', 'PRIVATE'])
    await refusedWithoutWrites(catalog, 'BucketAlreadyExists', () => catalog.buckets.create({ name: bucket, owner: 'bob' }))
    await catalog.objects.commit(inlineObject(bucket, 'x'))
    await refusedWithoutWrites(catalog, 'BucketNotEmpty', () => catalog.buckets.delete(bucket))
    assert.equal((await catalog.buckets.setPolicy(bucket, 'PUBLIC_READ')).policy, 'PUBLIC_READ')
    await refusedWithoutWrites(catalog, 'InvalidArgument', () => catalog.buckets.setPolicy(bucket, 'PUBLIC' as never))
    const other = bucketName()
    await catalog.buckets.create({ name: other, owner: 'carol', policy: 'PUBLIC_READ' })
    const carols = await catalog.buckets.list({ owner: 'carol' })
    assert.deepEqual(carols.map((b) => [b.name, b.policy]), [[other, 'PUBLIC_READ']])
    assert.ok((await catalog.buckets.list()).some((b) => b.name === bucket))
    await catalog.objects.delete(bucket, 'x')
    await catalog.buckets.delete(bucket)
    assert.equal(await catalog.buckets.get(bucket), null)
  })
})

function partsOf(input: ReturnType<typeof stripedObject>) {
  assert.ok('parts' in input.content)
  return input.content.parts as unknown as { stripes: { chunks: { chunkId: string; chunkIndex: number; lengthBytes: number }[] }[] }[]
}

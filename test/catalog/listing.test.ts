// Listings against a reference model in memory: random keys with '/' at random
// depths (and multi-byte characters, whose UTF-8 order differs from JavaScript's
// UTF-16 order), random prefixes, delimiters and page sizes. Every page sequence —
// followed by continuation token and by StartAfter/NextMarker — must equal the
// model's.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import type { Catalog } from '../../src/catalog/catalog.ts'
import type { ListOptions } from '../../src/catalog/types.ts'
import { isBlobfsError } from '../../src/errors.ts'
import { bucketName, inlineObject } from './fixtures.ts'
import { forEachBackend } from './harness.ts'

interface Page {
  objects: string[]
  commonPrefixes: string[]
  isTruncated: boolean
}

const utf8 = (s: string) => Buffer.from(s, 'utf8')

/** S3 semantics, written for clarity rather than speed. */
function modelPages(keys: string[], options: { prefix: string; delimiter: string; startAfter: string; maxKeys: number }): Page[] {
  const prefix = utf8(options.prefix)
  const delimiter = options.delimiter === '' ? null : utf8(options.delimiter)
  const entries: { bytes: Buffer; isPrefix: boolean }[] = []
  const sorted = [...new Set(keys)].map(utf8).sort(Buffer.compare)
  for (const key of sorted) {
    if (!key.subarray(0, prefix.length).equals(prefix)) continue
    const at = delimiter === null ? -1 : key.indexOf(delimiter, prefix.length)
    const entry = at < 0 ? { bytes: key, isPrefix: false } : { bytes: key.subarray(0, at + delimiter!.length), isPrefix: true }
    const last = entries[entries.length - 1]
    if (last && last.bytes.equals(entry.bytes)) continue
    entries.push(entry)
  }
  const after = utf8(options.startAfter)
  const visible = options.startAfter === '' ? entries : entries.filter((e) => Buffer.compare(e.bytes, after) > 0)
  const pages: Page[] = []
  for (let i = 0; i < visible.length || pages.length === 0; i += options.maxKeys) {
    const slice = visible.slice(i, i + options.maxKeys)
    pages.push({
      objects: slice.filter((e) => !e.isPrefix).map((e) => e.bytes.toString('utf8')),
      commonPrefixes: slice.filter((e) => e.isPrefix).map((e) => e.bytes.toString('utf8')),
      isTruncated: i + options.maxKeys < visible.length,
    })
    if (options.maxKeys === 0) break
  }
  return pages
}

async function catalogPages(catalog: Catalog, bucket: string, options: ListOptions, follow: 'token' | 'marker'): Promise<Page[]> {
  const pages: Page[] = []
  let next: ListOptions = { ...options }
  for (let guard = 0; guard < 10_000; guard++) {
    const page = await catalog.objects.list(bucket, next)
    pages.push({ objects: page.objects.map((o) => o.key), commonPrefixes: page.commonPrefixes, isTruncated: page.isTruncated })
    if (!page.isTruncated) return pages
    assert.ok(page.nextContinuationToken !== null && page.nextMarker !== null)
    next = follow === 'token' ? { ...options, continuationToken: page.nextContinuationToken } : { ...options, startAfter: page.nextMarker }
  }
  throw new Error('listing never ended')
}

// Characters chosen around the interesting byte values: '/' (0x2F) and its
// neighbours '.' and '0', ASCII letters, 2-, 3- and 4-byte UTF-8 (U+FFFD sorts
// above U+1F600 in UTF-16 but below it in UTF-8).
const char = fc.constantFrom('a', 'b', 'z', '.', '0', '-', 'é', '日', '\uFFFD', '😀', ' ')
const segment = fc.array(char, { minLength: 1, maxLength: 3 }).map((cs) => cs.join(''))
const key = fc
  .tuple(fc.array(segment, { minLength: 1, maxLength: 4 }), fc.boolean())
  .map(([segments, trailing]) => segments.join('/') + (trailing ? '/' : ''))
const keySet = fc.uniqueArray(key, { minLength: 0, maxLength: 40 })

async function loadBucket(catalog: Catalog, keys: string[]): Promise<string> {
  const bucket = bucketName('l')
  await catalog.buckets.create({ name: bucket, owner: 'lister' })
  for (let i = 0; i < keys.length; i += 8) {
    await Promise.all(keys.slice(i, i + 8).map((k) => catalog.objects.commit(inlineObject(bucket, k))))
  }
  return bucket
}

forEachBackend((backend) => {
  test('listing pages equal the model for random keys, prefixes, delimiters and page sizes', async () => {
    const catalog = await backend.sharedCatalog()
    await fc.assert(
      fc.asyncProperty(
        keySet,
        fc.array(
          fc.record({
            prefixFrom: fc.nat(),
            prefixCut: fc.nat(),
            usePrefix: fc.boolean(),
            delimiter: fc.constantFrom('', '/', '/', 'a', '//', 'é'),
            maxKeys: fc.integer({ min: 1, max: 7 }),
            startAfterFrom: fc.option(fc.nat(), { nil: undefined }),
          }),
          { minLength: 1, maxLength: 4 },
        ),
        async (keys, queries) => {
          const bucket = await loadBucket(catalog, keys)
          for (const query of queries) {
            const source = keys.length > 0 ? keys[query.prefixFrom % keys.length]! : ''
            const chars = [...source]
            const prefix = query.usePrefix ? chars.slice(0, query.prefixCut % (chars.length + 1)).join('') : ''
            const startAfter = query.startAfterFrom === undefined || keys.length === 0 ? '' : keys[query.startAfterFrom % keys.length]!
            const options = { prefix, delimiter: query.delimiter, startAfter, maxKeys: query.maxKeys }
            const expected = modelPages(keys, options)
            assert.deepEqual(await catalogPages(catalog, bucket, options, 'token'), expected, JSON.stringify(options))
            assert.deepEqual(await catalogPages(catalog, bucket, options, 'marker'), expected, JSON.stringify(options))
          }
        },
      ),
      { numRuns: 25 },
    )
  })

  test('a common prefix is listed once however many keys it hides, and the page after it continues past them', async () => {
    const catalog = await backend.sharedCatalog()
    const keys = ['a', 'b/1', 'b/2', 'b/3/x', 'b0', 'c/', 'c/d', 'd']
    for (let i = 0; i < 300; i++) keys.push(`b/deep/${String(i).padStart(4, '0')}`)
    const bucket = await loadBucket(catalog, keys)
    const first = await catalog.objects.list(bucket, { delimiter: '/', maxKeys: 2 })
    assert.deepEqual(first.objects.map((o) => o.key), ['a'])
    assert.deepEqual(first.commonPrefixes, ['b/'])
    assert.equal(first.isTruncated, true)
    const second = await catalog.objects.list(bucket, { delimiter: '/', maxKeys: 2, continuationToken: first.nextContinuationToken! })
    assert.deepEqual(second.objects.map((o) => o.key), ['b0'])
    assert.deepEqual(second.commonPrefixes, ['c/'])
    const inside = await catalog.objects.list(bucket, { prefix: 'b/', delimiter: '/' })
    assert.deepEqual(inside.objects.map((o) => o.key), ['b/1', 'b/2'])
    assert.deepEqual(inside.commonPrefixes, ['b/3/', 'b/deep/'])
    const marker = await catalog.objects.list(bucket, { prefix: 'c/', delimiter: '/' })
    assert.deepEqual(marker.objects.map((o) => o.key), ['c/', 'c/d'], 'a key equal to the prefix is listed as a key')
    const none = await catalog.objects.list(bucket, { maxKeys: 0 })
    assert.deepEqual([none.objects, none.commonPrefixes, none.isTruncated], [[], [], false])
    const listed = await catalog.objects.list(bucket, { prefix: 'b/deep/', maxKeys: 1000 })
    assert.equal(listed.objects.length, 300)
    assert.equal(listed.objects[0]!.sizeBytes, Buffer.byteLength('b/deep/0000'))
  })

  // The delimited walk reads the index in batches: 2 keys after a common prefix, 16
  // while a run of plain keys goes on (src/limits.ts). Runs of plain keys of lengths
  // around those sizes, between common prefixes of 1 and 3 keys and next to each
  // other, cut by page sizes around them: every page sequence must equal the model's.
  test('runs of plain keys across batch boundaries, between common prefixes, on every page size', async () => {
    const catalog = await backend.sharedCatalog()
    const keys: string[] = ['q', 'r', 's/x', 's0'] // around the prefix: never listed under r/
    const pad = (i: number) => String(i).padStart(2, '0')
    let section = 0
    for (const run of [1, 2, 3, 15, 16, 17, 33]) {
      for (const children of [1, 3]) {
        const at = `r/${pad(section++)}`
        for (let i = 0; i < run; i++) keys.push(`${at}k${pad(i)}`)
        for (let i = 0; i < children; i++) keys.push(`${at}m/${pad(i)}`)
      }
    }
    for (let i = 0; i < 5; i++) keys.push(`r/${pad(section)}d${i}/x`) // common prefixes next to each other
    for (let i = 0; i < 20; i++) keys.push(`r/${pad(section)}t${pad(i)}`) // a run that ends the prefix's keys
    const bucket = await loadBucket(catalog, keys)
    const underR = keys.filter((k) => k.startsWith('r/')).sort()
    for (const maxKeys of [1, 2, 3, 5, 16, 17, 1000]) {
      for (const startAfter of ['', underR[20]!, underR[70]!, 'r/', 'r/13m/']) {
        for (const delimiter of ['/', '']) {
          const options = { prefix: 'r/', delimiter, startAfter, maxKeys }
          const expected = modelPages(keys, options)
          assert.deepEqual(await catalogPages(catalog, bucket, options, 'token'), expected, JSON.stringify(options))
          if (maxKeys <= 3) continue // (the marker walk of small pages repeats the token walk's statements)
          assert.deepEqual(await catalogPages(catalog, bucket, options, 'marker'), expected, JSON.stringify(options))
        }
      }
    }
  })

  test('a listed key shows the fields of its row; a missing bucket and an empty listing are told apart', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = bucketName('l')
    await catalog.buckets.create({ name: bucket, owner: 'lister' })
    const posix = { mode: 0o120777, uid: 1001, gid: 1002, mtimeNs: 1_700_000_000_000_000_123n, ctimeNs: 1_700_000_001_000_000_456n }
    await catalog.objects.commit({ ...inlineObject(bucket, 'd/link'), posix, symlinkTarget: '../elsewhere' })
    await catalog.objects.commit({ ...inlineObject(bucket, 'd/plain', Buffer.from('twelve bytes')), userMetadata: { a: 'b' } })
    await catalog.objects.commit(inlineObject(bucket, 'd/sub/x'))
    for (const delimiter of ['/', undefined]) {
      const page = await catalog.objects.list(bucket, { prefix: 'd/', delimiter })
      const rows = await Promise.all(['d/link', 'd/plain'].map((k) => catalog.objects.get(bucket, k)))
      const shown = rows.map((o) => ({ key: o!.key, objectId: o!.objectId, sizeBytes: o!.sizeBytes, etag: o!.etag, lastModified: o!.lastModified, posix: o!.posix, symlinkTarget: o!.symlinkTarget }))
      assert.deepEqual(page.objects.slice(0, 2), shown)
      assert.deepEqual(page.objects[1]!.sizeBytes, 12)
      assert.deepEqual(page.commonPrefixes, delimiter ? ['d/sub/'] : [])
      await assert.rejects(catalog.objects.list(`${bucket}-gone`, { prefix: 'd/', delimiter }), (e) => isBlobfsError(e, 'NoSuchBucket'))
      const none = await catalog.objects.list(bucket, { prefix: 'nothing/', delimiter })
      assert.deepEqual([none.objects, none.commonPrefixes, none.isTruncated, none.nextContinuationToken], [[], [], false, null])
    }
    const empty = bucketName('l')
    await catalog.buckets.create({ name: empty, owner: 'lister' })
    assert.deepEqual((await catalog.objects.list(empty, { delimiter: '/' })).objects, [])
    assert.deepEqual((await catalog.objects.list(empty, {})).objects, [])
  })

  test('bad listing input is refused with a typed error', async () => {
    const catalog = await backend.sharedCatalog()
    const bucket = await loadBucket(catalog, ['x'])
    await assert.rejects(catalog.objects.list('no-such-bucket-anywhere', {}), (e) => isBlobfsError(e, 'NoSuchBucket'))
    await assert.rejects(catalog.objects.list(bucket, { continuationToken: 'not a token' }), (e) => isBlobfsError(e, 'InvalidArgument'))
    await assert.rejects(catalog.objects.list(bucket, { continuationToken: Buffer.from([9, 1, 2]).toString('base64url') }), (e) => isBlobfsError(e, 'InvalidArgument'))
    await assert.rejects(catalog.objects.list(bucket, { maxKeys: 1001 }), (e) => isBlobfsError(e, 'InvalidArgument'))
    await assert.rejects(catalog.objects.list(bucket, { prefix: '\uD800' }), (e) => isBlobfsError(e, 'InvalidArgument'))
    await assert.rejects(catalog.objects.list('Bad_Name', {}), (e) => isBlobfsError(e, 'InvalidBucketName'))
  })
})

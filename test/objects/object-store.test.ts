// The object layer end to end over a real catalog (PostgreSQL) and in-memory nodes
// with faults on demand: what a PUT makes visible, what a GET returns, and what is
// left on the nodes and in the deletion queue afterwards.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { buffer as streamToBuffer } from 'node:stream/consumers'
import { test } from 'node:test'
import type { ChunkStore } from '../../src/cluster/chunk-store.ts'
import { FaultInjectingChunkStore } from '../../src/cluster/fault-store.ts'
import { MemoryChunkStore } from '../../src/cluster/memory-store.ts'
import { BlobfsError, isBlobfsError } from '../../src/errors.ts'
import { objectStoreConfig } from '../../src/objects/config.ts'
import { msToNs, nsToMs, ObjectStore } from '../../src/objects/object-store.ts'
import { forEachBackend } from '../catalog/harness.ts'
import { bucketName, queuedDeletions } from '../catalog/fixtures.ts'

const nodeIds = Array.from({ length: 12 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`)
const stripeSize = 8 * 16 * 1024 // small stripes keep the test fast and still multi-stripe

function* pieces(data: Buffer, size = 7777): Generator<Buffer> {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size)
}

forEachBackend((backend) => {
  async function setup() {
    const catalog = await backend.sharedCatalog()
    const memory = new MemoryChunkStore(nodeIds)
    const store = new FaultInjectingChunkStore(memory, 3)
    const reported: string[] = []
    const objects = new ObjectStore({
      catalog,
      store,
      candidates: () => nodeIds.map((id, i) => ({ id, rack: `rack-${i % 4}`, freeBytes: 1e12 })),
      config: objectStoreConfig({ stripeSizeBytes: stripeSize, loadWindowBytes: 2 * stripeSize, hedgeAfterMs: 1000, getTimeoutMs: 5000 }),
      reportBadChunk: (_objectId, chunk, code) => reported.push(`${chunk.chunkId}:${code}`),
    })
    const bucket = bucketName('obj')
    await objects.createBucket(bucket, 'owner-1')
    const chunksOnNodes = () => new Set(nodeIds.flatMap((id) => memory.chunkIds(id)))
    return { catalog, memory, store, objects, bucket, reported, chunksOnNodes }
  }

  test('PUT then GET and HEAD: inline, striped, and every kind of range', async () => {
    const { objects, bucket, memory } = await setup()
    for (const size of [0, 1, 4096, 4097, stripeSize - 1, stripeSize, 3 * stripeSize + 17]) {
      const data = randomBytes(size)
      const key = `sizes/${size}`
      const putsBefore = memory.counters.puts
      const info = await objects.putObject(bucket, key, Readable.from(pieces(data)), { contentType: 'application/x-test', userMetadata: { a: 'b' } })
      assert.equal(info.sizeBytes, size)
      assert.equal(info.etag, `"${createHash('md5').update(data).digest('hex')}"`)
      assert.equal(memory.counters.puts - putsBefore, size <= 4096 ? 0 : 12 * Math.ceil(size / stripeSize))
      const head = await objects.headObject(bucket, key)
      assert.deepEqual([head.contentType, head.userMetadata, head.sizeBytes], ['application/x-test', { a: 'b' }, size])
      const whole = await objects.getObject(bucket, key)
      assert.ok((await streamToBuffer(whole.body)).equals(data), `whole object of ${size}`)
      if (size === 0) continue
      for (const [start, end] of [[0, 0], [size - 1, size - 1], [Math.floor(size / 3), Math.floor((2 * size) / 3)], [Math.min(1, size - 1), size + 1000]]) {
        const part = await objects.getObject(bucket, key, { range: { start: start!, end: end! } })
        const expected = data.subarray(start, Math.min(end!, size - 1) + 1)
        assert.ok((await streamToBuffer(part.body)).equals(expected), `range ${start}-${end} of ${size}`)
        assert.deepEqual(part.range, { start, end: Math.min(end!, size - 1) })
      }
      await assert.rejects(objects.getObject(bucket, key, { range: { start: size, end: size + 5 } }), (e) => isBlobfsError(e, 'InvalidRange'))
    }
    await assert.rejects(objects.headObject(bucket, 'nope'), (e) => isBlobfsError(e, 'NoSuchKey'))
    await assert.rejects(objects.putObject('no-such-bucket-x', 'k', Readable.from([Buffer.from('x')])), (e) => isBlobfsError(e, 'NoSuchBucket'))
    // A body declared inline is not checked ahead: the commit answers NoSuchBucket.
    await assert.rejects(objects.putObject('no-such-bucket-x', 'k', Readable.from([Buffer.from('x')]), { expectedLengthBytes: 1 }), (e) => isBlobfsError(e, 'NoSuchBucket'))
  })

  test('GET: one catalog query before the first byte, which waits for the first data chunk, not the slowest', async () => {
    const catalog = await backend.sharedCatalog()
    const memory = new MemoryChunkStore(nodeIds)
    // Chunk reads of `held` wait until released (or until their own timeout aborts them).
    let held: string | null = null
    let release!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    let servedWhileHeld = false
    const store: ChunkStore = {
      put: (node, chunkId, bytes, tree) => memory.put(node, chunkId, bytes, tree),
      head: (node, chunkId) => memory.head(node, chunkId),
      delete: (node, chunkId) => memory.delete(node, chunkId),
      inventory: (node) => memory.inventory(node),
      async get(node, chunkId, range, signal) {
        if (chunkId === held) {
          await new Promise<void>((resolve, reject) => {
            released.then(resolve, reject)
            signal?.addEventListener('abort', () => reject(new BlobfsError('Timeout', 'held chunk read aborted')), { once: true })
          })
          servedWhileHeld = true
        }
        return memory.get(node, chunkId, range)
      },
    }
    const calls: string[] = []
    const counted = new Proxy(catalog.objects, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver)
        if (typeof value !== 'function') return value
        return (...args: unknown[]) => {
          calls.push(String(name))
          return value.apply(target, args)
        }
      },
    })
    const objects = new ObjectStore({
      catalog: Object.create(catalog, { objects: { value: counted } }) as typeof catalog,
      store,
      candidates: () => nodeIds.map((id, i) => ({ id, rack: `rack-${i % 4}`, freeBytes: 1e12 })),
      // No hedge: the held chunk is read directly. Its timeout only guards against a hang.
      config: objectStoreConfig({ stripeSizeBytes: stripeSize, hedgeAfterMs: 600_000, hedgeAdaptive: false, getTimeoutMs: 20_000 }),
    })
    const bucket = bucketName('ttfb')
    await objects.createBucket(bucket, 'owner-1')
    const data = randomBytes(stripeSize)
    await objects.putObject(bucket, 'one-stripe', Readable.from([data]))
    const located = await catalog.objects.lookup(bucket, 'one-stripe', { offsetBytes: 0, lengthBytes: stripeSize })
    held = located!.stripes[0]!.chunks.find((c) => c.chunkIndex === 7)!.chunkId // the last data chunk

    calls.length = 0
    const read = await objects.getObject(bucket, 'one-stripe')
    const pieces = read.body[Symbol.asyncIterator]()
    const first = await pieces.next()
    assert.deepEqual(calls, ['lookup'], 'one catalog query for the version, its size and its first stripes')
    assert.equal(servedWhileHeld, false, 'the first bytes came while the last data chunk was still being read')
    assert.ok(!first.done && (first.value as Buffer).equals(data.subarray(0, (first.value as Buffer).length)))
    release()
    const rest: Buffer[] = [first.value as Buffer]
    for (let next = await pieces.next(); !next.done; next = await pieces.next()) rest.push(next.value as Buffer)
    assert.ok(Buffer.concat(rest).equals(data))
    assert.equal(servedWhileHeld, true, 'the held chunk was read directly once released, not rebuilt')
    assert.deepEqual(calls, ['lookup'])
  })

  test('a GET finds the version, its size and its first stripes in one catalog statement; malformed ranges are InvalidRange', async () => {
    const { catalog, store, objects, bucket } = await setup()
    const calls = { get: 0, lookup: 0, stripes: 0 }
    const countedObjects = new Proxy(catalog.objects, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown
        if (typeof value !== 'function') return value
        return (...args: unknown[]) => {
          if (prop === 'get' || prop === 'lookup' || prop === 'stripes') calls[prop]++
          return (value as (...a: unknown[]) => unknown).apply(target, args)
        }
      },
    })
    const counted = new Proxy(catalog, {
      get(target, prop) {
        if (prop === 'objects') return countedObjects
        const value = Reflect.get(target, prop, target) as unknown
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
      },
    })
    const reader = new ObjectStore({
      catalog: counted,
      store,
      candidates: () => nodeIds.map((id, i) => ({ id, rack: `rack-${i % 4}`, freeBytes: 1e12 })),
      config: objectStoreConfig({ stripeSizeBytes: stripeSize, loadWindowBytes: 2 * stripeSize, hedgeAfterMs: 1000, getTimeoutMs: 5000 }),
    })
    const data = randomBytes(3 * stripeSize + 5)
    await objects.putObject(bucket, 'counted', Readable.from(pieces(data)))
    const reads: [string, { start: number; end: number } | undefined, Buffer, number][] = [
      ['whole object (3 stripes + 5 bytes, window of 2 stripes)', undefined, data, 1],
      ['first stripe only', { start: 0, end: stripeSize - 1 }, data.subarray(0, stripeSize), 0],
      ['a range past the end (its window of 2 stripes reaches the last one)', { start: stripeSize + 3, end: 10 * stripeSize }, data.subarray(stripeSize + 3), 0],
      ['the last 5 bytes', { start: 3 * stripeSize, end: 3 * stripeSize + 4 }, data.subarray(3 * stripeSize), 0],
    ]
    for (const [what, range, expected, stripeQueries] of reads) {
      Object.assign(calls, { get: 0, lookup: 0, stripes: 0 })
      const read = await reader.getObject(bucket, 'counted', range ? { range } : {})
      assert.ok((await streamToBuffer(read.body)).equals(expected), what)
      assert.deepEqual(calls, { get: 0, lookup: 1, stripes: stripeQueries }, what)
    }
    const small = randomBytes(100)
    await objects.putObject(bucket, 'inline', Readable.from([small]))
    Object.assign(calls, { get: 0, lookup: 0, stripes: 0 })
    assert.ok((await streamToBuffer((await reader.getObject(bucket, 'inline', { range: { start: 10, end: 19 } })).body)).equals(small.subarray(10, 20)))
    assert.deepEqual(calls, { get: 0, lookup: 1, stripes: 0 })

    for (const range of [{ start: 1.5, end: 10 }, { start: 0, end: Number.NaN }, { start: -1, end: 10 }, { start: 10, end: 9 }, { start: data.length, end: data.length }]) {
      await assert.rejects(reader.getObject(bucket, 'counted', { range }), (e) => isBlobfsError(e, 'InvalidRange'), JSON.stringify(range))
    }
    await assert.rejects(reader.getObject(bucket, 'absent', { range: { start: 5, end: 1 } }), (e) => isBlobfsError(e, 'NoSuchKey'))
    await assert.rejects(reader.getObject('no-such-bucket-y', 'k'), (e) => isBlobfsError(e, 'NoSuchBucket'))
  })

  test('any 4 nodes down: every object reads back; a fifth: a clear error, never wrong bytes', async () => {
    const { objects, bucket, store, reported, memory, catalog } = await setup()
    const data = randomBytes(4 * stripeSize + 999)
    await objects.putObject(bucket, 'degraded', Readable.from(pieces(data)))
    for (const id of nodeIds.slice(0, 4)) store.setNodeFaults(id, { down: true })
    assert.ok((await streamToBuffer((await objects.getObject(bucket, 'degraded')).body)).equals(data))
    const range = await objects.getObject(bucket, 'degraded', { range: { start: 1000, end: 3 * stripeSize } })
    assert.ok((await streamToBuffer(range.body)).equals(data.subarray(1000, 3 * stripeSize + 1)))
    store.setNodeFaults(nodeIds[4]!, { down: true })
    const failing = await objects.getObject(bucket, 'degraded')
    await assert.rejects(streamToBuffer(failing.body), (e) => isBlobfsError(e, 'TooManyErasures'))
    store.clearNodeFaults()

    // rot one chunk on disk: reads stay right, and the chunk is reported for repair
    const located = await catalog.objects.lookup(bucket, 'degraded', { offsetBytes: 0, lengthBytes: 1 })
    const victim = located!.stripes[0]!.chunks.find((c) => c.chunkIndex === 0)!
    memory.rawBytes(victim.nodeId, victim.chunkId)![10] ^= 0xff
    assert.ok((await streamToBuffer((await objects.getObject(bucket, 'degraded')).body)).equals(data))
    assert.deepEqual(reported, [`${victim.chunkId}:ChunkCorrupt`])
  })

  test('8 concurrent PUTs of one key: one version visible, every other version queued for deletion', async () => {
    const { objects, bucket, catalog, chunksOnNodes } = await setup()
    const bodies = Array.from({ length: 8 }, () => randomBytes(2 * stripeSize))
    await Promise.all(bodies.map((body) => objects.putObject(bucket, 'contended', Readable.from(pieces(body)))))
    const visible = await streamToBuffer((await objects.getObject(bucket, 'contended')).body)
    assert.equal(bodies.filter((b) => b.equals(visible)).length, 1)
    const queued = await queuedDeletions(catalog)
    const onNodes = chunksOnNodes()
    const live = [...onNodes].filter((id) => !queued.has(id))
    assert.equal(live.length, 2 * 12, 'only the visible version is unqueued')
    assert.equal([...onNodes].filter((id) => queued.has(id)).length, 7 * 2 * 12, 'all 7 replaced versions are queued')
  })

  test('the write rule: 9 healthy nodes store k+1 chunks per stripe and queue repairs; 8 fail cleanly with nothing visible', async () => {
    const { catalog, memory, bucket, chunksOnNodes } = await setup()
    const objectsOn = (nodeCount: number) =>
      new ObjectStore({
        catalog,
        store: memory,
        candidates: () => nodeIds.slice(0, nodeCount).map((id, i) => ({ id, rack: `rack-${i % 3}`, freeBytes: 1e12 })),
        config: objectStoreConfig({ stripeSizeBytes: stripeSize }),
      })
    const data = randomBytes(2 * stripeSize + 5) // 3 stripes
    const repairsBefore = (await catalog.repairs.stats()).ready
    const chunksBefore = chunksOnNodes().size
    await objectsOn(9).putObject(bucket, 'nine', Readable.from(pieces(data)))
    assert.equal(chunksOnNodes().size - chunksBefore, 3 * 9, 'k+1 = 9 chunks of each stripe are stored')
    assert.equal((await catalog.repairs.stats()).ready - repairsBefore, 3, 'one repair task per degraded stripe, in the commit')
    assert.ok((await streamToBuffer((await objectsOn(9).getObject(bucket, 'nine')).body)).equals(data))

    const chunksBeforeFailure = chunksOnNodes().size
    await assert.rejects(objectsOn(8).putObject(bucket, 'eight', Readable.from(pieces(data))), (e) => isBlobfsError(e, 'NotEnoughNodes'))
    await assert.rejects(objectsOn(8).headObject(bucket, 'eight'), (e) => isBlobfsError(e, 'NoSuchKey'))
    assert.equal(chunksOnNodes().size, chunksBeforeFailure, 'a refused write leaves no chunk behind')
    assert.equal((await catalog.repairs.stats()).ready - repairsBefore, 3, 'and queues nothing')
    // Tiny objects live in the catalog: they need no node at all.
    await objectsOn(0).putObject(bucket, 'tiny', Readable.from([Buffer.from('still works')]))
  })

  test('a writer that dies mid-upload leaves no visible object and no chunk behind', async () => {
    const { objects, bucket, chunksOnNodes } = await setup()
    const before = chunksOnNodes().size
    async function* dying() {
      yield randomBytes(stripeSize)
      yield randomBytes(stripeSize)
      throw new Error('connection reset')
    }
    await assert.rejects(objects.putObject(bucket, 'half', dying()), (e) => isBlobfsError(e, 'IncompleteBody'))
    await assert.rejects(objects.headObject(bucket, 'half'), (e) => isBlobfsError(e, 'NoSuchKey'))
    assert.equal(chunksOnNodes().size, before)
  })

  test('rename of a key and of a prefix moves no bytes; copy makes an independent object', async () => {
    const { objects, bucket, memory } = await setup()
    const data = randomBytes(2 * stripeSize)
    await objects.putObject(bucket, 'dir/a', Readable.from(pieces(data)))
    await objects.putObject(bucket, 'dir/sub/b', Readable.from([Buffer.from('bee')]))
    const puts = memory.counters.puts
    await objects.renameObject(bucket, 'dir/a', 'dir/a2')
    assert.equal(await objects.renamePrefix(bucket, 'dir/', 'moved/'), 2)
    assert.equal(memory.counters.puts, puts, 'no chunk written by renames')
    assert.ok((await streamToBuffer((await objects.getObject(bucket, 'moved/a2')).body)).equals(data))
    const listing = await objects.listObjects(bucket, { prefix: 'moved/', delimiter: '/' })
    assert.deepEqual(listing.objects.map((o) => o.key), ['moved/a2'])
    assert.deepEqual(listing.commonPrefixes, ['moved/sub/'])
    await objects.copyObject({ bucket, key: 'moved/a2' }, { bucket, key: 'copy' })
    await objects.deleteObject(bucket, 'moved/a2')
    assert.ok((await streamToBuffer((await objects.getObject(bucket, 'copy')).body)).equals(data))
  })

  test('POSIX attributes and symlink targets are kept and updated in the catalog only', async () => {
    const { objects, bucket, memory } = await setup()
    const posix = { mode: 0o100640, uid: 1000, gid: 1000, mtimeMs: 1_700_000_000_123, ctimeMs: 1_700_000_000_456 }
    await objects.putObject(bucket, 'link', Readable.from([]), { posix: { ...posix, mode: 0o120777 }, symlinkTarget: '../target' })
    const info = await objects.putObject(bucket, 'file', Readable.from([Buffer.from('x')]), { posix })
    assert.deepEqual(info.posix, posix)
    assert.equal((await objects.headObject(bucket, 'link')).symlinkTarget, '../target')
    const puts = memory.counters.puts
    const changed = await objects.updateAttributes(bucket, 'file', { ...posix, mode: 0o100600 })
    assert.equal(changed.posix!.mode, 0o100600)
    assert.equal(memory.counters.puts, puts)
  })

  test('file times round-trip exactly: whole milliseconds come back whole, fractions to the nanosecond', () => {
    for (let i = 0; i < 10_000; i++) {
      const ms = 1_600_000_000_000 + Math.floor(Math.random() * 200_000_000_000)
      assert.equal(nsToMs(msToNs(ms)), ms)
      assert.equal(msToNs(ms), BigInt(ms) * 1_000_000n)
    }
    assert.equal(nsToMs(1_733_500_000_114_000_000n), 1_733_500_000_114)
    assert.equal(msToNs(1_733_500_000_114.5), 1_733_500_000_114_500_000n)
    assert.equal(nsToMs(-1_500_000n), -1.5)
    assert.equal(msToNs(-1.5), -1_500_000n)
    const fraction = nsToMs(1_733_500_000_114_123_456n)
    assert.ok(Math.abs(Number(msToNs(fraction) - 1_733_500_000_114_123_456n)) <= 250, 'within the spacing of doubles at this magnitude')
  })

  test('stored standard HTTP headers are kept with PUT, copy and multipart, and replaced with the metadata', async () => {
    const { objects, bucket } = await setup()
    const httpHeaders = { 'cache-control': 'max-age=5', 'content-encoding': 'br', expires: 'Wed, 01 Jan 2031 00:00:00 GMT' }
    const put = await objects.putObject(bucket, 'h/inline', Readable.from([Buffer.from('tiny')]), { httpHeaders })
    assert.deepEqual(put.httpHeaders, httpHeaders)
    await objects.putObject(bucket, 'h/striped', Readable.from([randomBytes(3 * stripeSize + 1)]), { httpHeaders })
    assert.deepEqual((await objects.headObject(bucket, 'h/striped')).httpHeaders, httpHeaders)
    assert.deepEqual((await objects.headObject(bucket, 'h/inline')).httpHeaders, httpHeaders) // (listings show no headers: ListedObjectInfo)
    await objects.copyObject({ bucket, key: 'h/striped' }, { bucket, key: 'h/copy' })
    assert.deepEqual((await objects.headObject(bucket, 'h/copy')).httpHeaders, httpHeaders)
    await objects.copyObject({ bucket, key: 'h/striped' }, { bucket, key: 'h/copy' }, { replaceMetadata: { httpHeaders: { 'content-language': 'nl' } } })
    assert.deepEqual((await objects.headObject(bucket, 'h/copy')).httpHeaders, { 'content-language': 'nl' })
    assert.deepEqual((await objects.putObject(bucket, 'h/plain', Readable.from([Buffer.from('x')]))).httpHeaders, {})
    const upload = await objects.createMultipartUpload(bucket, 'h/multi', { httpHeaders: { 'content-disposition': 'inline' } })
    const part = await objects.uploadPart(bucket, 'h/multi', upload.uploadId, 1, Readable.from([Buffer.from('part')]))
    const done = await objects.completeMultipartUpload(bucket, 'h/multi', upload.uploadId, [{ partNumber: 1, etag: part.etag }])
    assert.deepEqual(done.httpHeaders, { 'content-disposition': 'inline' })
    await assert.rejects(
      objects.putObject(bucket, 'h/bad', Readable.from([Buffer.from('x')]), { httpHeaders: { 'cache-control': 'a\nb' } }),
      (e) => isBlobfsError(e, 'InvalidArgument'),
    )
    await assert.rejects(objects.headObject(bucket, 'h/bad'), (e) => isBlobfsError(e, 'NoSuchKey'))
  })

  test('multipart: parts out of order, a re-uploaded part replaces the first, S3 etag of etags, abort frees chunks', async () => {
    const { objects, bucket, catalog, chunksOnNodes } = await setup()
    const MiB = 1024 * 1024
    const parts = [randomBytes(5 * MiB), randomBytes(5 * MiB + 3), randomBytes(1234)]
    const upload = await objects.createMultipartUpload(bucket, 'big', { contentType: 'video/x-test' })
    const etags: string[] = []
    let firstPart2Chunks: string[] = []
    for (const index of [2, 0, 1]) {
      const before = chunksOnNodes()
      const info = await objects.uploadPart(bucket, 'big', upload.uploadId, index + 1, Readable.from(pieces(parts[index]!, 65536)))
      if (index === 1) firstPart2Chunks = [...chunksOnNodes()].filter((id) => !before.has(id))
      etags[index] = info.etag
      assert.equal(info.sizeBytes, parts[index]!.length)
    }
    assert.equal(firstPart2Chunks.length, 12 * Math.ceil((5 * MiB + 3) / stripeSize))
    // re-upload part 2 with other bytes: the first upload's chunks are queued for deletion
    parts[1] = randomBytes(5 * MiB)
    etags[1] = (await objects.uploadPart(bucket, 'big', upload.uploadId, 2, Readable.from(pieces(parts[1], 65536)))).etag
    const listed = await objects.listParts(bucket, 'big', upload.uploadId)
    assert.deepEqual(listed.parts.map((p) => [p.partNumber, p.etag]), etags.map((etag, i) => [i + 1, etag]))
    await assert.rejects(
      objects.completeMultipartUpload(bucket, 'big', upload.uploadId, [{ partNumber: 2, etag: etags[1]! }, { partNumber: 1, etag: etags[0]! }]),
      (e) => isBlobfsError(e, 'InvalidPartOrder'),
    )
    const done = await objects.completeMultipartUpload(bucket, 'big', upload.uploadId, etags.map((etag, i) => ({ partNumber: i + 1, etag })))
    const md5s = Buffer.concat(parts.map((p) => createHash('md5').update(p).digest()))
    assert.equal(done.etag, `"${createHash('md5').update(md5s).digest('hex')}-3"`)
    assert.equal(done.partsCount, 3)
    const whole = Buffer.concat(parts)
    assert.ok((await streamToBuffer((await objects.getObject(bucket, 'big')).body)).equals(whole))
    const cross = await objects.getObject(bucket, 'big', { range: { start: 5 * MiB - 10, end: 10 * MiB + 10 } })
    assert.ok((await streamToBuffer(cross.body)).equals(whole.subarray(5 * MiB - 10, 10 * MiB + 11)), 'a range across parts')
    const queued = await queuedDeletions(catalog)
    assert.deepEqual(firstPart2Chunks.filter((id) => !queued.has(id)), [], 'the replaced part-2 chunks are all queued')

    // a part too small in the middle is refused at completion
    const small = await objects.createMultipartUpload(bucket, 'small')
    const a = await objects.uploadPart(bucket, 'small', small.uploadId, 1, Readable.from([Buffer.from('tiny')]))
    const b = await objects.uploadPart(bucket, 'small', small.uploadId, 2, Readable.from([Buffer.from('tail')]))
    await assert.rejects(
      objects.completeMultipartUpload(bucket, 'small', small.uploadId, [{ partNumber: 1, etag: a.etag }, { partNumber: 2, etag: b.etag }]),
      (e) => isBlobfsError(e, 'EntityTooSmall'),
    )
    // abort: every chunk of the session goes to the deletion queue, the key never appears
    const before = await queuedDeletions(catalog)
    await objects.abortMultipartUpload(bucket, 'small', small.uploadId)
    const after = await queuedDeletions(catalog)
    assert.equal(after.size - before.size, 2 * 12)
    await assert.rejects(objects.headObject(bucket, 'small'), (e) => isBlobfsError(e, 'NoSuchKey'))
    await assert.rejects(objects.uploadPart(bucket, 'small', small.uploadId, 3, Readable.from([Buffer.from('x')])), (e) => isBlobfsError(e, 'NoSuchUpload'))
  })
})

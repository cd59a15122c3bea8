import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { buffer as streamToBuffer } from 'node:stream/consumers'
import { test } from 'node:test'
import { crc32c } from '../../src/codec/checksum.ts'
import { MemoryChunkStore } from '../../src/cluster/memory-store.ts'
import { isBlobfsError } from '../../src/errors.ts'
import { downloadRange, type LocatedStripe } from '../../src/objects/download.ts'
import { stripeCodec } from '../../src/objects/stripe-io.ts'
import { uploadBody, type UploadContext, type UploadResult } from '../../src/objects/upload.ts'

const codec = stripeCodec(8, 4)
const nodeIds = Array.from({ length: 12 }, (_, i) => `n${i}`)
const stripeSize = 8 * 8192

function context(store: MemoryChunkStore, overrides: Partial<UploadContext> = {}): UploadContext {
  return {
    store,
    codec,
    candidates: () => nodeIds.map((id, i) => ({ id, rack: `r${i % 4}`, freeBytes: 1e12 })),
    stripeSizeBytes: stripeSize,
    inlineSizeBytesMax: 4096,
    stripesInFlightMax: 2,
    putTimeoutMs: 5000,
    sizeBytesMax: 1 << 30,
    ...overrides,
  }
}

/** Splits a buffer into randomly sized pieces, as a network would deliver it. */
function* pieces(data: Buffer, seed: number): Generator<Buffer> {
  let offset = 0
  let state = seed
  while (offset < data.length) {
    state = (state * 1103515245 + 12345) & 0x7fffffff
    const size = 1 + (state % 20000)
    yield data.subarray(offset, offset + size)
    offset += size
  }
}

function located(result: UploadResult): LocatedStripe[] {
  return result.stripes.map((s) => ({ ...s, objectOffsetBytes: s.offsetBytes }))
}

async function download(store: MemoryChunkStore, result: UploadResult, start: number, endInclusive: number): Promise<Buffer> {
  const stripes = located(result)
  const source = {
    sizeBytes: result.sizeBytes,
    loadStripes: async (from: number, to: number) => stripes.filter((s) => s.objectOffsetBytes < to && s.objectOffsetBytes + s.lengthBytes > from),
  }
  return streamToBuffer(
    downloadRange({ store, codec, getTimeoutMs: 5000, hedgeAfterMs: 5000 }, source, start, endInclusive, { stripesAheadMax: 3, loadWindowBytes: stripeSize }),
  )
}

test('round trip of sizes around inline, page and stripe boundaries (SHA-256 checked)', async () => {
  const sizes = [0, 1, 4095, 4096, 4097, stripeSize - 1, stripeSize, stripeSize + 1, 3 * stripeSize + 17]
  for (const size of sizes) {
    const store = new MemoryChunkStore(nodeIds)
    const data = randomBytes(size)
    const result = await uploadBody(context(store), Readable.from(pieces(data, size)), { lengthBytes: size })
    assert.equal(result.sizeBytes, size)
    assert.deepEqual(result.md5, createHash('md5').update(data).digest())
    assert.equal(result.crc32c, crc32c(data))
    if (size <= 4096) {
      assert.deepEqual(result.inline, data, `size ${size} is inline`)
      assert.equal(store.counters.puts, 0, 'inline objects cost no node writes')
      continue
    }
    assert.equal(result.inline, null)
    assert.equal(result.stripes.length, Math.ceil(size / stripeSize))
    const back = await download(store, result, 0, size - 1)
    assert.equal(createHash('sha256').update(back).digest('hex'), createHash('sha256').update(data).digest('hex'), `size ${size}`)
  }
})

test('2,000 random ranges read back the expected bytes, across stripe and chunk boundaries', async () => {
  const store = new MemoryChunkStore(nodeIds)
  const data = randomBytes(5 * stripeSize + 12345)
  const result = await uploadBody(context(store), Readable.from(pieces(data, 7)))
  let state = 42
  const next = () => (state = (state * 1103515245 + 12345) & 0x7fffffff)
  for (let i = 0; i < 2000; i++) {
    const start = next() % data.length
    const end = Math.min(data.length - 1, start + (next() % (i % 10 === 0 ? 3 * stripeSize : 9000)))
    const got = await download(store, result, start, end)
    assert.ok(got.equals(data.subarray(start, end + 1)), `range ${start}-${end}`)
  }
})

test('Content-MD5, declared length and x-amz-checksum mismatches store nothing', async () => {
  const data = randomBytes(3 * stripeSize)
  const cases = [
    { md5: Buffer.alloc(16) },
    { lengthBytes: data.length + 1 },
    { checksum: { algorithm: 'crc32c' as const, value: 'AAAAAA==' } },
    { checksum: { algorithm: 'sha256' as const, value: createHash('sha256').update('other').digest('base64') } },
  ]
  for (const expect of cases) {
    const store = new MemoryChunkStore(nodeIds)
    await assert.rejects(uploadBody(context(store), Readable.from(pieces(data, 3)), expect), (e) => isBlobfsError(e, 'BadDigest') || isBlobfsError(e, 'IncompleteBody'))
    for (const id of nodeIds) assert.deepEqual(store.chunkIds(id), [], `no chunk left on ${id} after ${JSON.stringify(expect)}`)
  }
  // the right checksums pass and are returned
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32c(data))
  const store = new MemoryChunkStore(nodeIds)
  const ok = await uploadBody(context(store), Readable.from(pieces(data, 3)), {
    md5: createHash('md5').update(data).digest(),
    checksum: { algorithm: 'crc32c', value: crc.toString('base64') },
  })
  assert.deepEqual(ok.checksum, { algorithm: 'crc32c', value: crc.toString('base64') })
})

test('a body that fails mid-stream leaves no chunk behind', async () => {
  const store = new MemoryChunkStore(nodeIds)
  async function* broken() {
    yield randomBytes(stripeSize)
    yield randomBytes(stripeSize)
    throw new Error('client disconnected')
  }
  await assert.rejects(uploadBody(context(store), broken()), (e) => isBlobfsError(e, 'IncompleteBody'))
  for (const id of nodeIds) assert.deepEqual(store.chunkIds(id), [])
})

test('memory stays bounded: at most stripesInFlightMax stripes are being written at once', async () => {
  const memory = new MemoryChunkStore(nodeIds)
  let inFlight = 0
  let peak = 0
  const store = Object.create(memory) as MemoryChunkStore
  store.put = async (...args) => {
    inFlight++
    peak = Math.max(peak, inFlight)
    await new Promise((r) => setTimeout(r, 1))
    try {
      return await memory.put(...args)
    } finally {
      inFlight--
    }
  }
  await uploadBody(context(store, { stripesInFlightMax: 2 }), Readable.from(pieces(randomBytes(20 * stripeSize), 1)))
  assert.ok(peak <= 2 * 12, `peak ${peak} chunk writes in flight for 2 stripes of 12 chunks`)
  assert.ok(peak > 12, `stripes are pipelined (peak ${peak})`)
})

test('a stripe that finds too few reachable nodes is written again after one registry refresh', async () => {
  // The view is stale: 4 of its 12 nodes have moved (restarted elsewhere), so only 8
  // chunks land — under k+1. The refresh brings the real nodes; nothing is left behind.
  const real = [...nodeIds.slice(0, 8), 'm0', 'm1', 'm2', 'm3']
  const store = new MemoryChunkStore(real)
  let view = nodeIds
  let refreshes = 0
  const ctx = context(store, {
    candidates: () => view.map((id, i) => ({ id, rack: `r${i % 4}`, freeBytes: 1e12 })),
    refreshCandidates: async () => {
      refreshes++
      view = real
    },
  })
  const data = randomBytes(2 * stripeSize + 5)
  const result = await uploadBody(ctx, Readable.from(pieces(data, 7)), { lengthBytes: data.length })
  assert.equal(refreshes >= 1, true, 'the registry was reloaded')
  for (const stripe of result.stripes) {
    assert.equal(stripe.chunks.length, 12, 'every stripe has all its chunks after the retry')
    assert.deepEqual(stripe.missingChunkIndexes, [])
    for (const chunk of stripe.chunks) assert.ok(real.includes(chunk.nodeId))
  }
  assert.ok((await download(store, result, 0, data.length - 1)).equals(data))
  let held = 0
  for (const node of real) for await (const _ of store.inventory(node)) held++
  assert.equal(held, 12 * result.stripes.length, 'the failed first attempts left no chunk behind')

  // Without a refresh hook the stripe fails cleanly, as before.
  view = nodeIds
  await assert.rejects(
    uploadBody(context(new MemoryChunkStore(real), { candidates: ctx.candidates }), Readable.from(pieces(data, 7)), { lengthBytes: data.length }),
    (e) => isBlobfsError(e, 'NotEnoughNodes'),
  )
})

test('a PUT reuses its stripe and parity buffers: a few sets for any number of stripes, and every parity chunk stored right', async () => {
  const memory = new MemoryChunkStore(nodeIds)
  const buffersByIndex = new Map<number, Set<ArrayBufferLike>>()
  let chunkIndex = 0
  const store = Object.create(memory) as MemoryChunkStore
  store.put = async (node, chunkId, data, tree) => {
    // writeStripe puts chunk 0..11 of a stripe in order; parity is 8..11
    const index = chunkIndex++ % 12
    if (!buffersByIndex.has(index)) buffersByIndex.set(index, new Set())
    buffersByIndex.get(index)!.add(data.buffer)
    await new Promise((r) => setTimeout(r, 1))
    return memory.put(node, chunkId, data, tree)
  }
  const stripes = 12
  const data = randomBytes(stripes * stripeSize + 1000)
  const result = await uploadBody(context(store, { stripesInFlightMax: 2 }), Readable.from(pieces(data, 5)), { lengthBytes: data.length })
  assert.equal(result.stripes.length, stripes + 1)
  for (let index = 8; index < 12; index++) {
    const distinct = buffersByIndex.get(index)!.size
    // 2 in flight + 1 being filled at most, plus the short last stripe's own
    assert.ok(distinct <= 4, `parity chunk ${index}: ${distinct} buffers for ${stripes + 1} stripes`)
  }
  // Every parity chunk holds the right bytes: read each stripe with 4 data chunks gone.
  for (const stripe of result.stripes) {
    for (const chunk of stripe.chunks) if (chunk.chunkIndex < 4) await memory.delete(chunk.nodeId, chunk.chunkId)
  }
  assert.ok((await download(memory, result, 0, data.length - 1)).equals(data), 'decoded from parity')
})

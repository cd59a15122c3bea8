import assert from 'node:assert/strict'
import { open, readdir, stat, truncate } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { checksumTree, pageCount, pageCrcsToBuffer } from '../../src/codec/checksum.ts'
import { BlockStore, type BlockStoreOptions } from '../../src/node/block-store.ts'
import { encodeHeader, positionZero, recordHeaderBytes } from '../../src/node/format.ts'
import { chunkBytes, newChunk, quietLog, randomInt, rejectsWithCode, seededRandom, withTempDir } from './helpers.ts'

const KiB = 1024
const MiB = 1024 * KiB
const page = 64 * KiB

function options(dir: string, more: Partial<BlockStoreOptions> = {}): BlockStoreOptions {
  return { dir, blockSizeBytes: 4 * MiB, sync: 'fdatasync', log: quietLog, ...more }
}

async function openStore(dir: string, more: Partial<BlockStoreOptions> = {}): Promise<BlockStore> {
  return (await BlockStore.open(options(dir, more))).store
}

const roundTripSizes = [0, 1, 4095, 65536, 65537, 2 * MiB]

test('chunks of every interesting size round-trip, before and after a restart (snapshot and replay)', async () => {
  await withTempDir(async (dir) => {
    const chunks = roundTripSizes.map((size, i) => newChunk(100 + i, size))
    let store = await openStore(dir)
    try {
      for (const c of chunks) assert.equal(await store.put(c.idBytes, c.data, c.tree), 'created')
      for (const c of chunks) {
        const read = await store.read(c.idBytes)
        assert.ok(read.data.equals(c.data), `size ${c.data.length}`)
        assert.equal(read.root, c.tree.root)
        assert.deepEqual(store.head(c.idBytes)?.lengthBytes, c.data.length)
      }
      // Restart from the log alone (no snapshot), then from a snapshot.
      await store.close({ snapshot: false })
      for (const withSnapshot of [false, true]) {
        store = await openStore(dir)
        for (const c of chunks) assert.ok((await store.read(c.idBytes)).data.equals(c.data), `size ${c.data.length} after restart`)
        assert.equal(store.chunkCount, chunks.length)
        await store.close({ snapshot: withSnapshot })
      }
      const reopened = await BlockStore.open(options(dir))
      store = reopened.store
      assert.equal(reopened.recovery.snapshot, 'loaded')
      assert.equal(reopened.recovery.replayedRecords, 0)
      for (const c of chunks) assert.ok((await store.read(c.idBytes)).data.equals(c.data))
    } finally {
      await store.close()
    }
  })
})

test('ranges at every page boundary return exactly those bytes with the CRCs of the pages they touch', async () => {
  await withTempDir(async (dir) => {
    const store = await openStore(dir)
    try {
      const c = newChunk(7, 5 * page + 123)
      await store.put(c.idBytes, c.data, c.tree)
      const length = c.data.length
      const boundaries = Array.from({ length: 6 }, (_, k) => k * page).concat([length])
      const ranges: [number, number][] = []
      for (const b of boundaries) {
        for (const [from, to] of [[b - 1, b + 1], [b, b + 1], [b - 1, b], [0, b], [b, length], [b, b], [b - page, b + page]] as const) {
          const start = Math.max(0, from)
          const end = Math.min(length, to)
          if (start <= end) ranges.push([start, end])
        }
      }
      for (const [start, end] of ranges) {
        const read = await store.read(c.idBytes, { offsetBytes: start, lengthBytes: end - start })
        assert.ok(read.data.equals(c.data.subarray(start, end)), `range ${start}-${end}`)
        assert.deepEqual(pageCrcsToBuffer(read.pageCrcs), pageCrcsToBuffer(c.tree.pageCrcs.subarray(read.span.firstPage, read.span.endPage)))
      }
      await rejectsWithCode(store.read(c.idBytes, { offsetBytes: length - 1, lengthBytes: 2 }), 'InvalidRange')
    } finally {
      await store.close()
    }
  })
})

test('same id and bytes is idempotent, other bytes conflict, a bad tree stores nothing, deletes persist', async () => {
  await withTempDir(async (dir) => {
    let store = await openStore(dir)
    try {
      const c = newChunk(1, 100_000)
      assert.equal(await store.put(c.idBytes, c.data, c.tree), 'created')
      assert.equal(await store.put(c.idBytes, Buffer.from(c.data), c.tree), 'exists')
      const other = chunkBytes(2, 100_000)
      await rejectsWithCode(store.put(c.idBytes, other, checksumTree(other)), 'ChunkConflict')
      // Same tree, different bytes in the last page: caught by comparing bytes.
      const sneaky = Buffer.from(c.data)
      sneaky[99_999] = sneaky[99_999]! ^ 0xff
      await rejectsWithCode(store.put(c.idBytes, sneaky, c.tree), 'BadDigest')

      const bad = newChunk(3, 70_000)
      const wrong = { ...bad.tree, pageCrcs: Uint32Array.from(bad.tree.pageCrcs, (x, i) => (i === 1 ? x ^ 1 : x)) }
      await rejectsWithCode(store.put(bad.idBytes, bad.data, wrong), 'BadDigest')
      await rejectsWithCode(store.put(bad.idBytes, bad.data.subarray(1), bad.tree), 'BadDigest')
      assert.equal(store.head(bad.idBytes), null)
      const appended = store.stats().appendedRecords

      assert.equal(await store.delete(bad.idBytes), false) // absent: nothing written
      assert.equal(store.stats().appendedRecords, appended)
      assert.equal(await store.delete(c.idBytes), true)
      await rejectsWithCode(store.read(c.idBytes), 'ChunkNotFound')
      // After a delete the id may be written again, with other bytes.
      const again = newChunk(4, 10)
      await store.put(again.idBytes, again.data, again.tree)
      await store.delete(again.idBytes)
      await store.put(again.idBytes, other.subarray(0, 50), checksumTree(other.subarray(0, 50)))
      for (const withSnapshot of [false, true]) {
        await store.close({ snapshot: withSnapshot })
        store = await openStore(dir)
        assert.equal(store.head(c.idBytes), null)
        assert.ok((await store.read(again.idBytes)).data.equals(other.subarray(0, 50)))
      }
    } finally {
      await store.close()
    }
  })
})

test('concurrent appends share fdatasyncs (group commit) and every one is acknowledged', async () => {
  await withTempDir(async (dir) => {
    let fsyncs = 0
    let batches = 0
    const store = await openStore(dir, { observer: { fsync: () => fsyncs++, groupCommit: () => batches++ } })
    try {
      const chunks = Array.from({ length: 64 }, (_, i) => newChunk(i, 20_000))
      await Promise.all(chunks.map((c) => store.put(c.idBytes, c.data, c.tree)))
      assert.ok(fsyncs <= 3, `${fsyncs} fdatasyncs for 64 concurrent appends`)
      assert.equal(fsyncs, batches)
      for (const c of chunks) assert.ok((await store.read(c.idBytes)).data.equals(c.data))
    } finally {
      await store.close()
    }
  })
})

test('blocks fill and roll over; the log spans several pre-allocated block files', async () => {
  await withTempDir(async (dir) => {
    let store = await openStore(dir, { blockSizeBytes: 1 * MiB })
    try {
      const chunks = Array.from({ length: 12 }, (_, i) => newChunk(i, 300_000))
      for (const c of chunks) await store.put(c.idBytes, c.data, c.tree)
      const files = (await readdir(dir)).filter((f) => f.startsWith('data_block_')).sort()
      assert.ok(files.length >= 4, files.join())
      for (const f of files) assert.equal((await stat(join(dir, f))).size, 1 * MiB)
      await rejectsWithCode(store.put(newChunk(99, 2 * MiB).idBytes, chunkBytes(1, 2 * MiB), checksumTree(chunkBytes(1, 2 * MiB))), 'EntityTooLarge')
      await store.close({ snapshot: false })
      store = await openStore(dir, { blockSizeBytes: 1 * MiB })
      for (const c of chunks) assert.ok((await store.read(c.idBytes)).data.equals(c.data))
    } finally {
      await store.close()
    }
  })
})

/**
 * Writes chunks (a snapshot halfway), leaves the directory as a crash would, then
 * damages the last block file with `damage` and reopens: every chunk whose record
 * ends before the damage reads back identical, every other one is absent or
 * reported corrupt — never wrong bytes — and the store takes new writes that
 * survive a further restart.
 */
async function damageAndRecover(seed: number, damage: (path: string, ends: number[], random: () => number) => Promise<number>): Promise<void> {
  await withTempDir(async (dir) => {
    const random = seededRandom(seed)
    let store = await openStore(dir, { blockSizeBytes: 2 * MiB })
    try {
      const chunks = Array.from({ length: 16 }, (_, i) => newChunk(seed * 100 + i, randomInt(random, 0, 300_000)))
      for (const [i, c] of chunks.entries()) {
        await store.put(c.idBytes, c.data, c.tree)
        if (i === 7) await store.snapshot()
      }
      const locations = new Map(chunks.map((c) => [c.id, store.location(c.idBytes)!]))
      const lastBlock = Math.max(...[...locations.values()].map((l) => l.block))
      const lastPath = [...locations.values()].find((l) => l.block === lastBlock)!.path
      const endsInLast = [...locations.values()].filter((l) => l.block === lastBlock).map((l) => l.offsetBytes + l.recordBytes)
      await store.close({ snapshot: false })

      const damagedFrom = await damage(lastPath, endsInLast, random)
      store = await openStore(dir, { blockSizeBytes: 2 * MiB })
      for (const [i, c] of chunks.entries()) {
        const l = locations.get(c.id)!
        const intact = l.block < lastBlock || l.offsetBytes + l.recordBytes <= damagedFrom
        try {
          const read = await store.read(c.idBytes)
          assert.ok(read.data.equals(c.data), `chunk ${c.id} came back with other bytes`)
          assert.ok(intact, `chunk ${c.id} past the damage was served`)
        } catch (error) {
          assert.ok(!intact, `intact chunk ${c.id} lost: ${(error as Error).message}`)
          // Past the snapshot the damaged tail is cut off (absent); before it the
          // index still names the record, which now fails its check.
          assert.equal((error as { code: string }).code, i > 7 ? 'ChunkNotFound' : 'ChunkCorrupt')
        }
      }
      const later = Array.from({ length: 4 }, (_, i) => newChunk(seed * 100 + 50 + i, randomInt(random, 1, 200_000)))
      for (const c of later) await store.put(c.idBytes, c.data, c.tree)
      await store.close({ snapshot: false })
      store = await openStore(dir, { blockSizeBytes: 2 * MiB })
      for (const c of later) assert.ok((await store.read(c.idBytes)).data.equals(c.data), 'a write after recovery was lost')
    } finally {
      await store.close()
    }
  })
}

test('a block file truncated at random offsets loses only what lies past the cut', async () => {
  for (let seed = 1; seed <= 12; seed++) {
    await damageAndRecover(seed, async (path, ends, random) => {
      const cut = randomInt(random, 0, Math.max(...ends) + 1)
      await truncate(path, cut)
      return cut
    })
  }
})

test('random bytes after the end of the log, or at the end of the file, change nothing', async () => {
  for (let seed = 20; seed < 26; seed++) {
    await damageAndRecover(seed, async (path, ends, random) => {
      const fh = await open(path, 'r+')
      try {
        const junk = chunkBytes(seed, randomInt(random, 1, 50_000))
        const at = seed % 2 === 0 ? Math.max(...ends) : (await fh.stat()).size
        await fh.write(junk, 0, junk.length, at)
      } finally {
        await fh.close()
      }
      return Number.POSITIVE_INFINITY
    })
  }
})

test('a torn last record (header written, payload not) is cut off; earlier records stay', async () => {
  await damageAndRecover(40, async (path, ends) => {
    const sorted = [...ends].sort((a, b) => a - b)
    const lastStart = sorted.length > 1 ? sorted.at(-2)! : 0
    const fh = await open(path, 'r+')
    try {
      // Zero the payload tail of the last record but keep its header.
      const from = lastStart + 4096
      const to = sorted.at(-1)!
      if (to <= from) return Number.POSITIVE_INFINITY // a one-page record: nothing to tear
      await fh.write(Buffer.alloc(to - from), 0, to - from, from)
    } finally {
      await fh.close()
    }
    return lastStart
  })
})

test('a stale record of an earlier run lined up after newer records is not replayed (epochs)', async () => {
  await withTempDir(async (dir) => {
    const a = newChunk(1, 30_000)
    const x = newChunk(2, 100_000)
    const y = newChunk(3, 100_000) // same size as x: its record ends where x's did
    let store = await openStore(dir)
    try {
      await store.put(a.idBytes, a.data, a.tree)
      // While the filler's group commit is in flight, x and the tombstone of a queue
      // up and share the next one: both belong to the last, unsynced batch.
      const filler = newChunk(4, 1000)
      await Promise.all([store.put(filler.idBytes, filler.data, filler.tree), store.put(x.idBytes, x.data, x.tree), store.delete(a.idBytes)])
      const xAt = store.location(x.idBytes)!
      await store.close({ snapshot: false })
      // Tear x: its payload is lost, the tombstone behind it survives.
      const fh = await open(xAt.path, 'r+')
      await fh.write(Buffer.alloc(50_000), 0, 50_000, xAt.offsetBytes + 8192)
      await fh.close()

      store = await openStore(dir) // cuts at x: the tombstone after it is dropped too
      assert.ok((await store.read(a.idBytes)).data.equals(a.data))
      await rejectsWithCode(store.read(x.idBytes), 'ChunkNotFound')
      await store.put(y.idBytes, y.data, y.tree)
      assert.deepEqual(store.location(y.idBytes), xAt) // y took x's place exactly
      await store.close({ snapshot: false })

      store = await openStore(dir) // now the old tombstone lines up right after y
      assert.ok((await store.read(a.idBytes)).data.equals(a.data), 'a stale tombstone was replayed')
      assert.ok((await store.read(y.idBytes)).data.equals(y.data))
    } finally {
      await store.close()
    }
  })
})

/** Flips one byte of the chunk id in the header of the record at `offsetBytes`: its header CRC fails. */
async function damageHeader(path: string, offsetBytes: number): Promise<void> {
  const fh = await open(path, 'r+')
  try {
    const byte = Buffer.alloc(1)
    await fh.read(byte, 0, 1, offsetBytes + 10)
    byte[0] ^= 0x5a
    await fh.write(byte, 0, 1, offsetBytes + 10)
  } finally {
    await fh.close()
  }
}

test('a damaged header inside the log costs only its record: acknowledged records after it survive, and later appends do not overwrite them', async () => {
  await withTempDir(async (dir) => {
    // 1 MiB blocks of three 300 kB records: damage in a sealed tail block and in the active one.
    const more = { blockSizeBytes: 1 * MiB }
    let store = await openStore(dir, more)
    try {
      const chunks = Array.from({ length: 12 }, (_, i) => newChunk(300 + i, 300_000))
      for (const [i, c] of chunks.entries()) {
        await store.put(c.idBytes, c.data, c.tree)
        if (i === 1) await store.snapshot() // the damage lies in the tail the start-up replays
      }
      const at = (c: (typeof chunks)[number]) => store.location(c.idBytes)!
      // Two damaged records (a block's first, and the active block's middle), each followed by acknowledged ones.
      const damaged = [chunks[3]!, chunks[10]!]
      assert.ok(at(chunks[3]!).block < at(chunks[10]!).block && at(chunks[11]!).block === at(chunks[10]!).block, 'the layout this test means')
      const lastEnd = at(chunks[11]!).offsetBytes + at(chunks[11]!).recordBytes
      for (const c of damaged) await damageHeader(at(c).path, at(c).offsetBytes)
      await store.close({ snapshot: false })

      const opened = await BlockStore.open(options(dir, more))
      store = opened.store
      assert.equal(opened.recovery.skippedRecords, 2)
      for (const c of damaged) await rejectsWithCode(store.read(c.idBytes), 'ChunkNotFound')
      const intact = chunks.filter((c) => !damaged.includes(c))
      for (const c of intact) assert.ok((await store.read(c.idBytes)).data.equals(c.data), `chunk ${c.id} after a damaged header survived`)

      const later = Array.from({ length: 4 }, (_, i) => newChunk(350 + i, 100_000))
      for (const c of later) await store.put(c.idBytes, c.data, c.tree)
      const first = store.location(later[0]!.idBytes)!
      assert.ok(first.block > at(chunks[11]!).block || first.offsetBytes >= lastEnd, 'new appends go after the last record, not over it')
      await store.close({ snapshot: false })

      store = await openStore(dir, more) // replays the same damaged tail again, then the new records
      for (const c of [...intact, ...later]) assert.ok((await store.read(c.idBytes)).data.equals(c.data), `chunk ${c.id} survived a second restart`)
      for (const c of damaged) await rejectsWithCode(store.read(c.idBytes), 'ChunkNotFound')
    } finally {
      await store.close()
    }
  })
})

test('resync after a damaged header skips a header-like run of bytes inside the lost payload whose pages do not check out', async () => {
  await withTempDir(async (dir) => {
    let store = await openStore(dir)
    try {
      const before = newChunk(400, 50_000)
      await store.put(before.idBytes, before.data, before.tree)
      // x's payload holds, where the next 4 KiB boundary falls, a well-formed header of this run
      // (valid CRC, current epoch, no claim past itself) followed by bytes that are not its payload.
      const xLength = 200_000
      const payloadAt = recordHeaderBytes(pageCount(xLength, page))
      const fakeData = chunkBytes(401, 10_000)
      const fake = newChunk(401, 10_000)
      const fakeTree = checksumTree(fakeData)
      const fakeHeader = encodeHeader({
        kind: 'put',
        chunkId: fake.idBytes,
        lengthBytes: fakeData.length,
        pageCrcs: fakeTree.pageCrcs,
        root: fakeTree.root,
        epoch: store.stats().epoch,
        createdMs: Date.now(),
        synced: positionZero,
        origin: null,
      })
      const xData = chunkBytes(402, xLength)
      fakeHeader.copy(xData, 4096 - payloadAt)
      const x = { ...newChunk(402, 1), data: xData, tree: checksumTree(xData) }
      await store.put(x.idBytes, x.data, x.tree)
      const after = newChunk(403, 70_000)
      await store.put(after.idBytes, after.data, after.tree)
      const xAt = store.location(x.idBytes)!
      await store.close({ snapshot: false })
      await damageHeader(xAt.path, xAt.offsetBytes)

      const opened = await BlockStore.open(options(dir))
      store = opened.store
      assert.equal(opened.recovery.skippedRecords, 1)
      await rejectsWithCode(store.read(fake.idBytes), 'ChunkNotFound') // not taken for a record
      await rejectsWithCode(store.read(x.idBytes), 'ChunkNotFound')
      assert.ok((await store.read(before.idBytes)).data.equals(before.data))
      assert.ok((await store.read(after.idBytes)).data.equals(after.data), 'the record after the damaged one survived')
    } finally {
      await store.close()
    }
  })
})

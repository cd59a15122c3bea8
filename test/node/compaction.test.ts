// Compaction under concurrent reads, writes and deletes: nothing is lost, deleted
// chunks stay deleted, and the compacted block files are gone from the directory.
import assert from 'node:assert/strict'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { BlockStore } from '../../src/node/block-store.ts'
import { Compactor } from '../../src/node/compactor.ts'
import { newChunk, quietLog, randomInt, rejectsWithCode, seededRandom, withTempDir } from './helpers.ts'

const MiB = 1024 * 1024

async function blockFiles(dir: string): Promise<{ names: string[]; bytes: number }> {
  const names = (await readdir(dir)).filter((f) => f.startsWith('data_block_')).sort()
  let bytes = 0
  for (const name of names) bytes += (await stat(join(dir, name))).size
  return { names, bytes }
}

test('compaction under concurrent reads, writes and deletes loses nothing and reclaims the space', async () => {
  await withTempDir(async (dir) => {
    const random = seededRandom(7)
    const open = async () => (await BlockStore.open({ dir, blockSizeBytes: 1 * MiB, sync: 'fdatasync', log: quietLog })).store
    let store = await open()
    try {
      const live = new Map<string, ReturnType<typeof newChunk>>()
      const deleted: ReturnType<typeof newChunk>[] = []
      for (let i = 0; i < 80; i++) {
        const c = newChunk(i, randomInt(random, 1, 60_000))
        await store.put(c.idBytes, c.data, c.tree)
        live.set(c.id, c)
      }
      // Delete three in four: the early blocks become mostly dead.
      for (const c of [...live.values()]) {
        if (random() < 0.75) {
          await store.delete(c.idBytes)
          live.delete(c.id)
          deleted.push(c)
        }
      }
      const before = await blockFiles(dir)
      const candidates = store.compactionCandidates(0.5).map((b) => b.block)
      assert.ok(candidates.length >= 2, `only ${candidates.length} blocks to compact`)

      const compactor = new Compactor(store, { deadRatioMin: 0.5, rateBytesPerSecMax: 1024 * MiB })
      let compacting = true
      const compaction = (async () => {
        while (store.compactionCandidates(0.5).some((b) => candidates.includes(b.block)) || compactor.status().block !== null) {
          await compactor.step()
        }
        compacting = false
      })()
      // Meanwhile: readers check live chunks, a writer adds new ones, a deleter removes some.
      const readers = Array.from({ length: 3 }, async (_, r) => {
        const mine = seededRandom(100 + r)
        while (compacting) {
          const ids = [...live.keys()]
          const c = live.get(ids[randomInt(mine, 0, ids.length)]!)
          if (!c) continue
          try {
            assert.ok((await store.read(c.idBytes)).data.equals(c.data), `chunk ${c.id} read back different during compaction`)
          } catch (error) {
            if (live.has(c.id)) throw error // only a concurrent delete may make it vanish
          }
        }
      })
      const writer = (async () => {
        let i = 1000
        while (compacting) {
          const c = newChunk(i++, randomInt(random, 0, 40_000))
          await store.put(c.idBytes, c.data, c.tree)
          live.set(c.id, c)
        }
      })()
      const deleter = (async () => {
        while (compacting) {
          const ids = [...live.keys()]
          const c = live.get(ids[randomInt(random, 0, ids.length)]!)!
          live.delete(c.id)
          await store.delete(c.idBytes)
          deleted.push(c)
          await new Promise((resolve) => setImmediate(resolve))
        }
      })()
      await Promise.all([compaction, writer, deleter, ...readers])

      const after = await blockFiles(dir)
      for (const block of candidates) assert.ok(!after.names.includes(`data_block_${String(block).padStart(6, '0')}.bin`), `block ${block} file is still there`)
      assert.ok(Number(compactor.status().blocksCompacted) >= candidates.length)
      assert.equal(store.stats().blockFileBytes, after.bytes)
      // The space came back: what is left of the old block files is smaller by at
      // least the compacted blocks (more may have been compacted meanwhile).
      let oldBytesLeft = 0
      for (const name of after.names.filter((n) => before.names.includes(n))) oldBytesLeft += (await stat(join(dir, name))).size
      assert.ok(oldBytesLeft <= before.bytes - candidates.length * MiB, `${oldBytesLeft} of ${before.bytes} bytes of old blocks left`)

      for (const withSnapshot of [null, false, true]) {
        if (withSnapshot !== null) {
          await store.close({ snapshot: withSnapshot })
          store = await open()
        }
        for (const c of live.values()) assert.ok((await store.read(c.idBytes)).data.equals(c.data), `chunk ${c.id} lost`)
        for (const c of deleted) await rejectsWithCode(store.read(c.idBytes), 'ChunkNotFound')
        assert.equal(store.chunkCount, live.size)
      }
    } finally {
      await store.close()
    }
  })
})

test('a block with nothing live is retired without copying, and its file goes', async () => {
  await withTempDir(async (dir) => {
    const { store } = await BlockStore.open({ dir, blockSizeBytes: 1 * MiB, sync: 'fdatasync', log: quietLog })
    try {
      const first = Array.from({ length: 4 }, (_, i) => newChunk(i, 200_000))
      for (const c of first) await store.put(c.idBytes, c.data, c.tree)
      const keep = newChunk(9, 300_000) // lands in the second block
      await store.put(keep.idBytes, keep.data, keep.tree)
      for (const c of first) await store.delete(c.idBytes)
      const compactor = new Compactor(store, { deadRatioMin: 0.9, rateBytesPerSecMax: 1024 * MiB })
      assert.deepEqual(await compactor.step(), { state: 'busy' }) // picks block 1, nothing to move: retires it
      assert.equal(compactor.status().recordsMoved, 0)
      assert.equal(compactor.status().blocksCompacted, 1)
      assert.ok(!(await readdir(dir)).includes('data_block_000001.bin'))
      assert.ok((await store.read(keep.idBytes)).data.equals(keep.data))
      assert.equal((await compactor.step()).state, 'idle')
    } finally {
      await store.close()
    }
  })
})

// Bit rot: flipped bits in a block file. A read of the affected pages fails with
// the checksum status (never the bytes, never "not found"), other pages of the same
// chunk still read, and the scrubber reports exactly the damaged chunks.
import assert from 'node:assert/strict'
import { open } from 'node:fs/promises'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { HttpChunkStore } from '../../src/cluster/http-store.ts'
import { BlockStore } from '../../src/node/block-store.ts'
import { MemoryControlPlane } from '../../src/node/control-plane.ts'
import { recordHeaderBytes } from '../../src/node/format.ts'
import { nodeConfig, StorageNode } from '../../src/node/node.ts'
import { wireHeaders } from '../../src/node/protocol.ts'
import { Scrubber } from '../../src/node/scrubber.ts'
import { newChunk, quietLog, rejectsWithCode, withTempDir } from './helpers.ts'

const MiB = 1024 * 1024
const page = 64 * 1024

async function flipBit(path: string, offset: number, bit: number): Promise<void> {
  const fh = await open(path, 'r+')
  try {
    const one = Buffer.alloc(1)
    await fh.read(one, 0, 1, offset)
    one[0] = one[0]! ^ (1 << bit)
    await fh.write(one, 0, 1, offset)
  } finally {
    await fh.close()
  }
}

test('flipped bits: the affected range fails with 422 ChunkCorrupt, other ranges work, the scrubber reports exactly those chunks', { timeout: 60_000 }, async () => {
  await withTempDir(async (dir) => {
    const config = nodeConfig({ dataDir: dir, blockSizeBytes: 4 * MiB, scrubPassMs: 1, scrubRateBytesPerSecMax: 1024 * MiB })
    const chunks = Array.from({ length: 8 }, (_, i) => newChunk(i, 5 * page + 100 * i))
    const [payloadRot, headerRot, lastPageRot] = chunks
    // Write, note where the records are, stop cleanly.
    let node = await StorageNode.start(config, { controlPlane: new MemoryControlPlane(), log: quietLog })
    for (const c of chunks) await node.store.put(c.idBytes, c.data, c.tree)
    const at = new Map(chunks.map((c) => [c.id, node.store.location(c.idBytes)!]))
    await node.stop()

    const headerBytes = recordHeaderBytes(6)
    const payloadAt = (c: (typeof chunks)[number]) => at.get(c.id)!.offsetBytes + headerBytes
    await flipBit(at.get(payloadRot!.id)!.path, payloadAt(payloadRot!) + 2 * page + 1234, 3) // page 2
    await flipBit(at.get(headerRot!.id)!.path, at.get(headerRot!.id)!.offsetBytes + 70, 0) // a page CRC in the header
    await flipBit(at.get(lastPageRot!.id)!.path, payloadAt(lastPageRot!) + 5 * page + 1, 7) // the short last page

    const controlPlane = new MemoryControlPlane()
    node = await StorageNode.start(config, { controlPlane, log: quietLog })
    const store = new HttpChunkStore({ resolve: () => node.url })
    try {
      // The scrubber runs on its own (passes back to back with passMs = 1): wait for one.
      while (Number(node.scrubber.status().passes) < 1) await sleep(5)
      const damaged = [payloadRot!.id, headerRot!.id, lastPageRot!.id].sort()
      assert.deepEqual([...node.scrubber.corruptInLastPass].sort(), damaged)
      assert.deepEqual([...(controlPlane.corrupt.get(node.nodeId) ?? [])].sort(), damaged)

      // Page 2 of payloadRot fails; pages 0, 1, 3, 4 and 5 still read.
      await rejectsWithCode(store.get('n', payloadRot!.id, { offsetBytes: 2 * page + 1000, lengthBytes: 10 }), 'ChunkCorrupt')
      await rejectsWithCode(store.get('n', payloadRot!.id), 'ChunkCorrupt')
      for (const p of [0, 1, 3, 4, 5]) {
        const start = p * page
        const length = Math.min(page, payloadRot!.data.length - start)
        assert.ok((await store.get('n', payloadRot!.id, { offsetBytes: start, lengthBytes: length })).equals(payloadRot!.data.subarray(start, start + length)))
      }
      // A range straddling pages 1 and 2 touches the bad page: refused.
      await rejectsWithCode(store.get('n', payloadRot!.id, { offsetBytes: 2 * page - 5, lengthBytes: 10 }), 'ChunkCorrupt')
      // A rotten header: nothing of that chunk can be trusted.
      await rejectsWithCode(store.get('n', headerRot!.id, { offsetBytes: 0, lengthBytes: 1 }), 'ChunkCorrupt')
      await rejectsWithCode(store.get('n', lastPageRot!.id, { offsetBytes: 5 * page, lengthBytes: 1 }), 'ChunkCorrupt')
      assert.ok((await store.get('n', lastPageRot!.id, { offsetBytes: 0, lengthBytes: 5 * page })).equals(lastPageRot!.data.subarray(0, 5 * page)))

      // On the wire: 422 with the code header and no chunk bytes; distinct from 404.
      const raw = await request(`${node.url}/v1/chunks/${payloadRot!.id}`, { headers: { range: `bytes=${2 * page}-${2 * page + 99}` } })
      assert.equal(raw.statusCode, 422)
      assert.equal(raw.headers[wireHeaders.error], 'ChunkCorrupt')
      assert.equal(raw.headers['content-type'], 'application/json')
      assert.equal(((await raw.body.json()) as { code: string }).code, 'ChunkCorrupt')
      const missing = await request(`${node.url}/v1/chunks/${newChunk(99, 1).id}`)
      assert.equal(missing.statusCode, 404)
      await missing.body.dump()

      for (const c of chunks.slice(3)) assert.ok((await store.get('n', c.id)).equals(c.data))
    } finally {
      await store.close()
      await node.stop()
    }
  })
})

test('the scrubber paces a pass: total waiting matches bytes / rate, and a pass is spread over passMs', { timeout: 60_000 }, async () => {
  await withTempDir(async (dir) => {
    const { store } = await BlockStore.open({ dir, blockSizeBytes: 4 * MiB, sync: 'none', log: quietLog })
    try {
      const chunks = Array.from({ length: 10 }, (_, i) => newChunk(i, 100 * 1024))
      for (const c of chunks) await store.put(c.idBytes, c.data, c.tree)
      let now = 0
      const rate = 1024 * 1024 // 1 MiB/s cap
      // passMs long enough that the cap, not the schedule, sets the pace
      const scrubber = new Scrubber(store, { passMs: 1, rateBytesPerSecMax: rate, onCorrupt: () => assert.fail('nothing is corrupt'), now: () => now })
      let steps = 0
      while (Number(scrubber.status().passes) === 0) {
        const result = await scrubber.step()
        steps++
        if (result.state !== 'busy') now += result.delayMs // the runner would sleep this long
      }
      assert.equal(scrubber.status().recordsScrubbed, 10)
      assert.ok(steps >= 10)
      // Ten records of 100 KiB at 1 MiB/s: about a second of (simulated) waiting.
      assert.ok(Math.abs(now - (10 * 100 * 1024 * 1000) / rate) < 2, `waited ${now} ms`)

      // With a week-long pass the rate is the live bytes spread over the week.
      const slow = new Scrubber(store, { passMs: 7 * 24 * 3600 * 1000, rateBytesPerSecMax: rate, onCorrupt: () => {}, now: () => now })
      await slow.step()
      const expected = store.stats().liveRecordBytes / (7 * 24 * 3600)
      assert.ok(Math.abs(Number(slow.status().rateBytesPerSec) - expected) <= 1)
    } finally {
      await store.close()
    }
  })
})

// The object layer against real `blobfs node` processes (catalog on PostgreSQL):
// SIGKILLed nodes, a chunk rotted on disk, and a 200 MiB round trip through HTTP.
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { buffer as streamToBuffer } from 'node:stream/consumers'
import { after, before, describe, test } from 'node:test'
import { isBlobfsError } from '../../src/errors.ts'
import { startTestCluster, type TestCluster } from '../support/cluster.ts'

const MiB = 1024 * 1024

function* pieces(data: Buffer, size = 256 * 1024): Generator<Buffer> {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size)
}

describe('object layer on a real cluster of 12 nodes in 4 racks', () => {
  let cluster: TestCluster
  before(async () => {
    cluster = await startTestCluster({ nodes: 12, racks: 4 })
  })
  after(async () => {
    await cluster?.stop()
  })

  test('a 200 MiB object round-trips through the HTTP nodes (SHA-256), ranges too', async () => {
    const { objects } = await cluster.open()
    await objects.createBucket('big', 'tester')
    const data = randomBytes(200 * MiB)
    const info = await objects.putObject('big', 'blob', Readable.from(pieces(data)))
    assert.equal(info.sizeBytes, data.length)
    const back = await streamToBuffer((await objects.getObject('big', 'blob')).body)
    assert.equal(createHash('sha256').update(back).digest('hex'), createHash('sha256').update(data).digest('hex'))
    const start = 16 * MiB - 5
    const range = await streamToBuffer((await objects.getObject('big', 'blob', { range: { start, end: start + 3 * MiB } })).body)
    assert.ok(range.equals(data.subarray(start, start + 3 * MiB + 1)))
    await objects.deleteObject('big', 'blob')
  })

  test('SIGKILL 4 nodes: every object reads back whole and ranged; a 5th: a clear error, never wrong bytes', async () => {
    const { objects } = await cluster.open({ hedgeAfterMs: 200, getTimeoutMs: 3000 })
    await objects.createBucket('survive', 'tester')
    const bodies = new Map<string, Buffer>()
    for (const size of [1, 5000, 3 * MiB + 7, 40 * MiB]) {
      const data = randomBytes(size)
      bodies.set(`k${size}`, data)
      await objects.putObject('survive', `k${size}`, Readable.from(pieces(data)))
    }
    const victims = [cluster.nodes[0]!, cluster.nodes[5]!, cluster.nodes[6]!, cluster.nodes[11]!]
    try {
      await Promise.all(victims.map((n) => n.kill('SIGKILL')))
      for (const [key, data] of bodies) {
        assert.ok((await streamToBuffer((await objects.getObject('survive', key)).body)).equals(data), `${key} whole`)
        if (data.length > 10) {
          const got = await streamToBuffer((await objects.getObject('survive', key, { range: { start: 3, end: data.length - 4 } })).body)
          assert.ok(got.equals(data.subarray(3, data.length - 3)), `${key} ranged`)
        }
      }
      const fifth = cluster.nodes[2]!
      await fifth.kill('SIGKILL')
      try {
        const read = await objects.getObject('survive', 'k41943040')
        await assert.rejects(streamToBuffer(read.body), (e) => isBlobfsError(e, 'TooManyErasures'))
      } finally {
        await fifth.start()
      }
    } finally {
      await Promise.all(victims.map((n) => n.start()))
    }
  })

  test('a chunk rotted on disk: reads stay right and a repair task is queued for its stripe', async () => {
    const { objects, catalog, membership } = await cluster.open()
    await objects.createBucket('rot', 'tester')
    const data = randomBytes(8 * 256 * 1024) // one stripe, 256 KiB data chunks
    await objects.putObject('rot', 'victim', Readable.from(pieces(data)))
    await membership.refresh()
    const located = await catalog.objects.lookup('rot', 'victim', { offsetBytes: 0, lengthBytes: 1 })
    const chunk = located!.stripes[0]!.chunks.find((c) => c.chunkIndex === 1)!
    const node = cluster.nodes.find((n) => n.id === chunk.nodeId)!
    // Data chunk 1 holds bytes [256 KiB, 512 KiB) of the object as they are: find them in the block log.
    const needle = data.subarray(256 * 1024, 256 * 1024 + 64)
    let flipped = false
    for (const name of readdirSync(node.dataDir).filter((f) => f.startsWith('data_block_'))) {
      const path = join(node.dataDir, name)
      const bytes = readFileSync(path)
      const at = bytes.indexOf(needle)
      if (at >= 0) {
        bytes[at + 100] ^= 0x01
        writeFileSync(path, bytes)
        flipped = true
      }
    }
    assert.ok(flipped, 'found the chunk in a block file')
    assert.ok((await streamToBuffer((await objects.getObject('rot', 'victim')).body)).equals(data))
    let queued = 0
    for (let attempt = 0; attempt < 50 && queued === 0; attempt++) {
      queued = (await catalog.repairs.stats()).ready
      if (queued === 0) await new Promise((r) => setTimeout(r, 100))
    }
    assert.ok(queued >= 1, 'a repair task is queued')
  })
})

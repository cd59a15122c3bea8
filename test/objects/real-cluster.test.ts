// The object layer against real `blobfs node` processes (catalog on PostgreSQL),
// with chunks counted on the nodes themselves (their inventory):
//   - a 200 MiB round trip through HTTP; SIGKILLed nodes; a chunk rotted on disk;
//   - 8 writers PUT the same key at once: one version is visible, and every chunk
//     they wrote is either that version's (on the node its catalog row names) or
//     queued for deletion on the node that holds it — nothing leaks;
//   - a writer process SIGKILLed mid-upload: no object appears, and what it stored
//     is referenced by nothing in the catalog (the GC sweep's to remove).
// The 2 GiB memory test is test/objects/memory.test.ts (its own process, so the
// RSS baseline is not this file's 200 MiB buffers).
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Readable } from 'node:stream'
import { buffer as streamToBuffer } from 'node:stream/consumers'
import { after, before, describe, test } from 'node:test'
import type { Cluster } from '../../src/cli/cluster.ts'
import { isBlobfsError } from '../../src/errors.ts'
import { startTestCluster, type TestCluster } from '../support/cluster.ts'

const MiB = 1024 * 1024
const dyingWriter = join(import.meta.dirname, '..', 'support', 'dying-writer.ts')

function* pieces(data: Buffer, size = 256 * 1024): Generator<Buffer> {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size)
}

/** `node:chunk` for every chunk the nodes hold, read from each node's inventory. */
async function chunksOnNodes(cluster: TestCluster, client: Cluster): Promise<Set<string>> {
  const found = new Set<string>()
  for (const node of cluster.nodes) {
    for await (const entry of client.store.inventory(node.id)) found.add(`${node.id}:${entry.chunkId}`)
  }
  return found
}

function minus(a: Set<string>, b: Set<string>): Set<string> {
  return new Set([...a].filter((x) => !b.has(x)))
}

/** `node:chunk` of every chunk row of the object at bucket/key. */
async function catalogPlacement(client: Cluster, bucket: string, key: string): Promise<Set<string>> {
  const head = await client.objects.headObject(bucket, key)
  const found = await client.catalog.objects.lookup(bucket, key, { offsetBytes: 0, lengthBytes: head.sizeBytes })
  return new Set(found!.stripes.flatMap((s) => s.chunks.map((c) => `${c.nodeId}:${c.chunkId}`)))
}

async function queuedForDeletion(client: Cluster): Promise<Set<string>> {
  const rows = await client.catalog.db.sql<{ storage_node_id: string; chunk_id: string }[]>`SELECT storage_node_id, chunk_id FROM chunk_deletions`
  return new Set(rows.map((r) => `${r.storage_node_id}:${r.chunk_id}`))
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

  test('a chunk rotted on disk: reads stay right and a repair task is queued for its stripe (or done)', async () => {
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
    // The read queues a repair task for the stripe and the nodes' repair workers rebuild
    // chunk 1 elsewhere. Wait for the repair to finish (task gone, the stripe names a new
    // chunk 1): a repair still running would write a chunk during the next test.
    const objectId = located!.object.objectId
    let queued = false
    let repaired = false
    for (const deadline = Date.now() + 60_000; !repaired && Date.now() < deadline; ) {
      const tasks = await catalog.db.sql<{ n: string }[]>`SELECT count(*) AS n FROM repair_tasks WHERE object_id = ${objectId}`
      const now = await catalog.objects.lookup('rot', 'victim', { offsetBytes: 0, lengthBytes: 1 })
      const chunk1 = now!.stripes[0]!.chunks.find((c) => c.chunkIndex === 1)
      if (Number(tasks[0]!.n) > 0) queued = true
      repaired = Number(tasks[0]!.n) === 0 && chunk1 !== undefined && chunk1.chunkId !== chunk.chunkId
      if (!repaired) await new Promise((r) => setTimeout(r, 100))
    }
    assert.ok(repaired, `the stripe's chunk 1 is rebuilt by the repair workers (task seen queued: ${queued})`)
    assert.ok((await streamToBuffer((await objects.getObject('rot', 'victim')).body)).equals(data), 'and the object still reads right')
  })

  test('8 concurrent PUTs of one key: one version visible; every other chunk is queued for deletion where it lies', async () => {
    // Eight independent clients (own catalog pool, own node connections), 2 MiB stripes: 3 stripes each.
    const writers = await Promise.all(Array.from({ length: 8 }, () => cluster.open({ stripeSizeBytes: 2 * MiB })))
    const [first] = writers
    await first!.objects.createBucket('contended', 'tester')
    const before = await chunksOnNodes(cluster, first!)
    const bodies = Array.from({ length: 8 }, () => randomBytes(5 * MiB + 17))
    const results = await Promise.allSettled(writers.map((w, i) => w.objects.putObject('contended', 'k', Readable.from(pieces(bodies[i]!)))))
    assert.deepEqual(results.map((r) => r.status), Array(8).fill('fulfilled'), 'every writer is acknowledged (the catalog retries its conflicts)')

    const visible = await streamToBuffer((await first!.objects.getObject('contended', 'k')).body)
    const winners = bodies.filter((b) => b.equals(visible))
    assert.equal(winners.length, 1, 'exactly one version is visible')
    assert.equal((await first!.objects.headObject('contended', 'k')).etag, `"${createHash('md5').update(winners[0]!).digest('hex')}"`)

    const written = minus(await chunksOnNodes(cluster, first!), before)
    assert.equal(written.size, 8 * 3 * 12, 'each writer stored 3 stripes of 12 chunks')
    const live = await catalogPlacement(first!, 'contended', 'k')
    assert.equal(live.size, 3 * 12)
    assert.deepEqual(minus(live, written), new Set(), 'every chunk of the visible version is on the node its catalog row names')
    const replaced = minus(written, live)
    const queued = await queuedForDeletion(first!)
    assert.deepEqual(minus(replaced, queued), new Set(), 'every chunk of the 7 replaced versions is queued for deletion on its node')
    const writtenIds = [...written].map((pair) => pair.split(':')[1]!)
    const referenced = await first!.catalog.chunks.referenced(writtenIds)
    assert.deepEqual(referenced, new Set([...live].map((pair) => pair.split(':')[1]!)), 'the catalog references only the visible version')
  })

  test('a writer process SIGKILLed mid-upload: no visible object; its stored chunks are referenced by nothing', { timeout: 180_000 }, async () => {
    const client = await cluster.open()
    await client.objects.createBucket('dying', 'tester')
    const before = await chunksOnNodes(cluster, client)
    const stripes = 4
    const child = spawn(process.execPath, ['--import', 'tsx', dyingWriter, cluster.catalogUrl, 'dying', 'half', String(2 * MiB), String(stripes)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const output: string[] = []
    for (const stream of [child.stdout!, child.stderr!]) createInterface({ input: stream }).on('line', (line) => output.push(line))
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    try {
      // Wait until every stripe it was given is stored on the nodes, then kill it before it can commit.
      let written = new Set<string>()
      const deadline = Date.now() + 120_000
      while (written.size < stripes * 12) {
        assert.ok(Date.now() < deadline, `the writer stored ${written.size} of ${stripes * 12} chunks in time:\n${output.join('\n')}`)
        assert.equal(child.exitCode, null, `the writer exited early:\n${output.join('\n')}`)
        await new Promise((r) => setTimeout(r, 200))
        written = minus(await chunksOnNodes(cluster, client), before)
      }
      child.kill('SIGKILL')
      await exited
      assert.ok(!output.some((line) => line.startsWith('committed')), output.join('\n'))

      await assert.rejects(client.objects.headObject('dying', 'half'), (e) => isBlobfsError(e, 'NoSuchKey'), 'no object is visible')
      assert.deepEqual((await client.objects.listObjects('dying')).objects, [])
      const after = minus(await chunksOnNodes(cluster, client), before)
      assert.equal(after.size, stripes * 12, 'the dead writer\'s chunks stay on the nodes until the GC sweep')
      const ids = [...after].map((pair) => pair.split(':')[1]!)
      assert.deepEqual(await client.catalog.chunks.referenced(ids), new Set(), 'nothing in the catalog references them')
    } finally {
      child.kill('SIGKILL')
      await exited
    }
  })
})

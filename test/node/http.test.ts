// The chunk API of an in-process node, driven over real sockets: by the
// HttpChunkStore client and, for wire details, by raw undici requests.
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { test } from 'node:test'
import { request } from 'undici'
import { checksumTree, pageCrcsToBuffer, verifyPages } from '../../src/codec/checksum.ts'
import { HttpChunkStore } from '../../src/cluster/http-store.ts'
import { MemoryControlPlane } from '../../src/node/control-plane.ts'
import { nodeConfig, StorageNode, type NodeConfig } from '../../src/node/node.ts'
import { decodePageCrcs, encodePageCrcs, encodeRoot, wireHeaders } from '../../src/node/protocol.ts'
import { chunkBytes, newChunk, quietLog, rejectsWithCode, withTempDir } from './helpers.ts'

const MiB = 1024 * 1024
const page = 64 * 1024

async function withNode(fn: (node: StorageNode, store: HttpChunkStore, controlPlane: MemoryControlPlane) => Promise<void>, more: Partial<NodeConfig> = {}): Promise<void> {
  await withTempDir(async (dir) => {
    const controlPlane = new MemoryControlPlane()
    const node = await StorageNode.start(nodeConfig({ dataDir: dir, blockSizeBytes: 8 * MiB, ...more }), { controlPlane, log: quietLog })
    const store = new HttpChunkStore({ resolve: () => node.url, retryBackoffMsMin: 5 })
    try {
      await fn(node, store, controlPlane)
    } finally {
      await store.close()
      await node.stop()
    }
  })
}

test('the HTTP store round-trips every interesting size, with HEAD, ranges, DELETE and inventory', async () => {
  await withNode(async (node, store) => {
    const chunks = [0, 1, 4095, 65536, 65537, 2 * MiB].map((size, i) => newChunk(i, size))
    for (const c of chunks) await store.put('n1', c.id, c.data, c.tree)
    for (const c of chunks) {
      assert.ok((await store.get('n1', c.id)).equals(c.data), `size ${c.data.length}`)
      assert.deepEqual(await store.head('n1', c.id), { lengthBytes: c.data.length, root: c.tree.root })
    }
    const big = chunks.at(-1)!
    for (let boundary = 0; boundary <= big.data.length; boundary += page) {
      for (const [from, to] of [[boundary - 1, boundary + 1], [boundary, boundary + 1], [boundary - 1, boundary], [boundary, boundary], [boundary - 100, boundary + page + 100]]) {
        const start = Math.max(0, from!)
        const end = Math.min(big.data.length, to!)
        const got = await store.get('n1', big.id, { offsetBytes: start, lengthBytes: end - start })
        assert.ok(got.equals(big.data.subarray(start, end)), `range ${start}-${end}`)
      }
    }
    await rejectsWithCode(store.get('n1', big.id, { offsetBytes: big.data.length - 10, lengthBytes: 11 }), 'InvalidRange')
    await rejectsWithCode(store.get('n1', big.id, { offsetBytes: big.data.length + 1, lengthBytes: 0 }), 'InvalidRange')

    const inventory = new Map<string, number>()
    for await (const entry of store.inventory('n1')) {
      assert.ok(entry.ageMs >= 0)
      inventory.set(entry.chunkId, entry.lengthBytes)
    }
    assert.deepEqual(inventory, new Map(chunks.map((c) => [c.id, c.data.length])))

    await store.delete('n1', big.id)
    await store.delete('n1', big.id) // absent: still fine
    assert.equal(await store.head('n1', big.id), null)
    await rejectsWithCode(store.get('n1', big.id), 'ChunkNotFound')
    assert.equal(node.store.chunkCount, chunks.length - 1)
  })
})

test('PUT checks the tree: a mismatch is 400 BadDigest with nothing stored; other bytes are 409; same bytes are 200', async () => {
  await withNode(async (node, store) => {
    const c = newChunk(1, 3 * page + 5)
    const put = (data: Buffer, crcs: Uint32Array, root: number) =>
      request(`${node.url}/v1/chunks/${c.id}`, {
        method: 'PUT',
        body: data,
        headers: { [wireHeaders.pageCrcs]: encodePageCrcs(crcs), [wireHeaders.root]: encodeRoot(root) },
      })
    const flipped = Buffer.from(c.data)
    flipped[page + 3] = flipped[page + 3]! ^ 1
    const bad = await put(flipped, c.tree.pageCrcs, c.tree.root)
    assert.equal(bad.statusCode, 400)
    assert.equal(bad.headers[wireHeaders.error], 'BadDigest')
    await bad.body.dump()
    const badRoot = await put(c.data, c.tree.pageCrcs, c.tree.root ^ 1)
    assert.equal(badRoot.statusCode, 400)
    await badRoot.body.dump()
    assert.equal(await store.head('n1', c.id), null)
    assert.equal(node.store.stats().appendedRecords, 0)

    const created = await put(c.data, c.tree.pageCrcs, c.tree.root)
    assert.equal(created.statusCode, 201)
    await created.body.dump()
    const again = await put(c.data, c.tree.pageCrcs, c.tree.root)
    assert.equal(again.statusCode, 200)
    await again.body.dump()
    const other = chunkBytes(9, c.data.length)
    const otherTree = checksumTree(other)
    const conflict = await put(other, otherTree.pageCrcs, otherTree.root)
    assert.equal(conflict.statusCode, 409)
    assert.equal(conflict.headers[wireHeaders.error], 'ChunkConflict')
    await conflict.body.dump()
    await rejectsWithCode(store.put('n1', c.id, other, otherTree), 'ChunkConflict')
    await rejectsWithCode(store.put('n1', newChunk(2, 10).id, flipped, c.tree), 'BadDigest')
    assert.equal(node.store.stats().appendedRecords, 1)
  })
})

test('PUT bodies share reused buffers: refused, cut-off and concurrent PUTs never leak bytes into stored chunks', async () => {
  await withNode(async (node, store) => {
    const stored: ReturnType<typeof newChunk>[] = []
    const { hostname, port } = new URL(node.url)
    for (let round = 0; round < 4; round++) {
      // Several PUTs at once, full chunk size (pooled) and smaller ones (pooled, a prefix of a buffer).
      const batch = [2 * MiB, 2 * MiB, 2 * MiB - 1, 300_000, 2 * MiB, 17].map((size, i) => newChunk(100 * round + i, size))
      await Promise.all(batch.map((c) => store.put('n1', c.id, c.data, c.tree)))
      stored.push(...batch)
      // A refused body (its buffer is given back after BadDigest).
      const bad = newChunk(100 * round + 50, 2 * MiB)
      const flipped = Buffer.from(bad.data)
      flipped[12345] = flipped[12345]! ^ 0xff
      await rejectsWithCode(store.put('n1', bad.id, flipped, bad.tree), 'BadDigest')
      // A body cut off after 100 KiB of its 2 MiB: the connection dies mid-read.
      const cut = newChunk(100 * round + 60, 2 * MiB)
      await new Promise<void>((resolve, reject) => {
        const socket = connect(Number(port), hostname, () => {
          socket.write(
            `PUT /v1/chunks/${cut.id} HTTP/1.1\r\nhost: x\r\ncontent-length: ${cut.data.length}\r\n` +
              `${wireHeaders.pageCrcs}: ${encodePageCrcs(cut.tree.pageCrcs)}\r\n${wireHeaders.root}: ${encodeRoot(cut.tree.root)}\r\n\r\n`,
          )
          socket.write(cut.data.subarray(0, 100 * 1024), () => setTimeout(() => socket.destroy(), 50))
        })
        socket.on('close', () => resolve())
        socket.on('error', reject)
      })
      assert.equal(await store.head('n1', cut.id), null, 'nothing of the cut-off body is stored')
      assert.equal(await store.head('n1', bad.id), null)
    }
    for (const c of stored) assert.ok((await store.get('n1', c.id)).equals(c.data), `chunk of ${c.data.length} bytes reads back exactly`)
    const health = (await (await request(`${node.url}/health`)).body.json()) as { bodyBuffers: { free: number; allocated: number } }
    assert.ok(health.bodyBuffers.allocated >= 1, 'bodies went through the pool')
    assert.ok(health.bodyBuffers.allocated < stored.length, `buffers were reused (${health.bodyBuffers.allocated} allocated for ${stored.length + 8} bodies)`)
  })
})

test('whole-chunk GETs read into reused buffers, each given back only once its response is written', async () => {
  await withNode(async (node, store) => {
    const chunks = [2 * MiB, 2 * MiB, 2 * MiB - 1, 300_000, 2 * MiB, 17, 2 * MiB, 2 * MiB].map((size, i) => newChunk(700 + i, size))
    for (const c of chunks) await store.put('n1', c.id, c.data, c.tree)
    const health = async () => ((await (await request(`${node.url}/health`)).body.json()) as { bodyBuffers: { free: number; allocated: number; taken: number } }).bodyBuffers
    const { hostname, port } = new URL(node.url)
    const before = await health()
    // Raw GETs (no client-side retry could hide a wrong byte): many at once, several rounds.
    const get = async (c: (typeof chunks)[number]) => {
      const r = await request(`${node.url}/v1/chunks/${c.id}`)
      assert.equal(r.statusCode, 200)
      assert.ok(Buffer.from(await r.body.arrayBuffer()).equals(c.data), `chunk of ${c.data.length} bytes`)
    }
    // A slow reader: it takes the response headers and a little of the body, then stops
    // reading while the other GETs run (and would reuse its buffer, were it given back
    // before every byte left), then reads the rest. (On loopback the kernel's socket
    // buffers may take the whole 2 MiB at once, and then this cannot tell; it is here
    // for the machines where they do not.)
    const slow = chunks[0]!
    const slowBytes: Buffer[] = []
    const socket = connect(Number(port), hostname)
    let received = 0
    let paused = false
    const firstBytes = new Promise<void>((resolve) => {
      socket.on('data', (piece: Buffer) => {
        slowBytes.push(piece)
        received += piece.length
        if (received > 64 * 1024 && !paused) {
          paused = true
          socket.pause()
          resolve()
        }
      })
    })
    socket.write(`GET /v1/chunks/${slow.id} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`)
    await firstBytes
    for (let round = 0; round < 4; round++) await Promise.all(chunks.slice(1).map(get))
    // A reader that goes away mid-body: its buffer is not reused (the socket may hold it).
    const gone = connect(Number(port), hostname)
    await new Promise<void>((resolve) => {
      gone.once('data', () => {
        gone.destroy()
        resolve()
      })
      gone.write(`GET /v1/chunks/${chunks[1]!.id} HTTP/1.1\r\nhost: x\r\n\r\n`)
    })
    const ended = new Promise<void>((resolve, reject) => {
      socket.on('end', () => resolve())
      socket.on('error', reject)
    })
    socket.resume()
    await ended
    const raw = Buffer.concat(slowBytes)
    const bodyAt = raw.indexOf('\r\n\r\n') + 4
    assert.match(raw.subarray(0, bodyAt).toString('latin1'), /^HTTP\/1\.1 200 /)
    assert.ok(raw.subarray(bodyAt).equals(slow.data), 'the slow reader got exactly its chunk')
    for (const c of chunks) await get(c) // the pool still serves correctly afterwards
    const after = await health()
    const gets = 4 * (chunks.length - 1) + chunks.length + 2
    assert.ok(after.taken - before.taken >= gets - 1, `whole-chunk GETs took pooled buffers (${after.taken - before.taken} for ${gets} GETs)`)
    assert.ok(after.allocated - before.allocated < chunks.length * 2, `and reused them (${after.allocated - before.allocated} allocated)`)
  })
})

test('GET with Range returns exactly those bytes plus the CRCs of the pages they touch; 416 outside', async () => {
  await withNode(async (node, store) => {
    const c = newChunk(3, 4 * page + 10)
    await store.put('n1', c.id, c.data, c.tree)
    const r = await request(`${node.url}/v1/chunks/${c.id}`, { headers: { range: `bytes=${page - 2}-${2 * page + 1}` } })
    assert.equal(r.statusCode, 206)
    const body = Buffer.from(await r.body.arrayBuffer())
    assert.ok(body.equals(c.data.subarray(page - 2, 2 * page + 2)))
    assert.equal(r.headers['content-range'], `bytes ${page - 2}-${2 * page + 1}/${c.data.length}`)
    assert.equal(r.headers[wireHeaders.firstPage], '0')
    assert.deepEqual(pageCrcsToBuffer(decodePageCrcs(r.headers[wireHeaders.pageCrcs] as string)), pageCrcsToBuffer(c.tree.pageCrcs.subarray(0, 3)))
    // A client that asks for whole pages can verify what it got.
    const whole = await request(`${node.url}/v1/chunks/${c.id}`, { headers: { range: `bytes=${2 * page}-` } })
    const pages = Buffer.from(await whole.body.arrayBuffer())
    verifyPages(pages, 0, decodePageCrcs(whole.headers[wireHeaders.pageCrcs] as string))
    const suffix = await request(`${node.url}/v1/chunks/${c.id}`, { headers: { range: 'bytes=-7' } })
    assert.ok(Buffer.from(await suffix.body.arrayBuffer()).equals(c.data.subarray(c.data.length - 7)))
    const outside = await request(`${node.url}/v1/chunks/${c.id}`, { headers: { range: `bytes=${c.data.length}-` } })
    assert.equal(outside.statusCode, 416)
    assert.equal(outside.headers['content-range'], `bytes */${c.data.length}`)
    await outside.body.dump()
  })
})

test('/health and /metrics report the node, its store and its workers', async () => {
  await withNode(async (node, store, controlPlane) => {
    const c = newChunk(5, 100_000)
    await store.put('n1', c.id, c.data, c.tree)
    await store.get('n1', c.id)
    const health = (await (await request(`${node.url}/health`)).body.json()) as Record<string, unknown>
    assert.equal(health.status, 'ok')
    assert.equal(health.nodeId, node.nodeId)
    assert.equal(health.chunks, 1)
    const metrics = await (await request(`${node.url}/metrics`)).body.text()
    for (const name of ['blobfs_node_fsync_seconds_bucket', 'blobfs_node_chunks 1', 'blobfs_node_appended_records_total 1', 'blobfs_node_scrub_progress_ratio', 'blobfs_node_compaction_blocks', 'blobfs_node_http_requests_total', 'blobfs_node_read_only 0']) {
      assert.ok(metrics.includes(name), `metrics lack ${name}`)
    }
    // The heartbeat worker registered the node with its id, rack and address.
    const registration = controlPlane.registrations.get(node.nodeId)
    assert.equal(registration?.address, node.url)
    assert.equal(registration?.rack, 'default')
  })
})

test('the node id persists in the data directory across restarts', async () => {
  await withTempDir(async (dir) => {
    const ids: string[] = []
    for (let i = 0; i < 2; i++) {
      const node = await StorageNode.start(nodeConfig({ dataDir: dir, blockSizeBytes: 1 * MiB }), { controlPlane: new MemoryControlPlane(), log: quietLog })
      ids.push(node.nodeId)
      await node.stop()
    }
    assert.equal(ids[0], ids[1])
  })
})

test('the HTTP store answers NodeUnavailable when nothing listens, after its retries', async () => {
  const store = new HttpChunkStore({ resolve: () => 'http://127.0.0.1:1', retriesMax: 2, retryBackoffMsMin: 1 })
  try {
    await rejectsWithCode(store.get('gone', '0f0e0d0c-0b0a-4908-8706-050403020100'), 'NodeUnavailable')
    await rejectsWithCode(store.head('gone', '0f0e0d0c-0b0a-4908-8706-050403020100'), 'NodeUnavailable')
  } finally {
    await store.close()
  }
})

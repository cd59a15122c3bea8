// The HttpChunkStore against a real `blobfs node` child process, and against a
// server that lies, to prove the client checks what it is given.
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { HttpChunkStore } from '../../src/cluster/http-store.ts'
import { encodePageCrcs, encodeRoot, wireHeaders } from '../../src/node/protocol.ts'
import { newChunk, rejectsWithCode, withTempDir } from './helpers.ts'
import { startNodeProcess } from './processes.ts'

const page = 64 * 1024

test('against a real node process: put, get, ranges, head, inventory, delete, and a restart', { timeout: 60_000 }, async () => {
  await withTempDir(async (dir) => {
    let node = await startNodeProcess(dir, ['--block-size', '1MiB'])
    const store = new HttpChunkStore({ resolve: (id) => (id === 'n1' ? node.url : 'http://127.0.0.1:1'), retryBackoffMsMin: 5 })
    try {
      const chunks = [0, 1, 4095, 65536, 65537, 300_000].map((size, i) => newChunk(i + 1, size))
      await Promise.all(chunks.map((c) => store.put('n1', c.id, c.data, c.tree)))
      for (const c of chunks) assert.ok((await store.get('n1', c.id)).equals(c.data))
      const big = chunks.at(-1)!
      assert.ok((await store.get('n1', big.id, { offsetBytes: page - 1, lengthBytes: page + 2 })).equals(big.data.subarray(page - 1, 2 * page + 1)))
      assert.deepEqual(await store.head('n1', big.id), { lengthBytes: big.data.length, root: big.tree.root })
      await store.delete('n1', chunks[0]!.id)
      const listed: string[] = []
      for await (const entry of store.inventory('n1')) listed.push(entry.chunkId)
      assert.deepEqual(listed.sort(), chunks.slice(1).map((c) => c.id).sort())

      await node.kill('SIGTERM') // clean stop, then the same directory again
      node = await startNodeProcess(dir, ['--block-size', '1MiB'])
      for (const c of chunks.slice(1)) assert.ok((await store.get('n1', c.id)).equals(c.data))
      assert.equal(await store.head('n1', chunks[0]!.id), null)
    } finally {
      await store.close()
      await node.kill()
    }
  })
})

test('the client verifies pages itself: bytes that do not match the CRCs sent are ChunkCorrupt', { timeout: 60_000 }, async () => {
  const c = newChunk(8, 3 * page)
  let served = 0
  // A server that sends the right CRCs with one byte changed, every time.
  const liar = createServer((req, res) => {
    served++
    const bytes = Buffer.from(c.data)
    bytes[page + 10] = bytes[page + 10]! ^ 0x40
    res.writeHead(200, {
      'content-length': bytes.length,
      [wireHeaders.length]: bytes.length,
      [wireHeaders.root]: encodeRoot(c.tree.root),
      [wireHeaders.firstPage]: 0,
      [wireHeaders.pageCrcs]: encodePageCrcs(c.tree.pageCrcs),
    })
    res.end(bytes)
  })
  await new Promise<void>((resolve) => liar.listen(0, '127.0.0.1', resolve))
  const store = new HttpChunkStore({ resolve: () => `http://127.0.0.1:${(liar.address() as AddressInfo).port}` })
  try {
    await rejectsWithCode(store.get('liar', c.id), 'ChunkCorrupt')
    assert.equal(served, 2) // retried once: corruption in transit may not repeat
  } finally {
    await store.close()
    liar.closeAllConnections()
    await new Promise((resolve) => liar.close(resolve))
  }
})

test('the body is read into a buffer of the length the chunk headers announce: a Content-Length that disagrees is refused at once; a body cut off is a network failure, not corruption', { timeout: 60_000 }, async () => {
  const c = newChunk(9, 3 * page)
  let served = 0
  let mode: 'too-long' | 'cut' = 'too-long'
  const headers = {
    [wireHeaders.length]: c.data.length,
    [wireHeaders.root]: encodeRoot(c.tree.root),
    [wireHeaders.firstPage]: 0,
    [wireHeaders.pageCrcs]: encodePageCrcs(c.tree.pageCrcs),
  }
  const liar = createServer((req, res) => {
    served++
    if (mode === 'too-long') {
      // Announces 64 MiB for a chunk of 3 pages and sends the first page only, then waits:
      // a client that reads the body before looking would wait for its body timeout.
      res.writeHead(200, { ...headers, 'content-length': 64 * 1024 * 1024 })
      res.write(c.data.subarray(0, page))
      return
    }
    res.writeHead(200, { ...headers, 'content-length': c.data.length })
    res.write(c.data.subarray(0, page), () => setTimeout(() => res.destroy(), 20))
  })
  await new Promise<void>((resolve) => liar.listen(0, '127.0.0.1', resolve))
  const store = new HttpChunkStore({ resolve: () => `http://127.0.0.1:${(liar.address() as AddressInfo).port}`, requestTimeoutMs: 20_000, retriesMax: 0 })
  try {
    await rejectsWithCode(store.get('liar', c.id), 'ChunkCorrupt')
    assert.equal(served, 2, 'refused at its headers, and retried once as corruption in transit')
    mode = 'cut'
    served = 0
    await rejectsWithCode(store.get('liar', c.id), 'NodeUnavailable')
    assert.equal(served, 1)
  } finally {
    await store.close()
    liar.closeAllConnections()
    await new Promise((resolve) => liar.close(resolve))
  }
})

// Disk full, on a real 8 MiB tmpfs: writes answer 507, the node flags itself
// read-only in the control plane, everything stored stays readable (also after a
// restart), and once deletes and compaction free space it takes writes again.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtemp, open, rm, unlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { request } from 'undici'
import { HttpChunkStore } from '../../src/cluster/http-store.ts'
import { isBlobfsError } from '../../src/errors.ts'
import { MemoryControlPlane } from '../../src/node/control-plane.ts'
import { nodeConfig, StorageNode } from '../../src/node/node.ts'
import { encodePageCrcs, encodeRoot, wireHeaders } from '../../src/node/protocol.ts'
import { newChunk, quietLog, rejectsWithCode } from './helpers.ts'

const MiB = 1024 * 1024

async function withTmpfs(sizeMiB: number, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'blobfs-full-'))
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'tmpfs', dir])
  try {
    await fn(dir)
  } finally {
    execFileSync('umount', [dir])
    await rm(dir, { recursive: true, force: true })
  }
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(5)
}

test('disk full: 507, read-only in the control plane, stored chunks intact; space freed makes it writable again', { timeout: 60_000 }, async () => {
  await withTmpfs(8, async (dir) => {
    const config = nodeConfig({ dataDir: dir, blockSizeBytes: 1 * MiB, heartbeatIntervalMs: 3_600_000, compactionDeadRatio: 0.9 })
    const controlPlane = new MemoryControlPlane()
    let node = await StorageNode.start(config, { controlPlane, log: quietLog })
    const store = new HttpChunkStore({ resolve: () => node.url, retriesMax: 0 })
    try {
      // Three 300 KiB chunks fill a 1 MiB block; fill the file system.
      const stored: ReturnType<typeof newChunk>[] = []
      let full: unknown = null
      for (let i = 0; i < 100 && full === null; i++) {
        const c = newChunk(i, 300 * 1024)
        try {
          await store.put('n', c.id, c.data, c.tree)
          stored.push(c)
        } catch (error) {
          full = error
        }
      }
      assert.ok(isBlobfsError(full, 'InsufficientStorage'), `expected InsufficientStorage, got ${String(full)}`)
      assert.ok(stored.length >= 12, `only ${stored.length} chunks fit`)
      await until(() => controlPlane.readOnly.get(node.nodeId) === true)
      assert.equal(((await (await request(`${node.url}/health`)).body.json()) as { status: string }).status, 'read-only')
      assert.ok((await (await request(`${node.url}/metrics`)).body.text()).includes('blobfs_node_read_only 1'))

      // The wire answer is 507 with its code, and nothing was stored.
      const extra = newChunk(500, 1000)
      const raw = await request(`${node.url}/v1/chunks/${extra.id}`, {
        method: 'PUT',
        body: extra.data,
        headers: { [wireHeaders.pageCrcs]: encodePageCrcs(extra.tree.pageCrcs), [wireHeaders.root]: encodeRoot(extra.tree.root) },
      })
      assert.equal(raw.statusCode, 507)
      assert.equal(raw.headers[wireHeaders.error], 'InsufficientStorage')
      await raw.body.dump()
      assert.equal(await store.head('n', extra.id), null)
      for (const c of stored) assert.ok((await store.get('n', c.id)).equals(c.data), 'a stored chunk is unreadable on a full disk')
      // Re-sending a chunk it already has is still fine.
      await store.put('n', stored[0]!.id, stored[0]!.data, stored[0]!.tree)

      // A restart on the full file system: still readable, still refusing new chunks.
      await node.stop()
      node = await StorageNode.start(config, { controlPlane, log: quietLog })
      for (const c of stored) assert.ok((await store.get('n', c.id)).equals(c.data))
      const big = newChunk(501, 300 * 1024) // more than the slack left in the last block
      await rejectsWithCode(store.put('n', big.id, big.data, big.tree), 'InsufficientStorage')
      await until(() => controlPlane.readOnly.get(node.nodeId) === true)

      // Free space: delete the first blocks' chunks (tombstones fit in the slack of
      // the last block), compact (nothing to copy), and let a heartbeat notice.
      const compactionRunner = node.runners.find((r) => r.worker === node.compactor)!
      await compactionRunner.stop()
      const victims = stored.slice(0, 12)
      for (const c of victims) await store.delete('n', c.id)
      while ((await node.compactor.step()).state !== 'idle') {
        // compacting
      }
      assert.ok(Number(node.compactor.status().blocksCompacted) >= 3)
      node.runners.find((r) => r.worker.name === 'heartbeat')!.wake()
      await until(() => controlPlane.readOnly.get(node.nodeId) === false)
      await store.put('n', big.id, big.data, big.tree)
      assert.ok((await store.get('n', big.id)).equals(big.data))
      for (const c of stored.slice(12)) assert.ok((await store.get('n', c.id)).equals(c.data))
    } finally {
      await store.close()
      await node.stop()
    }
  })
})

test('a node started on a completely full disk serves its chunks read-only, and writes again once space returns', { timeout: 60_000 }, async () => {
  await withTmpfs(8, async (dir) => {
    const config = nodeConfig({ dataDir: join(dir, 'node'), blockSizeBytes: 1 * MiB, heartbeatIntervalMs: 3_600_000 })
    const controlPlane = new MemoryControlPlane()
    let node = await StorageNode.start(config, { controlPlane, log: quietLog })
    const store = new HttpChunkStore({ resolve: () => node.url, retriesMax: 0 })
    try {
      const stored = Array.from({ length: 3 }, (_, i) => newChunk(i, 200 * 1024))
      for (const c of stored) await store.put('n', c.id, c.data, c.tree)
      await node.stop()
      // Fill every last byte.
      const filler = join(dir, 'filler')
      const fh = await open(filler, 'w')
      const piece = Buffer.alloc(64 * 1024)
      try {
        for (;;) await fh.write(piece)
      } catch (error) {
        assert.equal((error as NodeJS.ErrnoException).code, 'ENOSPC')
      } finally {
        await fh.close()
      }

      node = await StorageNode.start(config, { controlPlane, log: quietLog })
      assert.equal(controlPlane.readOnly.get(node.nodeId), true)
      for (const c of stored) assert.ok((await store.get('n', c.id)).equals(c.data))
      const more = newChunk(10, 1000)
      await rejectsWithCode(store.put('n', more.id, more.data, more.tree), 'InsufficientStorage')

      await unlink(filler)
      node.runners.find((r) => r.worker.name === 'heartbeat')!.wake()
      await until(() => controlPlane.readOnly.get(node.nodeId) === false)
      await store.put('n', more.id, more.data, more.tree)
      await node.stop()
      node = await StorageNode.start(config, { controlPlane, log: quietLog })
      for (const c of [...stored, more]) assert.ok((await store.get('n', c.id)).equals(c.data))
    } finally {
      await store.close()
      await node.stop()
    }
  })
})

// Shared pieces of the fault-injection suite (real `blobfs node` processes on a
// PostgreSQL catalog): node flags that make failure detection and repair happen in
// seconds, writing and reading back objects, and the checks that say full
// redundancy is back — from the catalog's rows and from the nodes themselves.
import assert from 'node:assert/strict'
import { openSync, readSync, writeSync, closeSync, fstatSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { buffer as streamToBuffer } from 'node:stream/consumers'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Catalog } from '../../src/catalog/catalog.ts'
import type { Cluster } from '../../src/cli/cluster.ts'
import type { ObjectStoreConfig } from '../../src/objects/config.ts'
import { randomInt, seededRandom, type Random } from '../../src/random.ts'
import type { TestCluster, TestNode } from '../support/cluster.ts'

/** Heartbeats every 500 ms (the harness), DOWN after 3 s of silence, repair 1 s later; leases of 8 s survive a loaded machine. */
export const fastRepairArgs = ['--down-timeout', '3s', '--repair-grace', '1s', '--repair-lease', '8s', '--repair-concurrency', '2']

/** 1 MiB stripes of 128 KiB chunks: many stripes from a few MiB. */
export const clientConfig: Partial<ObjectStoreConfig> = { stripeSizeBytes: 8 * 128 * 1024, loadWindowBytes: 16 * 1024 * 1024, hedgeAfterMs: 300, getTimeoutMs: 5_000, putTimeoutMs: 10_000 }

export async function waitFor<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs: number, intervalMs = 250): Promise<T> {
  const started = Date.now()
  let last: unknown
  for (;;) {
    try {
      const value = await probe()
      if (value !== null && value !== undefined && value !== false) return value
    } catch (error) {
      last = error
    }
    if (Date.now() - started > timeoutMs) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`)
    await sleep(intervalMs)
  }
}

/** Bytes from a seeded generator (replayable), not crypto-random. */
export function seededBytes(random: Random, size: number): Buffer {
  const out = Buffer.allocUnsafe(size)
  let i = 0
  for (; i + 4 <= size; i += 4) out.writeUInt32LE((random() * 2 ** 32) >>> 0, i)
  for (; i < size; i++) out[i] = randomInt(random, 0, 256)
  return out
}

export async function putAll(client: Cluster, bucket: string, bodies: ReadonlyMap<string, Buffer>): Promise<void> {
  for (const [key, data] of bodies) {
    const pieces: Buffer[] = []
    for (let at = 0; at < data.length; at += 300_000) pieces.push(data.subarray(at, at + 300_000))
    await client.objects.putObject(bucket, key, Readable.from(pieces))
  }
}

/** Every object reads back byte-identical (never wrong bytes, never an error). */
export async function assertAllReadBack(client: Cluster, bucket: string, bodies: ReadonlyMap<string, Buffer>): Promise<void> {
  for (const [key, data] of bodies) {
    const back = await streamToBuffer((await client.objects.getObject(bucket, key)).body)
    assert.equal(back.length, data.length, `${key}: length`)
    assert.ok(back.equals(data), `${key}: bytes differ`)
  }
}

export interface ChunkRow {
  stripe: string
  chunkIndex: number
  chunkId: string
  nodeId: string
  root: number
}

export async function chunkRows(catalog: Catalog): Promise<ChunkRow[]> {
  const rows = await catalog.db.sql`SELECT object_id, part_index, stripe_index, chunk_index, chunk_id, storage_node_id, checksum_crc32c
    FROM object_chunks_allocation ORDER BY object_id, part_index, stripe_index, chunk_index`
  return rows.map((r) => ({
    stripe: `${r.object_id}/${r.part_index}/${r.stripe_index}`,
    chunkIndex: r.chunk_index,
    chunkId: r.chunk_id,
    nodeId: r.storage_node_id,
    root: Number(r.checksum_crc32c),
  }))
}

/**
 * Null when every stripe has all 12 chunks on 12 distinct live nodes, at most
 * `rackCap` per rack, and the repair queue is empty; else what is still wrong.
 */
export async function redundancyGap(catalog: Catalog, cluster: TestCluster, rackCap = 4): Promise<string | null> {
  const live = new Map(cluster.nodes.filter((n) => n.process !== null).map((n) => [n.id, n]))
  const stripes = new Map<string, ChunkRow[]>()
  for (const row of await chunkRows(catalog)) stripes.set(row.stripe, [...(stripes.get(row.stripe) ?? []), row])
  for (const [stripe, rows] of stripes) {
    if (rows.length !== 12) return `stripe ${stripe} has ${rows.length} chunks`
    if (new Set(rows.map((r) => r.nodeId)).size !== 12) return `stripe ${stripe} has two chunks on one node`
    const dead = rows.find((r) => !live.has(r.nodeId))
    if (dead) return `stripe ${stripe} has chunk ${dead.chunkIndex} on a node that is not running`
    const racks = new Map<string, number>()
    for (const r of rows) racks.set(live.get(r.nodeId)!.rack, (racks.get(live.get(r.nodeId)!.rack) ?? 0) + 1)
    if ([...racks.values()].some((n) => n > rackCap)) return `stripe ${stripe} has more than ${rackCap} chunks in one rack`
  }
  const queue = await catalog.repairs.stats()
  if (queue.ready + queue.leased + queue.delayed > 0) return `repair queue not empty: ${JSON.stringify(queue)}`
  return null
}

export async function waitForFullRedundancy(catalog: Catalog, cluster: TestCluster, timeoutMs: number, rackCap = 4): Promise<void> {
  let gap: string | null = 'not checked'
  await waitFor(`full redundancy (${gap})`, async () => {
    gap = await redundancyGap(catalog, cluster, rackCap)
    return gap === null
  }, timeoutMs, 500).catch((error: Error) => {
    throw new Error(`${error.message}; last gap: ${gap}`)
  })
}

/** Every chunk row's chunk is on its node, whole, passing every page check and with the catalog's root. */
export async function assertEveryChunkChecks(client: Cluster): Promise<number> {
  await client.membership.refresh()
  const rows = await chunkRows(client.catalog)
  for (const row of rows) {
    const info = await client.store.head(row.nodeId, row.chunkId)
    assert.ok(info, `chunk ${row.chunkIndex} of ${row.stripe} is on node ${row.nodeId}`)
    assert.equal(info.root, row.root, `chunk ${row.chunkId}: root on the node matches the catalog`)
    await client.store.get(row.nodeId, row.chunkId) // throws ChunkCorrupt on any bad page
  }
  return rows.length
}

/**
 * Flips `count` random bytes inside the written part of a node's block files
 * (payloads, headers, padding alike); returns how many were flipped.
 */
export function flipRandomBytes(node: TestNode, count: number, random: Random): number {
  const files = readdirSync(node.dataDir).filter((f) => f.startsWith('data_block_')).sort()
  let flipped = 0
  for (let i = 0; i < count && files.length > 0; i++) {
    const path = join(node.dataDir, files[randomInt(random, 0, files.length)]!)
    const fd = openSync(path, 'r+')
    try {
      const size = fstatSync(fd).size
      const used = writtenLength(fd, size)
      if (used === 0) continue
      const at = randomInt(random, 0, used)
      const byte = Buffer.alloc(1)
      readSync(fd, byte, 0, 1, at)
      byte[0] ^= 1 << randomInt(random, 0, 8)
      writeSync(fd, byte, 0, 1, at)
      flipped++
    } finally {
      closeSync(fd)
    }
  }
  return flipped
}

/** Offset just past the last non-zero byte (block files are pre-allocated with zeros). */
function writtenLength(fd: number, size: number): number {
  const window = Buffer.alloc(1 << 20)
  let end = size
  while (end > 0) {
    const start = Math.max(0, end - window.length)
    const n = readSync(fd, window, 0, end - start, start)
    for (let i = n - 1; i >= 0; i--) if (window[i] !== 0) return start + i + 1
    end = start
  }
  return 0
}

/** Seed from BLOBFS_FAULT_SEED (replay) or a fresh one; printed so a failure can be replayed. */
export function faultSeed(name: string): { seed: number; random: Random } {
  const given = process.env.BLOBFS_FAULT_SEED
  const seed = given !== undefined && given !== '' ? Number(given) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0
  console.log(`# ${name}: seed ${seed} (replay with BLOBFS_FAULT_SEED=${seed})`)
  return { seed, random: seededRandom(seed) }
}

/** Scrub passes each running node has completed (from /health). */
export async function scrubPasses(cluster: TestCluster): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  for (const node of cluster.nodes.filter((n) => n.process !== null)) {
    const health = (await (await fetch(`${node.url}/health`)).json()) as { workers: { name: string; detail: { passes?: number } }[] }
    out.set(node.id, Number(health.workers.find((w) => w.name === 'scrub')?.detail.passes ?? 0))
  }
  return out
}

/** Starts a scrub pass on every running node and waits until each has completed one more. */
export async function scrubEverywhere(cluster: TestCluster, timeoutMs: number): Promise<void> {
  const before = await scrubPasses(cluster)
  for (const node of cluster.nodes.filter((n) => n.process !== null)) {
    const answer = await fetch(`${node.url}/v1/scrub`, { method: 'POST' })
    assert.equal(answer.status, 202)
  }
  await waitFor('a scrub pass on every node', async () => {
    const now = await scrubPasses(cluster)
    return [...before].every(([id, passes]) => (now.get(id) ?? 0) >= passes + 1)
  }, timeoutMs, 300)
}

export async function queueEmpty(catalog: Catalog): Promise<boolean> {
  const stats = await catalog.repairs.stats()
  return stats.ready + stats.leased + stats.delayed === 0
}

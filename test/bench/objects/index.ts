// Object layer benchmark (issue 5), in one run on this machine:
//   - a `blobfs up` cluster (12 node processes in 4 racks, fdatasync): PUT and GET
//     of a 1 GiB object through the object layer; time to first byte of 4 KiB and
//     1 MiB objects (p50/p99); 4 KiB PUTs/s and GETs/s with 32 concurrent clients;
//   - the physical ceiling: `dd` of 1 GiB to the same disk with conv=fdatasync
//     (blobfs writes 1.5x the object's bytes: 8 data + 4 parity chunks);
//   - where PUT time goes: encode + checksums alone in-process; the object layer
//     over in-memory nodes (catalog, no network, no fsync); over node processes
//     with --sync none (network, no fsync); and the full path above.
// npm run bench -- objects [--quick] [--json]
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Readable } from 'node:stream'
import { openCluster, type Cluster } from '../../../src/cli/cluster.ts'
import { openCatalog } from '../../../src/catalog/catalog.ts'
import { startEmbeddedCatalog } from '../../../src/catalog/embedded.ts'
import { checksumTree } from '../../../src/codec/checksum.ts'
import { MemoryChunkStore } from '../../../src/cluster/memory-store.ts'
import { units } from '../../../src/limits.ts'
import { objectStoreConfig } from '../../../src/objects/config.ts'
import { ObjectStore } from '../../../src/objects/object-store.ts'
import { stripeCodec } from '../../../src/objects/stripe-io.ts'
import type { ObjectLayer } from '../../../src/objects/types.ts'
import { startUp } from '../../support/up.ts'
import { emitJson, median, parseBenchArgs, percentile, printTable, type Figures } from '../report.ts'

const options = parseBenchArgs()
const MiB = units.MiB
const bigBytes = (options.quick ? 256 : 1024) * MiB
const reps = options.quick ? 1 : 3
const ttfbSamples = options.quick ? 50 : 200
const smallOps = options.quick ? 500 : 3000
const clients = 32
const pattern = randomBytes(64 * MiB)

function* body(sizeBytes: number, pieceBytes = 1 * MiB): Generator<Buffer> {
  for (let offset = 0; offset < sizeBytes; offset += pieceBytes) {
    const at = offset % pattern.length
    yield pattern.subarray(at, at + Math.min(pieceBytes, sizeBytes - offset, pattern.length - at))
  }
}

async function drain(stream: Readable): Promise<number> {
  let bytes = 0
  for await (const chunk of stream) bytes += (chunk as Buffer).length
  return bytes
}

async function inParallel(width: number, total: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < total) await fn(next++)
  }))
}

const mbps = (bytes: number, ms: number) => bytes / MiB / (ms / 1000)

async function putMbps(objects: ObjectLayer, bucket: string, key: string): Promise<number> {
  const samples: number[] = []
  for (let i = 0; i < reps; i++) {
    const started = performance.now()
    await objects.putObject(bucket, key, Readable.from(body(bigBytes)))
    samples.push(mbps(bigBytes, performance.now() - started))
  }
  return median(samples)
}

async function getMbps(objects: ObjectLayer, bucket: string, key: string): Promise<number> {
  const samples: number[] = []
  for (let i = 0; i < reps; i++) {
    const started = performance.now()
    const read = await objects.getObject(bucket, key)
    const bytes = await drain(read.body)
    samples.push(mbps(bytes, performance.now() - started))
  }
  return median(samples)
}

async function ttfb(objects: ObjectLayer, bucket: string, sizeBytes: number): Promise<{ p50: number; p99: number }> {
  const keys = Array.from({ length: 20 }, (_, i) => `ttfb-${sizeBytes}-${i}`)
  for (const key of keys) await objects.putObject(bucket, key, Readable.from(body(sizeBytes)))
  const samples: number[] = []
  for (let i = 0; i < ttfbSamples; i++) {
    const started = performance.now()
    const read = await objects.getObject(bucket, keys[i % keys.length]!)
    const first = await new Promise<number>((resolve, reject) => {
      read.body.once('data', () => resolve(performance.now() - started))
      read.body.once('error', reject)
    })
    samples.push(first)
    read.body.resume()
    await new Promise((r) => read.body.once('end', r))
  }
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) }
}

async function smallOpsPerSecond(objects: ObjectLayer, bucket: string): Promise<{ puts: number; gets: number }> {
  const data = pattern.subarray(0, 4096)
  let started = performance.now()
  await inParallel(clients, smallOps, async (i) => {
    await objects.putObject(bucket, `small/${i}`, Readable.from([data]))
  })
  const puts = smallOps / ((performance.now() - started) / 1000)
  started = performance.now()
  await inParallel(clients, smallOps, async (i) => {
    await drain((await objects.getObject(bucket, `small/${i}`)).body)
  })
  const gets = smallOps / ((performance.now() - started) / 1000)
  return { puts, gets }
}

function ddMbps(dir: string): number {
  const file = join(dir, 'dd.bin')
  const started = performance.now()
  execFileSync('dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${bigBytes / MiB}`, 'conv=fdatasync'], { stdio: 'ignore' })
  const result = mbps(bigBytes, performance.now() - started)
  rmSync(file, { force: true })
  return result
}

/** Encode + page checksums of every chunk, in process: the CPU floor of a PUT. */
async function encodeOnlyMbps(): Promise<number> {
  const codec = stripeCodec(8, 4)
  const stripe = 16 * MiB
  const shards = Array.from({ length: 12 }, () => Buffer.alloc(stripe / 8))
  const stripes = bigBytes / stripe
  const started = performance.now()
  for (let s = 0; s < stripes; s++) {
    for (let i = 0; i < 8; i++) pattern.copy(shards[i]!, 0, (i * 2 * MiB) % pattern.length, (i * 2 * MiB) % pattern.length + 2 * MiB)
    await codec.encode(shards)
    for (const shard of shards) checksumTree(shard)
  }
  return mbps(bigBytes, performance.now() - started)
}

/** The object layer over in-memory nodes and a real (embedded) catalog: no network, no fsync. */
async function memoryNodesMbps(root: string): Promise<number> {
  const embedded = await startEmbeddedCatalog({ dataDir: join(root, 'memory-catalog') })
  const catalog = await openCatalog(embedded.url)
  try {
    const ids = Array.from({ length: 12 }, (_, i) => `node-${i}`)
    const objects = new ObjectStore({
      catalog,
      store: new MemoryChunkStore(ids),
      candidates: () => ids.map((id, i) => ({ id, rack: `r${i % 4}`, freeBytes: 1e15 })),
      config: objectStoreConfig(),
    })
    await objects.createBucket('bench', 'bench')
    const samples: number[] = []
    for (let i = 0; i < reps; i++) {
      const started = performance.now()
      await objects.putObject('bench', 'big', Readable.from(body(bigBytes)))
      samples.push(mbps(bigBytes, performance.now() - started))
      await objects.deleteObject('bench', 'big')
    }
    return median(samples)
  } finally {
    await catalog.close()
    await embedded.stop()
  }
}

async function withUp<T>(root: string, name: string, args: string[], body: (cluster: Cluster) => Promise<T>): Promise<T> {
  const up = await startUp(join(root, name), ['--block-size', '1GiB', ...args])
  try {
    const cluster = await openCluster(up.cluster.catalogUrl)
    try {
      return await body(cluster)
    } finally {
      await cluster.close()
    }
  } finally {
    await up.stop()
  }
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'blobfs-bench-objects-'))
  try {
    const figures: Figures = {}
    figures.dd_fdatasync_mbps = ddMbps(root)
    figures.encode_checksum_only_mbps = await encodeOnlyMbps()
    figures.put_memory_nodes_mbps = await memoryNodesMbps(root)
    figures.put_nodes_sync_none_mbps = await withUp(root, 'nosync', ['--sync', 'none'], async ({ objects }) => {
      await objects.createBucket('bench', 'bench')
      return putMbps(objects, 'bench', 'big')
    })
    await withUp(root, 'cluster', [], async ({ objects }) => {
      await objects.createBucket('bench', 'bench')
      figures.put_1gib_mbps = await putMbps(objects, 'bench', 'big')
      figures.get_1gib_mbps = await getMbps(objects, 'bench', 'big')
      const small = await ttfb(objects, 'bench', 4096)
      figures.ttfb_4kib_p50_ms = small.p50
      figures.ttfb_4kib_p99_ms = small.p99
      const medium = await ttfb(objects, 'bench', MiB)
      figures.ttfb_1mib_p50_ms = medium.p50
      figures.ttfb_1mib_p99_ms = medium.p99
      const ops = await smallOpsPerSecond(objects, 'bench')
      figures.put_4kib_ops = ops.puts
      figures.get_4kib_ops = ops.gets
    })
    figures.object_bytes = bigBytes
    printTable(`Object layer, ${bigBytes / MiB} MiB object, 12 nodes in 4 racks on one machine (median of ${reps})`, ['measure', 'value'], [
      ['PUT through the object layer (MB/s of object data)', figures.put_1gib_mbps as number],
      ['GET through the object layer (MB/s)', figures.get_1gib_mbps as number],
      ['dd to the same disk, conv=fdatasync (MB/s; blobfs writes 1.5x)', figures.dd_fdatasync_mbps as number],
      ['4 KiB GET time to first byte p50 / p99 (ms)', `${(figures.ttfb_4kib_p50_ms as number).toFixed(2)} / ${(figures.ttfb_4kib_p99_ms as number).toFixed(2)}`],
      ['1 MiB GET time to first byte p50 / p99 (ms)', `${(figures.ttfb_1mib_p50_ms as number).toFixed(2)} / ${(figures.ttfb_1mib_p99_ms as number).toFixed(2)}`],
      [`4 KiB PUTs/s, ${clients} clients (inline in the catalog)`, figures.put_4kib_ops as number],
      [`4 KiB GETs/s, ${clients} clients`, figures.get_4kib_ops as number],
    ])
    printTable('Where PUT time goes (MB/s of object data; each row adds one cost)', ['path', 'MB/s'], [
      ['encode RS(8,4) + CRC32C page checksums, in process', figures.encode_checksum_only_mbps as number],
      ['+ object layer and catalog commit, in-memory nodes', figures.put_memory_nodes_mbps as number],
      ['+ HTTP to 12 node processes, block log without fsync', figures.put_nodes_sync_none_mbps as number],
      ['+ fdatasync on every node (the real path)', figures.put_1gib_mbps as number],
    ])
    emitJson(options, figures)
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
}

await main()

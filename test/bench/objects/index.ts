// Object layer benchmark (issue 5), in one run on this machine:
//   - a `blobfs up` cluster (12 node processes in 4 racks, fdatasync): PUT and GET
//     of a 1 GiB object through the object layer; time to first byte of 4 KiB and
//     1 MiB objects (p50/p99); 4 KiB PUTs/s and GETs/s with 32 concurrent clients;
//   - the physical ceiling: `dd` of 1 GiB to the same disk with conv=fdatasync,
//     before and after the cluster runs (blobfs writes 1.5x the object's bytes:
//     8 data + 4 parity chunks);
//   - where PUT time goes: MD5, CRC32C, RS encode and page checksums alone, in
//     process; the object layer over in-memory nodes (catalog, no network, no
//     fsync); over node processes with --sync none (network, no fsync); the full
//     path above; and the catalog commit timed on its own.
// npm run bench -- objects [--quick] [--json]
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Readable } from 'node:stream'
import { openCluster, type Cluster } from '../../../src/cli/cluster.ts'
import { openCatalog } from '../../../src/catalog/catalog.ts'
import { startEmbeddedCatalog } from '../../../src/catalog/embedded.ts'
import { checksumTree, crc32c } from '../../../src/codec/checksum.ts'
import { MemoryChunkStore } from '../../../src/cluster/memory-store.ts'
import { units } from '../../../src/limits.ts'
import { objectStoreConfig } from '../../../src/objects/config.ts'
import { ObjectStore } from '../../../src/objects/object-store.ts'
import { stripeCodec } from '../../../src/objects/stripe-io.ts'
import type { ObjectLayer } from '../../../src/objects/types.ts'
import { startUp } from '../../support/up.ts'
import { emitJson, formatNumber, median, parseBenchArgs, percentile, printTable, type Figures } from '../report.ts'

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
    if (bytes !== bigBytes) throw new Error(`GET returned ${bytes} of ${bigBytes} bytes`)
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
    // Pull through the async iterator: an inline object's stream may end before a
    // listener attached after the first 'data' event would ever see 'end'.
    const chunks = read.body[Symbol.asyncIterator]()
    const first = await chunks.next()
    if (first.done) throw new Error(`GET of ${sizeBytes} bytes returned no data`)
    samples.push(performance.now() - started)
    let bytes = (first.value as Buffer).length
    for (let next = await chunks.next(); !next.done; next = await chunks.next()) bytes += (next.value as Buffer).length
    if (bytes !== sizeBytes) throw new Error(`GET returned ${bytes} of ${sizeBytes} bytes`)
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

/** Each CPU cost of a PUT alone, in process, in MB/s of object data (bigBytes through each). */
async function cpuCosts(): Promise<{ md5: number; crc32c: number; encode: number; pageChecksums: number }> {
  const stripe = 16 * MiB
  const stripes = bigBytes / stripe
  const time = async (fn: (s: number) => unknown): Promise<number> => {
    const started = performance.now()
    for (let s = 0; s < stripes; s++) await fn(s)
    return mbps(bigBytes, performance.now() - started)
  }
  const slice = (s: number) => pattern.subarray((s * stripe) % pattern.length, (s * stripe) % pattern.length + stripe)
  const md5 = createHash('md5')
  const md5Mbps = await time((s) => md5.update(slice(s)))
  md5.digest()
  let crc = 0
  const crcMbps = await time((s) => (crc = crc32c(slice(s), crc)))
  const codec = stripeCodec(8, 4)
  const shards = Array.from({ length: 12 }, () => Buffer.alloc(stripe / 8))
  const encodeMbps = await time(async (s) => {
    const data = slice(s)
    for (let i = 0; i < 8; i++) data.copy(shards[i]!, 0, i * 2 * MiB, (i + 1) * 2 * MiB)
    await codec.encode(shards)
  })
  // 12 chunks per stripe: the page CRCs cover 1.5x the object's bytes.
  const pageMbps = await time(() => {
    for (const shard of shards) checksumTree(shard)
  })
  return { md5: md5Mbps, crc32c: crcMbps, encode: encodeMbps, pageChecksums: pageMbps }
}

/**
 * The object layer over in-memory nodes (which verify and copy every chunk, as a
 * node does) and a real embedded catalog: no network, no fsync. A fresh store per
 * repetition, so at most one object's chunks are held.
 */
async function memoryNodes(root: string): Promise<{ put: number; get: number }> {
  const embedded = await startEmbeddedCatalog({ dataDir: join(root, 'memory-catalog') })
  const catalog = await openCatalog(embedded.url)
  try {
    const ids = Array.from({ length: 12 }, (_, i) => `node-${i}`)
    const puts: number[] = []
    const gets: number[] = []
    for (let i = 0; i < reps; i++) {
      const objects = new ObjectStore({
        catalog,
        store: new MemoryChunkStore(ids),
        candidates: () => ids.map((id, n) => ({ id, rack: `r${n % 4}`, freeBytes: 1e15 })),
        config: objectStoreConfig(),
      })
      if (i === 0) await objects.createBucket('bench', 'bench')
      let started = performance.now()
      await objects.putObject('bench', 'big', Readable.from(body(bigBytes)))
      puts.push(mbps(bigBytes, performance.now() - started))
      started = performance.now()
      const bytes = await drain((await objects.getObject('bench', 'big')).body)
      if (bytes !== bigBytes) throw new Error(`GET returned ${bytes} of ${bigBytes} bytes`)
      gets.push(mbps(bytes, performance.now() - started))
      await objects.deleteObject('bench', 'big')
    }
    return { put: median(puts), get: median(gets) }
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

/** Times every catalog commit made through `cluster` (the last step of a PUT). */
function timeCommits(cluster: Cluster): number[] {
  const samples: number[] = []
  const objects = cluster.catalog.objects
  const commit = objects.commit.bind(objects)
  objects.commit = async (...args: Parameters<typeof commit>) => {
    const started = performance.now()
    try {
      return await commit(...args)
    } finally {
      samples.push(performance.now() - started)
    }
  }
  return samples
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'blobfs-bench-objects-'))
  try {
    const figures: Figures = {}
    const ddBefore = ddMbps(root)
    const cpu = await cpuCosts()
    figures.md5_only_mbps = cpu.md5
    figures.crc32c_object_only_mbps = cpu.crc32c
    figures.encode_only_mbps = cpu.encode
    figures.page_checksums_only_mbps = cpu.pageChecksums
    const memory = await memoryNodes(root)
    figures.put_memory_nodes_mbps = memory.put
    figures.get_memory_nodes_mbps = memory.get
    const nosync = await withUp(root, 'nosync', ['--sync', 'none'], async ({ objects }) => {
      await objects.createBucket('bench', 'bench')
      return { put: await putMbps(objects, 'bench', 'big'), get: await getMbps(objects, 'bench', 'big') }
    })
    figures.put_nodes_sync_none_mbps = nosync.put
    figures.get_nodes_sync_none_mbps = nosync.get
    await withUp(root, 'cluster', [], async (cluster) => {
      const { objects } = cluster
      await objects.createBucket('bench', 'bench')
      const commits = timeCommits(cluster)
      figures.put_1gib_mbps = await putMbps(objects, 'bench', 'big')
      figures.catalog_commit_1gib_ms = median(commits.splice(0))
      figures.get_1gib_mbps = await getMbps(objects, 'bench', 'big')
      const small = await ttfb(objects, 'bench', 4096)
      figures.ttfb_4kib_p50_ms = small.p50
      figures.ttfb_4kib_p99_ms = small.p99
      const medium = await ttfb(objects, 'bench', MiB)
      figures.ttfb_1mib_p50_ms = medium.p50
      figures.ttfb_1mib_p99_ms = medium.p99
      commits.splice(0)
      const ops = await smallOpsPerSecond(objects, 'bench')
      figures.catalog_commit_4kib_p50_ms = percentile(commits, 50)
      figures.put_4kib_ops = ops.puts
      figures.get_4kib_ops = ops.gets
    })
    const ddAfter = ddMbps(root)
    figures.dd_fdatasync_before_mbps = ddBefore
    figures.dd_fdatasync_after_mbps = ddAfter
    figures.dd_fdatasync_mbps = (ddBefore + ddAfter) / 2
    // blobfs writes 1.5x the object's bytes (8 data + 4 parity chunks)
    figures.put_ceiling_mbps = (figures.dd_fdatasync_mbps as number) / 1.5
    figures.put_vs_ceiling_ratio = (figures.put_1gib_mbps as number) / (figures.put_ceiling_mbps as number)
    figures.object_bytes = bigBytes
    figures.repetitions = reps
    const f = (name: string) => figures[name] as number
    printTable(`Object layer, ${bigBytes / MiB} MiB object, 12 nodes in 4 racks on one machine (median of ${reps})`, ['measure', 'value'], [
      ['PUT through the object layer (MB/s of object data)', f('put_1gib_mbps')],
      ['GET through the object layer (MB/s)', f('get_1gib_mbps')],
      ['dd to the same disk, conv=fdatasync, before / after (MB/s)', `${formatNumber(ddBefore)} / ${formatNumber(ddAfter)}`],
      ['PUT ceiling: dd / 1.5 (blobfs writes 8 data + 4 parity chunks)', f('put_ceiling_mbps')],
      ['PUT / ceiling', f('put_vs_ceiling_ratio')],
      ['4 KiB GET time to first byte p50 / p99 (ms)', `${formatNumber(f('ttfb_4kib_p50_ms'))} / ${formatNumber(f('ttfb_4kib_p99_ms'))}`],
      ['1 MiB GET time to first byte p50 / p99 (ms)', `${formatNumber(f('ttfb_1mib_p50_ms'))} / ${formatNumber(f('ttfb_1mib_p99_ms'))}`],
      [`4 KiB PUTs/s, ${clients} clients (inline in the catalog)`, f('put_4kib_ops')],
      [`4 KiB GETs/s, ${clients} clients`, f('get_4kib_ops')],
    ])
    printTable('Where PUT time goes (MB/s of object data; seconds per GiB)', ['cost', 'MB/s', 's/GiB'], [
      ['MD5 of the object (the etag), alone', f('md5_only_mbps'), 1024 / f('md5_only_mbps')],
      ['CRC32C of the object, alone', f('crc32c_object_only_mbps'), 1024 / f('crc32c_object_only_mbps')],
      ['RS(8,4) encode, alone', f('encode_only_mbps'), 1024 / f('encode_only_mbps')],
      ['CRC32C page checksums of the 12 chunks (1.5x the bytes), alone', f('page_checksums_only_mbps'), 1024 / f('page_checksums_only_mbps')],
      ['PUT, object layer + catalog, in-memory nodes', f('put_memory_nodes_mbps'), 1024 / f('put_memory_nodes_mbps')],
      ['PUT, + HTTP to 12 node processes, block log without fsync', f('put_nodes_sync_none_mbps'), 1024 / f('put_nodes_sync_none_mbps')],
      ['PUT, + fdatasync on every node (the real path)', f('put_1gib_mbps'), 1024 / f('put_1gib_mbps')],
    ])
    printTable('Other figures', ['measure', 'value'], [
      ['catalog commit of the big object (ms, median)', f('catalog_commit_1gib_ms')],
      ['catalog commit of a 4 KiB inline object under 32 clients (ms, p50)', f('catalog_commit_4kib_p50_ms')],
      ['GET over in-memory nodes (MB/s)', f('get_memory_nodes_mbps')],
      ['GET over node processes started with --sync none (MB/s)', f('get_nodes_sync_none_mbps')],
    ])
    emitJson(options, figures)
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
}

await main()

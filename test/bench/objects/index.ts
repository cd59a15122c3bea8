// Object layer benchmark (issue 5), in one run on this machine:
//   - a `blobfs up` cluster (12 node processes in 4 racks, fdatasync): PUT and GET
//     of a 1 GiB object through the object layer; time to first byte of 4 KiB and
//     1 MiB objects (p50/p99); 4 KiB PUTs/s and GETs/s with 32 concurrent clients;
//   - the physical ceiling: `dd` of 1 GiB to the same disk with conv=fdatasync,
//     before and after the cluster runs (blobfs writes 1.5x the object's bytes:
//     8 data + 4 parity chunks);
//   - where the time goes: MD5, CRC32C, RS encode and page checksums alone, in
//     process; the object layer over in-memory nodes; then, on node processes
//     with --sync none and with fdatasync, CPU seconds per GiB of this process
//     (object layer + HTTP client), of `blobfs up` (the embedded catalog) and of
//     the 12 nodes, and the nodes' summed fdatasync time (their /metrics); the
//     catalog commit timed on its own. CPU seconds hold on a shared machine where
//     wall time does not. The idle cluster is watched first: its own background
//     CPU rate (heartbeats, queue polls) runs during a PUT too, and the nodes' CPU
//     beyond it is reported beside the raw figure. Every catalog lookup of the
//     time-to-first-byte GETs is timed, so the catalog's share of it shows.
// npm run bench -- objects [--quick] [--json]
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
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
import { childrenRunning, cpuSecondsOf } from '../../support/processes.ts'
import { startUp } from '../../support/up.ts'
import { emitJson, formatNumber, median, parseBenchArgs, percentile, printTable, type Figures } from '../report.ts'
import { timeCatalogCalls } from './shared.ts'

const options = parseBenchArgs()
const MiB = units.MiB
const bigBytes = (options.quick ? 256 : 1024) * MiB
const reps = options.quick ? 1 : 3
const ttfbSamples = options.quick ? 50 : 200
const smallOps = options.quick ? 500 : 3000
const clients = 32
/** Seconds the idle cluster is watched before the big runs: its background CPU rate. */
const backgroundWindowS = options.quick ? 5 : 15
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
const perGiB = (seconds: number, bytes: number) => seconds / (bytes / units.GiB)

// ---- CPU and wait accounting: on a shared 2-core machine wall time says how loaded
// the machine was; CPU seconds per GiB say what each part of the path costs.

/** This process's CPU seconds, every thread (libuv threadpool included). */
function ownCpuSeconds(): number {
  const usage = process.cpuUsage()
  return (usage.user + usage.system) / 1e6
}

interface UpCluster {
  cluster: Cluster
  upPid: number
  nodePids: number[]
  nodeUrls: string[]
}

interface Costs {
  wallS: number
  /** The benchmark process: object layer, HTTP client, MD5/CRC32C/encode. */
  clientCpuS: number
  /** The `blobfs up` process: the embedded PGlite catalog. */
  catalogCpuS: number
  /** The 12 node processes together. */
  nodesCpuS: number
  /** fdatasync time summed over the nodes (blobfs_node_fsync_seconds). */
  fsyncS: number
}

async function metricSum(urls: string[], name: string): Promise<number> {
  let total = 0
  for (const url of urls) {
    const text = await (await fetch(`${url}/metrics`)).text()
    for (const line of text.split('\n')) if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) total += Number(line.split(' ').pop())
  }
  return total
}

async function snapshot(up: UpCluster): Promise<Costs> {
  return {
    wallS: performance.now() / 1000,
    clientCpuS: ownCpuSeconds(),
    catalogCpuS: cpuSecondsOf(up.upPid),
    nodesCpuS: up.nodePids.reduce((sum, pid) => sum + cpuSecondsOf(pid), 0),
    fsyncS: await metricSum(up.nodeUrls, 'blobfs_node_fsync_seconds_sum'),
  }
}

async function costsOf(up: UpCluster, fn: () => Promise<void>): Promise<Costs> {
  const before = await snapshot(up)
  await fn()
  const after = await snapshot(up)
  return {
    wallS: after.wallS - before.wallS,
    clientCpuS: after.clientCpuS - before.clientCpuS,
    catalogCpuS: after.catalogCpuS - before.catalogCpuS,
    nodesCpuS: after.nodesCpuS - before.nodesCpuS,
    fsyncS: after.fsyncS - before.fsyncS,
  }
}

/**
 * CPU seconds per second the idle cluster spends on its own (heartbeats, registry
 * refreshes, repair and GC queue polls of 12 nodes, and the catalog answering them):
 * it runs during a PUT too, so a PUT's CPU per GiB includes it times the wall time.
 */
async function backgroundRate(up: UpCluster): Promise<{ nodesCpuSPerS: number; catalogCpuSPerS: number }> {
  const before = await snapshot(up)
  await new Promise((resolve) => setTimeout(resolve, backgroundWindowS * 1000))
  const after = await snapshot(up)
  const wallS = after.wallS - before.wallS
  return { nodesCpuSPerS: (after.nodesCpuS - before.nodesCpuS) / wallS, catalogCpuSPerS: (after.catalogCpuS - before.catalogCpuS) / wallS }
}

/** `reps` PUTs (then GETs) of the big object: median MB/s, and costs per GiB over all of them. */
async function bigRuns(up: UpCluster, bucket: string): Promise<{ put: number; get: number; putCosts: Costs; getCosts: Costs }> {
  const { objects } = up.cluster
  const puts: number[] = []
  const gets: number[] = []
  const add = (a: Costs, b: Costs): Costs => ({
    wallS: a.wallS + b.wallS,
    clientCpuS: a.clientCpuS + b.clientCpuS,
    catalogCpuS: a.catalogCpuS + b.catalogCpuS,
    nodesCpuS: a.nodesCpuS + b.nodesCpuS,
    fsyncS: a.fsyncS + b.fsyncS,
  })
  let putCosts: Costs = { wallS: 0, clientCpuS: 0, catalogCpuS: 0, nodesCpuS: 0, fsyncS: 0 }
  let getCosts = putCosts
  for (let i = 0; i < reps; i++) {
    const put = await costsOf(up, async () => {
      await objects.putObject(bucket, 'big', Readable.from(body(bigBytes)))
    })
    puts.push(mbps(bigBytes, put.wallS * 1000))
    putCosts = add(putCosts, put)
  }
  for (let i = 0; i < reps; i++) {
    const get = await costsOf(up, async () => {
      const bytes = await drain((await objects.getObject(bucket, 'big')).body)
      if (bytes !== bigBytes) throw new Error(`GET returned ${bytes} of ${bigBytes} bytes`)
    })
    gets.push(mbps(bigBytes, get.wallS * 1000))
    getCosts = add(getCosts, get)
  }
  const scale = (c: Costs): Costs => ({
    wallS: perGiB(c.wallS, reps * bigBytes),
    clientCpuS: perGiB(c.clientCpuS, reps * bigBytes),
    catalogCpuS: perGiB(c.catalogCpuS, reps * bigBytes),
    nodesCpuS: perGiB(c.nodesCpuS, reps * bigBytes),
    fsyncS: perGiB(c.fsyncS, reps * bigBytes),
  })
  return { put: median(puts), get: median(gets), putCosts: scale(putCosts), getCosts: scale(getCosts) }
}

async function ttfb(objects: ObjectLayer, bucket: string, sizeBytes: number, lookups: number[]): Promise<{ p50: number; p99: number; lookupP50: number; lookupP99: number }> {
  const keys = Array.from({ length: 20 }, (_, i) => `ttfb-${sizeBytes}-${i}`)
  for (const key of keys) await objects.putObject(bucket, key, Readable.from(body(sizeBytes)))
  const samples: number[] = []
  lookups.splice(0)
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
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), lookupP50: percentile(lookups, 50), lookupP99: percentile(lookups, 99) }
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

/** Each CPU cost of a PUT alone, in process: MB/s of object data and CPU s per GiB. */
async function cpuCosts(): Promise<Record<'md5' | 'crc32c' | 'encode' | 'pageChecksums', { mbps: number; cpuSPerGiB: number }>> {
  const stripe = 16 * MiB
  const stripes = bigBytes / stripe
  const time = async (fn: (s: number) => unknown) => {
    const started = performance.now()
    const cpu = ownCpuSeconds()
    for (let s = 0; s < stripes; s++) await fn(s)
    return { mbps: mbps(bigBytes, performance.now() - started), cpuSPerGiB: perGiB(ownCpuSeconds() - cpu, bigBytes) }
  }
  const slice = (s: number) => pattern.subarray((s * stripe) % pattern.length, (s * stripe) % pattern.length + stripe)
  const md5 = createHash('md5')
  const md5Cost = await time((s) => md5.update(slice(s)))
  md5.digest()
  let crc = 0
  const crcCost = await time((s) => (crc = crc32c(slice(s), crc)))
  const codec = stripeCodec(8, 4)
  const shards = Array.from({ length: 12 }, () => Buffer.alloc(stripe / 8))
  const encodeCost = await time(async (s) => {
    const data = slice(s)
    for (let i = 0; i < 8; i++) data.copy(shards[i]!, 0, i * 2 * MiB, (i + 1) * 2 * MiB)
    await codec.encode(shards)
  })
  // 12 chunks per stripe: the page CRCs cover 1.5x the object's bytes.
  const pageCost = await time(() => {
    for (const shard of shards) checksumTree(shard)
  })
  return { md5: md5Cost, crc32c: crcCost, encode: encodeCost, pageChecksums: pageCost }
}

/**
 * The object layer over in-memory nodes (which verify and copy every chunk, as a
 * node does) and a real embedded catalog: no network, no fsync. A fresh store per
 * repetition, so at most one object's chunks are held. CPU is this process's,
 * the in-process catalog included.
 */
async function memoryNodes(root: string): Promise<{ put: number; get: number; putCpuSPerGiB: number; getCpuSPerGiB: number }> {
  const embedded = await startEmbeddedCatalog({ dataDir: join(root, 'memory-catalog') })
  const catalog = await openCatalog(embedded.url)
  try {
    const ids = Array.from({ length: 12 }, (_, i) => `node-${i}`)
    const puts: number[] = []
    const gets: number[] = []
    let putCpu = 0
    let getCpu = 0
    for (let i = 0; i < reps; i++) {
      const objects = new ObjectStore({
        catalog,
        store: new MemoryChunkStore(ids),
        candidates: () => ids.map((id, n) => ({ id, rack: `r${n % 4}`, freeBytes: 1e15 })),
        config: objectStoreConfig(),
      })
      if (i === 0) await objects.createBucket('bench', 'bench')
      let started = performance.now()
      let cpu = ownCpuSeconds()
      await objects.putObject('bench', 'big', Readable.from(body(bigBytes)))
      puts.push(mbps(bigBytes, performance.now() - started))
      putCpu += ownCpuSeconds() - cpu
      started = performance.now()
      cpu = ownCpuSeconds()
      const bytes = await drain((await objects.getObject('bench', 'big')).body)
      if (bytes !== bigBytes) throw new Error(`GET returned ${bytes} of ${bigBytes} bytes`)
      gets.push(mbps(bytes, performance.now() - started))
      getCpu += ownCpuSeconds() - cpu
      await objects.deleteObject('bench', 'big')
    }
    return { put: median(puts), get: median(gets), putCpuSPerGiB: perGiB(putCpu, reps * bigBytes), getCpuSPerGiB: perGiB(getCpu, reps * bigBytes) }
  } finally {
    await catalog.close()
    await embedded.stop()
  }
}

async function withUp<T>(root: string, name: string, args: string[], run: (up: UpCluster) => Promise<T>): Promise<T> {
  const up = await startUp(join(root, name), ['--block-size', '1GiB', ...args])
  try {
    const cluster = await openCluster(up.cluster.catalogUrl)
    try {
      const nodePids = childrenRunning(up.child.pid!, 'node')
      if (nodePids.length !== 12) throw new Error(`found ${nodePids.length} node processes under blobfs up, expected 12`)
      const nodeUrls = (await cluster.catalog.nodes.list()).map((n) => n.address)
      return await run({ cluster, upPid: up.child.pid!, nodePids, nodeUrls })
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
    figures.load_average_1m_at_start = loadavg()[0]!
    const ddBefore = ddMbps(root)
    const cpu = await cpuCosts()
    for (const [name, cost] of Object.entries(cpu)) {
      figures[`${name}_only_mbps`] = cost.mbps
      figures[`${name}_only_cpu_s_per_gib`] = cost.cpuSPerGiB
    }
    const memory = await memoryNodes(root)
    figures.put_memory_nodes_mbps = memory.put
    figures.get_memory_nodes_mbps = memory.get
    figures.put_memory_nodes_cpu_s_per_gib = memory.putCpuSPerGiB
    figures.get_memory_nodes_cpu_s_per_gib = memory.getCpuSPerGiB
    const record = (prefix: string, costs: Costs, background: { nodesCpuSPerS: number }) => {
      figures[`${prefix}_wall_s_per_gib`] = costs.wallS
      figures[`${prefix}_client_cpu_s_per_gib`] = costs.clientCpuS
      figures[`${prefix}_catalog_cpu_s_per_gib`] = costs.catalogCpuS
      figures[`${prefix}_nodes_cpu_s_per_gib`] = costs.nodesCpuS
      // What the nodes spent beyond their idle background over the same wall time.
      figures[`${prefix}_nodes_net_cpu_s_per_gib`] = costs.nodesCpuS - background.nodesCpuSPerS * costs.wallS
      figures[`${prefix}_fsync_s_per_gib`] = costs.fsyncS
    }
    await withUp(root, 'nosync', ['--sync', 'none'], async (up) => {
      await up.cluster.objects.createBucket('bench', 'bench')
      const background = await backgroundRate(up)
      figures.background_sync_none_nodes_cpu_s_per_s = background.nodesCpuSPerS
      figures.background_sync_none_catalog_cpu_s_per_s = background.catalogCpuSPerS
      const runs = await bigRuns(up, 'bench')
      figures.put_nodes_sync_none_mbps = runs.put
      figures.get_nodes_sync_none_mbps = runs.get
      record('put_sync_none', runs.putCosts, background)
      record('get_sync_none', runs.getCosts, background)
    })
    await withUp(root, 'cluster', [], async (up) => {
      const { objects } = up.cluster
      await objects.createBucket('bench', 'bench')
      const commits = timeCatalogCalls(up.cluster, 'commit')
      const lookups = timeCatalogCalls(up.cluster, 'lookup')
      const background = await backgroundRate(up)
      figures.background_nodes_cpu_s_per_s = background.nodesCpuSPerS
      figures.background_catalog_cpu_s_per_s = background.catalogCpuSPerS
      const runs = await bigRuns(up, 'bench')
      figures.put_1gib_mbps = runs.put
      figures.get_1gib_mbps = runs.get
      record('put', runs.putCosts, background)
      record('get', runs.getCosts, background)
      figures.catalog_commit_1gib_ms = median(commits.splice(0))
      const small = await ttfb(objects, 'bench', 4096, lookups)
      figures.ttfb_4kib_p50_ms = small.p50
      figures.ttfb_4kib_p99_ms = small.p99
      figures.ttfb_4kib_catalog_lookup_p50_ms = small.lookupP50
      figures.ttfb_4kib_catalog_lookup_p99_ms = small.lookupP99
      const medium = await ttfb(objects, 'bench', MiB, lookups)
      figures.ttfb_1mib_p50_ms = medium.p50
      figures.ttfb_1mib_p99_ms = medium.p99
      figures.ttfb_1mib_catalog_lookup_p50_ms = medium.lookupP50
      figures.ttfb_1mib_catalog_lookup_p99_ms = medium.lookupP99
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
    figures.load_average_1m_at_end = loadavg()[0]!
    const f = (name: string) => figures[name] as number
    printTable(`Object layer, ${bigBytes / MiB} MiB object, 12 nodes in 4 racks on one machine (median of ${reps})`, ['measure', 'value'], [
      ['PUT through the object layer (MB/s of object data)', f('put_1gib_mbps')],
      ['GET through the object layer (MB/s)', f('get_1gib_mbps')],
      ['dd to the same disk, conv=fdatasync, before / after (MB/s)', `${formatNumber(ddBefore)} / ${formatNumber(ddAfter)}`],
      ['PUT ceiling: dd / 1.5 (blobfs writes 8 data + 4 parity chunks)', f('put_ceiling_mbps')],
      ['PUT / ceiling', f('put_vs_ceiling_ratio')],
      ['4 KiB GET time to first byte p50 / p99 (ms)', `${formatNumber(f('ttfb_4kib_p50_ms'))} / ${formatNumber(f('ttfb_4kib_p99_ms'))}`],
      ['  of which the catalog lookup, p50 / p99 (ms)', `${formatNumber(f('ttfb_4kib_catalog_lookup_p50_ms'))} / ${formatNumber(f('ttfb_4kib_catalog_lookup_p99_ms'))}`],
      ['1 MiB GET time to first byte p50 / p99 (ms)', `${formatNumber(f('ttfb_1mib_p50_ms'))} / ${formatNumber(f('ttfb_1mib_p99_ms'))}`],
      ['  of which the catalog lookup, p50 / p99 (ms)', `${formatNumber(f('ttfb_1mib_catalog_lookup_p50_ms'))} / ${formatNumber(f('ttfb_1mib_catalog_lookup_p99_ms'))}`],
      [`4 KiB PUTs/s, ${clients} clients (inline in the catalog)`, f('put_4kib_ops')],
      [`4 KiB GETs/s, ${clients} clients`, f('get_4kib_ops')],
    ])
    printTable('Each CPU cost of a PUT alone, in process', ['cost', 'MB/s', 'CPU s/GiB'], [
      ['MD5 of the object (the etag)', f('md5_only_mbps'), f('md5_only_cpu_s_per_gib')],
      ['CRC32C of the object', f('crc32c_only_mbps'), f('crc32c_only_cpu_s_per_gib')],
      ['RS(8,4) encode', f('encode_only_mbps'), f('encode_only_cpu_s_per_gib')],
      ['CRC32C page checksums of the 12 chunks (1.5x the bytes)', f('pageChecksums_only_mbps'), f('pageChecksums_only_cpu_s_per_gib')],
      ['PUT over in-memory nodes (object layer + embedded catalog, one process)', f('put_memory_nodes_mbps'), f('put_memory_nodes_cpu_s_per_gib')],
      ['GET over in-memory nodes', f('get_memory_nodes_mbps'), f('get_memory_nodes_cpu_s_per_gib')],
    ])
    const row = (label: string, prefix: string, rate: string) => [
      label, f(rate), f(`${prefix}_wall_s_per_gib`), f(`${prefix}_client_cpu_s_per_gib`), f(`${prefix}_catalog_cpu_s_per_gib`), f(`${prefix}_nodes_cpu_s_per_gib`), f(`${prefix}_nodes_net_cpu_s_per_gib`), f(`${prefix}_fsync_s_per_gib`),
    ]
    printTable('Where the time goes on node processes (per GiB of object data)', ['path', 'MB/s', 'wall s', 'client CPU s', 'catalog CPU s', '12 nodes CPU s', 'of it beyond their idle background', 'fsync s (sum)'], [
      row('PUT, nodes --sync none', 'put_sync_none', 'put_nodes_sync_none_mbps'),
      row('PUT, nodes fdatasync (the real path)', 'put', 'put_1gib_mbps'),
      row('GET, nodes --sync none', 'get_sync_none', 'get_nodes_sync_none_mbps'),
      row('GET, nodes fdatasync', 'get', 'get_1gib_mbps'),
    ])
    printTable(`The idle cluster's own work, watched for ${backgroundWindowS} s before the big runs`, ['cluster', '12 nodes CPU s per s', 'catalog CPU s per s'], [
      ['nodes --sync none', f('background_sync_none_nodes_cpu_s_per_s'), f('background_sync_none_catalog_cpu_s_per_s')],
      ['nodes fdatasync', f('background_nodes_cpu_s_per_s'), f('background_catalog_cpu_s_per_s')],
    ])
    printTable('Catalog', ['measure', 'ms'], [
      ['commit of the big object (64 stripes x 12 chunk rows per GiB), median', f('catalog_commit_1gib_ms')],
      [`commit of a 4 KiB inline object under ${clients} clients, p50`, f('catalog_commit_4kib_p50_ms')],
    ])
    emitJson(options, figures)
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
}

await main()

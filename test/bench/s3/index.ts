// npm run bench -- s3 [--quick] [--json] [--object-layer PATH] [--only cluster|memory]
//
// The S3 side-port under load, in one run, through @aws-sdk/client-s3 (default
// settings): PUT and GET throughput of a 1 GiB object (multipart, 16 MiB parts, 8
// in parallel; GET as 8 parallel ranged reads), 4 KiB PUT and GET ops/s with 32
// concurrent clients, and 4 KiB GET time to first byte (p50/p99, one client),
// against the object layer called directly (no HTTP) and against s3rver (files on
// local disk). The gateway and the direct run are measured side by side: their
// large PUTs and GETs alternate, and the GET ratio is the median of back-to-back
// pairs. For each large PUT and GET the CPU time per GiB of every process is
// reported: the benchmark's own (the SDK client, or the object layer for the
// direct run), the server (gateway or s3rver), and on a real cluster the 12 nodes
// and the catalog.
//
// Two setups (setups.ts), each gateway beside direct:
//   - the real cluster, which the targets are judged on: `blobfs up` with 12
//     `blobfs node` processes in 4 racks, its embedded catalog and its `blobfs
//     gateway` process; the direct run is openCluster in the benchmark process over
//     the same cluster (the object layer's own throughput, as issue 5 measures it);
//   - in memory, no node processes: the gateway (serve.ts) over an in-process
//     object layer (--object-layer PATH, default object-store-layer.ts: ObjectStore
//     over 12 in-memory nodes and PostgreSQL), beside the same layer in the
//     benchmark process: the gateway's own cost when the layer under it is cheap.
// --only runs one of them (and s3rver with the cluster), for quick iterations.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { PerformanceObserver } from 'node:perf_hooks'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { seededRandom } from '../../../src/random.ts'
import { benchFlag, emitJson, type Figures, median, parseBenchArgs, percentile, printTable } from '../report.ts'
import { waitedChildrenCpuSeconds } from '../../support/processes.ts'
import { clusterSetup, inMemorySetup, type OtherCpu, type Setup } from './setups.ts'
import { inParallel, s3Target, startServer, type LaneReader, type Target } from './targets.ts'

const here = dirname(fileURLToPath(import.meta.url))
const options = parseBenchArgs()
const argv = process.argv.slice(2)
const flag = (name: string) => benchFlag(name, argv)
const objectLayerModule = resolve(flag('--object-layer') ?? join(here, 'object-store-layer.ts'))
const only = flag('--only')
if (only !== undefined && only !== 'cluster' && only !== 'memory') throw new Error(`--only must be cluster or memory, not ${only}`)

const MiB = 1024 * 1024
const largeBytes = options.quick ? 128 * MiB : 1024 * MiB
const partBytes = 16 * MiB
const partsInFlight = 8
const smallBytes = 4 * 1024
const smallClients = 32
const smallKeys = 1024
const opsDurationMs = options.quick ? 1500 : 5000
const ttfbSamples = options.quick ? 200 : 1000
const repetitions = options.quick ? 1 : 3

/** CPU milliseconds per GiB moved, by process. */
interface CpuPerGiB {
  /** The benchmark process: the SDK client, or for the direct run the object layer itself. */
  reader: number
  /** Of `reader`: garbage-collection pauses on the benchmark process's main thread. */
  readerGc: number
  /** The gateway or s3rver process (0 for the direct run: it has none). */
  server: number
  /** The storage node processes together. */
  nodes: number
  /** The catalog's process. */
  catalog: number
}

interface Large {
  mibps: number
  cpu: CpuPerGiB
}

interface Small {
  put4kOps: number
  get4kOps: number
  ttfbP50Ms: number
  ttfbP99Ms: number
}

interface Results extends Small {
  put: Large
  get: Large
}

async function opsPerSecond(clients: number, durationMs: number, op: (client: number, i: number) => Promise<void>): Promise<number> {
  let ops = 0
  const started = performance.now()
  const deadline = started + durationMs
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      for (let i = 0; performance.now() < deadline; i++) {
        await op(client, i)
        ops++
      }
    }),
  )
  return ops / ((performance.now() - started) / 1000)
}

/** Garbage-collection pauses of this process so far (ms), from the 'gc' performance entries. */
let gcPauseMs = 0
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcPauseMs += entry.duration
}).observe({ entryTypes: ['gc'] })
/** The 'gc' entries arrive on a later turn of the event loop: let the pending ones in. */
const gcSoFar = async () => {
  await new Promise((resolve) => setImmediate(resolve))
  return gcPauseMs
}

/** This process's CPU and that of its children it has waited for (the curl reads), µs. */
const processCpuUs = () => {
  const usage = process.cpuUsage()
  return usage.user + usage.system + waitedChildrenCpuSeconds() * 1e6
}

setFlagsFromString('--expose-gc')
const collectGarbage = runInNewContext('gc') as () => void

/**
 * Runs `work` (which moves largeBytes) and measures its throughput and every process's CPU per GiB.
 * A full garbage collection first: the benchmark process is the SDK client for the
 * gateway and s3rver and the object layer itself for the direct run, so no window
 * starts with the garbage another operation left (a direct PUT leaves hundreds of
 * MiB of buffers). Each operation's leftover is collected outside every window, for
 * every system alike. (Measured: this did not change the benchmark process's GC
 * pauses in the gateway's GET window, about 1 s per GiB before and after; those are
 * the SDK client's own, docs/benchmarks.md.)
 */
async function measured(otherCpuUs: () => Promise<OtherCpu>, countServer: boolean, work: () => Promise<void>): Promise<Large> {
  collectGarbage()
  const other0 = await otherCpuUs()
  const gc0 = await gcSoFar()
  const reader0 = processCpuUs()
  const started = performance.now()
  await work()
  const seconds = (performance.now() - started) / 1000
  const reader1 = processCpuUs()
  const gc1 = await gcSoFar()
  const other1 = await otherCpuUs()
  const msPerGiB = (us: number) => us / 1000 / (largeBytes / (1024 * MiB))
  return {
    mibps: largeBytes / MiB / seconds,
    cpu: {
      reader: msPerGiB(reader1 - reader0),
      readerGc: (gc1 - gc0) / (largeBytes / (1024 * MiB)),
      server: countServer ? msPerGiB(other1.gateway - other0.gateway) : 0,
      nodes: msPerGiB(other1.nodes - other0.nodes),
      catalog: msPerGiB(other1.catalog - other0.catalog),
    },
  }
}

const putLarge = (target: Target, part: Buffer) => () => target.putLarge('large.bin', largeBytes, part, partsInFlight)

/** The large GET: 16 MiB ranged reads, 8 in parallel, every byte received. */
const getLarge = (target: Target) => async () => {
  let received = 0
  await inParallel(Math.ceil(largeBytes / partBytes), partsInFlight, async (i) => {
    const bytes = await target.getRange('large.bin', i * partBytes, Math.min(largeBytes, (i + 1) * partBytes) - 1)
    received += bytes
  })
  if (received !== largeBytes) throw new Error(`${target.name}: read ${received} of ${largeBytes} bytes`)
}

/** The same large GET by curl: 8 lanes, each reading its 16 MiB ranges in turn. */
const curlGetLarge = (reader: LaneReader) => async () => {
  const received = await reader.readAll('large.bin', largeBytes, partBytes, partsInFlight)
  if (received !== largeBytes) throw new Error(`${reader.name}: read ${received} of ${largeBytes} bytes`)
}

async function smallOps(target: Target): Promise<Small> {
  await target.put('large.bin', Buffer.alloc(1)) // frees the large object's memory before the small ops
  const small = randomBytes(smallBytes)
  await inParallel(smallKeys, smallClients, (i) => target.put(`small/${i}`, small))
  const put4kOps = await opsPerSecond(smallClients, opsDurationMs, (client, i) => target.put(`small/${(client * 7919 + i) % smallKeys}`, small))
  const random = seededRandom(4096)
  const get4kOps = await opsPerSecond(smallClients, opsDurationMs, async () => {
    const { bytes } = await target.get(`small/${Math.floor(random() * smallKeys)}`)
    if (bytes !== smallBytes) throw new Error(`${target.name}: a 4 KiB GET returned ${bytes} bytes`)
  })
  const ttfb: number[] = []
  for (let i = 0; i < ttfbSamples; i++) ttfb.push((await target.get(`small/${i % smallKeys}`)).firstByteMs)
  return { put4kOps, get4kOps, ttfbP50Ms: percentile(ttfb, 50), ttfbP99Ms: percentile(ttfb, 99) }
}

/** The median of each figure over the rounds. */
function medianOf(rounds: Large[]): Large {
  const m = (pick: (l: Large) => number) => median(rounds.map(pick))
  return {
    mibps: m((l) => l.mibps),
    cpu: { reader: m((l) => l.cpu.reader), readerGc: m((l) => l.cpu.readerGc), server: m((l) => l.cpu.server), nodes: m((l) => l.cpu.nodes), catalog: m((l) => l.cpu.catalog) },
  }
}

const progress = (what: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)} load ${loadavg()[0]!.toFixed(1)}] ${what}\n`)
const cpuText = (c: CpuPerGiB) => `CPU ms/GiB: bench ${c.reader.toFixed(0)} (GC pauses ${c.readerGc.toFixed(0)}), server ${c.server.toFixed(0)}, nodes ${c.nodes.toFixed(0)}, catalog ${c.catalog.toFixed(0)}`

interface Comparison {
  description: string
  gw: Results
  direct: Results
  /** Gateway / direct large-GET throughput of each back-to-back pair. */
  pairRatios: number[]
  /** The gateway's large GET read by curl (median), and its ratio to the direct GET of each round. */
  curl: { get: Large; pairRatios: number[] } | null
  /** Requests the SDK repeated against the gateway. */
  retries: number
}

/**
 * The gateway and the object layer called directly, side by side: the large PUTs
 * and GETs alternate between them (which goes first alternates too), and the GET
 * ratio is the median of the back-to-back pairs, so a change in the machine's load
 * between the two does not decide it.
 */
async function compare(name: string, setup: Setup): Promise<Comparison> {
  const { gw, direct } = setup
  const cpu = () => setup.cpuUs()
  await gw.createBucket()
  await direct.createBucket()
  const part = randomBytes(partBytes)
  const puts = { gw: [] as Large[], direct: [] as Large[] }
  const gets = { gw: [] as Large[], direct: [] as Large[], curl: [] as Large[] }
  const pairRatios: number[] = []
  const curlRatios: number[] = []
  for (let r = 0; r < repetitions; r++) {
    progress(`${name}: large object, round ${r + 1} of ${repetitions}`)
    const order = r % 2 === 0 ? (['gw', 'direct'] as const) : (['direct', 'gw'] as const)
    for (const which of order) puts[which].push(await measured(cpu, which === 'gw', putLarge(setup[which], part)))
    // curl reads the object the gateway's PUT wrote, right beside the direct GET.
    const getOrder = setup.curl ? (r % 2 === 0 ? (['gw', 'direct', 'curl'] as const) : (['curl', 'direct', 'gw'] as const)) : order
    for (const which of getOrder) gets[which].push(await measured(cpu, which !== 'direct', which === 'curl' ? curlGetLarge(setup.curl!) : getLarge(setup[which])))
    pairRatios.push(gets.gw[r]!.mibps / gets.direct[r]!.mibps)
    if (setup.curl) curlRatios.push(gets.curl[r]!.mibps / gets.direct[r]!.mibps)
    const line = (l: Large) => `${l.mibps.toFixed(1)} MiB/s (${cpuText(l.cpu)})`
    progress(`${name} round ${r + 1}: gateway PUT ${line(puts.gw[r]!)}; direct PUT ${line(puts.direct[r]!)}`)
    progress(`${name} round ${r + 1}: gateway GET ${line(gets.gw[r]!)}; direct GET ${line(gets.direct[r]!)}; GET ratio ${(100 * pairRatios[r]!).toFixed(1)}%`)
    if (setup.curl) progress(`${name} round ${r + 1}: gateway GET read by curl ${line(gets.curl[r]!)}; ratio to direct ${(100 * curlRatios[r]!).toFixed(1)}%`)
  }
  progress(`${name}: 4 KiB operations, gateway`)
  const gwSmall = await smallOps(gw)
  progress(`${name}: 4 KiB operations, direct`)
  const directSmall = await smallOps(direct)
  return {
    description: setup.description,
    gw: { put: medianOf(puts.gw), get: medianOf(gets.gw), ...gwSmall },
    direct: { put: medianOf(puts.direct), get: medianOf(gets.direct), ...directSmall },
    pairRatios,
    curl: setup.curl ? { get: medianOf(gets.curl), pairRatios: curlRatios } : null,
    retries: gw.retries(),
  }
}

async function runS3rver(dir: string): Promise<{ results: Results; retries: number }> {
  const server = await startServer(['--target', 's3rver', '--dir', dir])
  const ref = s3Target('s3rver', server.info, server.stop)
  try {
    const cpu = async (): Promise<OtherCpu> => ({ gateway: await server.cpuUs(), nodes: 0, catalog: 0 })
    await ref.createBucket()
    const part = randomBytes(partBytes)
    const puts: Large[] = []
    const gets: Large[] = []
    for (let r = 0; r < repetitions; r++) {
      puts.push(await measured(cpu, true, putLarge(ref, part)))
      gets.push(await measured(cpu, true, getLarge(ref)))
      const line = (l: Large) => `${l.mibps.toFixed(1)} MiB/s (${cpuText(l.cpu)})`
      progress(`s3rver round ${r + 1}: PUT ${line(puts[r]!)}; GET ${line(gets[r]!)}`)
    }
    return { results: { put: medianOf(puts), get: medianOf(gets), ...(await smallOps(ref)) }, retries: ref.retries() }
  } finally {
    await ref.close()
  }
}

async function withSetup<T>(open: () => Promise<Setup>, run: (setup: Setup) => Promise<T>): Promise<T> {
  const setup = await open()
  try {
    return await run(setup)
  } finally {
    await setup.close()
  }
}

const loadStart = loadavg()[0]!
const scratch = mkdtempSync(join(tmpdir(), 'blobfs-bench-s3-'))
let cluster: Comparison | null = null
let s3rver: { results: Results; retries: number } | null = null
let memory: Comparison | null = null
try {
  if (only !== 'memory') {
    progress('starting blobfs up (12 nodes, catalog, gateway)')
    cluster = await withSetup(() => clusterSetup(scratch), (setup) => compare('cluster', setup))
    progress('s3rver')
    s3rver = await runS3rver(join(scratch, 's3rver'))
  }
  if (only !== 'cluster') {
    progress('in-memory object layer')
    memory = await withSetup(() => inMemorySetup(objectLayerModule), (setup) => compare('in memory', setup))
  }
} finally {
  rmSync(scratch, { recursive: true, force: true })
}
const loadEnd = loadavg()[0]!

const round = (x: number, digits = 1) => Number(x.toFixed(digits))
const figures: Figures = {
  large_object_mib: largeBytes / MiB,
  part_mib: partBytes / MiB,
  parts_in_flight: partsInFlight,
  small_clients: smallClients,
  cpus: cpus().length,
  repetitions,
  load_avg_1m_start: round(loadStart, 2),
  load_avg_1m_end: round(loadEnd, 2),
}
const record = (prefix: string, r: Results, server: boolean) => {
  for (const [op, l] of [
    ['put', r.put],
    ['get', r.get],
  ] as const) {
    figures[`${prefix}_${op}_large_mibps`] = round(l.mibps)
    figures[`${prefix}_${op}_large_bench_process_cpu_ms_per_gib`] = round(l.cpu.reader, 0)
    if (server) figures[`${prefix}_${op}_large_server_cpu_ms_per_gib`] = round(l.cpu.server, 0)
    figures[`${prefix}_${op}_large_nodes_cpu_ms_per_gib`] = round(l.cpu.nodes, 0)
    figures[`${prefix}_${op}_large_catalog_cpu_ms_per_gib`] = round(l.cpu.catalog, 0)
  }
  figures[`${prefix}_put_4k_ops`] = round(r.put4kOps, 0)
  figures[`${prefix}_get_4k_ops`] = round(r.get4kOps, 0)
  figures[`${prefix}_get_4k_ttfb_p50_ms`] = round(r.ttfbP50Ms, 2)
  figures[`${prefix}_get_4k_ttfb_p99_ms`] = round(r.ttfbP99Ms, 2)
}
const mainTable = (title: string, rows: [string, Results][]) =>
  printTable(
    title,
    ['system', `PUT ${largeBytes / MiB} MiB (MiB/s)`, `GET ${largeBytes / MiB} MiB (MiB/s)`, '4 KiB PUT (ops/s)', '4 KiB GET (ops/s)', '4 KiB GET TTFB p50 (ms)', 'p99 (ms)'],
    rows.map(([name, r]) => [name, r.put.mibps, r.get.mibps, r.put4kOps, r.get4kOps, r.ttfbP50Ms, r.ttfbP99Ms]),
  )
const cpuTable = (title: string, rows: [string, Large, boolean][]) =>
  printTable(
    title,
    ['system', 'benchmark process (SDK client, or the object layer in process)', 'gateway / s3rver process', '12 node processes', 'catalog process', 'total'],
    rows.map(([name, l, server]) => [name, l.cpu.reader, server ? l.cpu.server : '-', l.cpu.nodes, l.cpu.catalog, l.cpu.reader + l.cpu.server + l.cpu.nodes + l.cpu.catalog]),
  )
const ratioText = (c: Comparison) => `${(100 * median(c.pairRatios)).toFixed(1)}% (median of ${c.pairRatios.length} back-to-back pairs: ${c.pairRatios.map((r) => (100 * r).toFixed(1) + '%').join(', ')})`

console.log(`S3 side-port benchmark: ${largeBytes / MiB} MiB object in ${partBytes / MiB} MiB parts (${partsInFlight} in flight), 4 KiB ops with ${smallClients} clients; ${cpus().length} CPUs`)
if (cluster && s3rver) {
  record('blobfs', cluster.gw, true)
  record('direct', cluster.direct, false)
  record('s3rver', s3rver.results, true)
  figures.cluster = cluster.description
  figures.blobfs_sdk_retries = cluster.retries
  figures.s3rver_sdk_retries = s3rver.retries
  const getRatio = median(cluster.pairRatios)
  figures.blobfs_get_large_vs_direct = round(getRatio, 3)
  figures.blobfs_get_large_vs_direct_pairs = cluster.pairRatios.map((r) => r.toFixed(3)).join(' ')
  figures.blobfs_put_large_vs_direct = round(cluster.gw.put.mibps / cluster.direct.put.mibps, 3)
  figures.target_get_large_vs_direct_met = getRatio >= 0.8 ? 'yes' : 'no'
  if (cluster.curl) {
    figures.curl_get_large_mibps = round(cluster.curl.get.mibps)
    figures.curl_get_large_client_cpu_ms_per_gib = round(cluster.curl.get.cpu.reader, 0)
    figures.curl_get_large_server_cpu_ms_per_gib = round(cluster.curl.get.cpu.server, 0)
    figures.curl_get_large_nodes_cpu_ms_per_gib = round(cluster.curl.get.cpu.nodes, 0)
    figures.curl_get_large_vs_direct = round(median(cluster.curl.pairRatios), 3)
    figures.curl_get_large_vs_direct_pairs = cluster.curl.pairRatios.map((r) => r.toFixed(3)).join(' ')
  }
  figures.target_ttfb_p99_under_50ms_met = cluster.gw.ttfbP99Ms < 50 ? 'yes' : 'no'
  console.log(`\nReal cluster: ${cluster.description}`)
  mainTable('Real cluster: the S3 gateway vs the object layer called directly, and s3rver', [
    ['blobfs gateway', cluster.gw],
    ['object layer (direct)', cluster.direct],
    ['s3rver', s3rver.results],
  ])
  cpuTable(`Real cluster: CPU per GiB of the ${largeBytes / MiB} MiB PUT (ms of CPU time, user + system)`, [
    ['blobfs gateway', cluster.gw.put, true],
    ['object layer (direct)', cluster.direct.put, false],
    ['s3rver', s3rver.results.put, true],
  ])
  cpuTable(`Real cluster: CPU per GiB of the ${largeBytes / MiB} MiB GET (ms of CPU time, user + system)`, [
    ['blobfs gateway', cluster.gw.get, true],
    ...(cluster.curl ? [['blobfs gateway, read by curl (client: the curl processes)', cluster.curl.get, true] as [string, Large, boolean]] : []),
    ['object layer (direct)', cluster.direct.get, false],
    ['s3rver', s3rver.results.get, true],
  ])
  console.log(`\nrequests the SDK retried: ${cluster.retries} against the gateway, ${s3rver.retries} against s3rver`)
  console.log(
    `\nReal cluster: gateway GET throughput = ${ratioText(cluster)} of the object layer's own (target >= 80%); ` +
      `4 KiB GET TTFB p99 = ${cluster.gw.ttfbP99Ms.toFixed(2)} ms (target < 50 ms)`,
  )
  if (cluster.curl) {
    const c = cluster.curl
    console.log(
      `Real cluster: gateway GET read by curl ${c.get.mibps.toFixed(1)} MiB/s = ${(100 * median(c.pairRatios)).toFixed(1)}% of the object layer's own ` +
        `(pairs ${c.pairRatios.map((r) => (100 * r).toFixed(1) + '%').join(', ')})`,
    )
  }
}
if (memory) {
  record('mem_blobfs', memory.gw, true)
  record('mem_direct', memory.direct, false)
  figures.mem_object_layer = memory.description
  figures.mem_blobfs_sdk_retries = memory.retries
  figures.mem_blobfs_get_large_vs_direct = round(median(memory.pairRatios), 3)
  figures.mem_blobfs_get_large_vs_direct_pairs = memory.pairRatios.map((r) => r.toFixed(3)).join(' ')
  console.log(`\nIn memory (the gateway's own cost): ${memory.description}, no node processes`)
  mainTable('In memory: the S3 gateway vs the same object layer called directly', [
    ['blobfs gateway', memory.gw],
    ['object layer (direct)', memory.direct],
  ])
  cpuTable(`In memory: CPU per GiB of the ${largeBytes / MiB} MiB PUT (ms; PostgreSQL not counted)`, [
    ['blobfs gateway', memory.gw.put, true],
    ['object layer (direct)', memory.direct.put, false],
  ])
  cpuTable(`In memory: CPU per GiB of the ${largeBytes / MiB} MiB GET (ms; PostgreSQL not counted)`, [
    ['blobfs gateway', memory.gw.get, true],
    ['object layer (direct)', memory.direct.get, false],
  ])
  console.log(`\nIn memory: gateway GET throughput = ${ratioText(memory)} of the same layer in process; SDK retries ${memory.retries}`)
}
console.log(`\nload average (1 min): ${loadStart.toFixed(2)} at the start, ${loadEnd.toFixed(2)} at the end`)
emitJson(options, figures)

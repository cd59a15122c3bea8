// npm run bench -- s3 [--quick] [--json] [--object-layer PATH]
//
// The S3 side-port under load, in one run, through @aws-sdk/client-s3 (default
// settings): PUT and GET throughput of a 1 GiB object (multipart, 16 MiB parts, 8
// in parallel; GET as 8 parallel ranged reads), 4 KiB PUT and GET ops/s with 32
// concurrent clients, and 4 KiB GET time to first byte (p50/p99, one client). The
// same workloads run against s3rver (files on local disk) and against the object
// layer called directly (no HTTP), so the table shows the gateway's overhead. The
// gateway and the direct run are measured side by side: their large PUTs and GETs
// alternate, and the GET ratio is the median of back-to-back pairs. For each large
// GET the CPU time per GiB of the reading process (the SDK client, or the benchmark
// process for the direct run) and of the server process is reported too.
//
// Servers run in child processes (serve.ts) so client and server do not share an
// event loop. The object layer is the in-memory one by default; --object-layer PATH
// names a module exporting openObjectLayer() (see memory-layer.ts), e.g.
// test/bench/s3/object-store-layer.ts for ObjectStore over PostgreSQL.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { seededRandom } from '../../../src/random.ts'
import { emitJson, median, parseBenchArgs, percentile, printTable, type Figures } from '../report.ts'
import type { BenchObjectLayer } from './memory-layer.ts'
import { directTarget, inParallel, s3Target, startServer, type Target } from './targets.ts'

const here = dirname(fileURLToPath(import.meta.url))
const options = parseBenchArgs()
const argv = process.argv.slice(2)
const layerFlag = argv.indexOf('--object-layer')
const objectLayerModule = resolve(layerFlag >= 0 ? argv[layerFlag + 1]! : join(here, 'memory-layer.ts'))

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

interface Results {
  putMBps: number
  getMBps: number
  put4kOps: number
  get4kOps: number
  /** CPU milliseconds per GiB of large GET: the reading process (SDK client, or the object layer in process for the direct run). */
  getClientCpuMsPerGiB: number
  /** ... and the server process (0 for the direct run, which has none). */
  getServerCpuMsPerGiB: number
  ttfbP50Ms: number
  ttfbP99Ms: number
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

const processCpuUs = () => {
  const usage = process.cpuUsage()
  return usage.user + usage.system
}

interface LargeGet {
  mibps: number
  readerCpuMsPerGiB: number
  serverCpuMsPerGiB: number
}

async function putLarge(target: Target, part: Buffer): Promise<number> {
  const started = performance.now()
  await target.putLarge('large.bin', largeBytes, part, partsInFlight)
  return largeBytes / MiB / ((performance.now() - started) / 1000)
}

/** The large GET: 16 MiB ranged reads, 8 in parallel, every byte received; throughput and CPU per GiB. */
async function getLarge(target: Target, serverCpuUs: () => Promise<number>): Promise<LargeGet> {
  const server0 = await serverCpuUs()
  const reader0 = processCpuUs()
  const started = performance.now()
  let received = 0
  await inParallel(Math.ceil(largeBytes / partBytes), partsInFlight, async (i) => {
    const bytes = await target.getRange('large.bin', i * partBytes, Math.min(largeBytes, (i + 1) * partBytes) - 1)
    received += bytes
  })
  const seconds = (performance.now() - started) / 1000
  const reader1 = processCpuUs()
  const server1 = await serverCpuUs()
  if (received !== largeBytes) throw new Error(`${target.name}: read ${received} of ${largeBytes} bytes`)
  const gib = largeBytes / (1024 * MiB)
  return { mibps: largeBytes / MiB / seconds, readerCpuMsPerGiB: (reader1 - reader0) / 1000 / gib, serverCpuMsPerGiB: (server1 - server0) / 1000 / gib }
}

async function smallOps(target: Target): Promise<Pick<Results, 'put4kOps' | 'get4kOps' | 'ttfbP50Ms' | 'ttfbP99Ms'>> {
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

function summary(puts: number[], gets: LargeGet[], small: Awaited<ReturnType<typeof smallOps>>): Results {
  return {
    putMBps: median(puts),
    getMBps: median(gets.map((g) => g.mibps)),
    getClientCpuMsPerGiB: median(gets.map((g) => g.readerCpuMsPerGiB)),
    getServerCpuMsPerGiB: median(gets.map((g) => g.serverCpuMsPerGiB)),
    ...small,
  }
}

const noServer = async () => 0
const progress = (what: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)} load ${loadavg()[0]!.toFixed(1)}] ${what}\n`)
const loadStart = loadavg()[0]!
const scratch = mkdtempSync(join(tmpdir(), 'blobfs-bench-s3-'))
const results = new Map<string, Results>()
/** Gateway / direct large-GET throughput of each back-to-back pair. */
const pairRatios: number[] = []
/** Requests the SDK repeated, per server (reported: a retry costs time in the figures). */
const sdkRetries = new Map<string, number>()
let layerDescription = ''
try {
  // The gateway and the object layer called directly are measured side by side:
  // the large PUTs and GETs alternate between them (which goes first alternates too),
  // and the GET ratio is the median of the back-to-back pairs, so a change in the
  // machine's load between the two does not decide it.
  const gateway = await startServer(['--target', 'blobfs', '--object-layer', objectLayerModule])
  layerDescription = gateway.info.description
  const gw = s3Target('blobfs gateway', gateway.info, gateway.stop)
  const module = (await import(objectLayerModule)) as { openObjectLayer(): Promise<BenchObjectLayer> }
  const direct = directTarget(await module.openObjectLayer())
  try {
    await gw.createBucket()
    await direct.createBucket()
    const part = randomBytes(partBytes)
    const puts = { gw: [] as number[], direct: [] as number[] }
    const gets = { gw: [] as LargeGet[], direct: [] as LargeGet[] }
    for (let r = 0; r < repetitions; r++) {
      progress(`large object, round ${r + 1} of ${repetitions}`)
      const gatewayFirst = r % 2 === 0
      for (const which of gatewayFirst ? (['gw', 'direct'] as const) : (['direct', 'gw'] as const)) {
        puts[which].push(await putLarge(which === 'gw' ? gw : direct, part))
      }
      for (const which of gatewayFirst ? (['gw', 'direct'] as const) : (['direct', 'gw'] as const)) {
        gets[which].push(which === 'gw' ? await getLarge(gw, () => gateway.cpuUs()) : await getLarge(direct, noServer))
      }
      pairRatios.push(gets.gw[r]!.mibps / gets.direct[r]!.mibps)
      const g = gets.gw[r]!
      const d = gets.direct[r]!
      progress(
        `round ${r + 1}: gateway PUT ${puts.gw[r]!.toFixed(1)} GET ${g.mibps.toFixed(1)} MiB/s (CPU ms/GiB: client ${g.readerCpuMsPerGiB.toFixed(0)}, gateway ${g.serverCpuMsPerGiB.toFixed(0)}); ` +
          `direct PUT ${puts.direct[r]!.toFixed(1)} GET ${d.mibps.toFixed(1)} MiB/s (CPU ms/GiB ${d.readerCpuMsPerGiB.toFixed(0)}); GET ratio ${(100 * pairRatios[r]!).toFixed(1)}%`,
      )
    }
    progress('4 KiB operations: gateway')
    results.set('blobfs gateway', summary(puts.gw, gets.gw, await smallOps(gw)))
    sdkRetries.set('blobfs', gw.retries())
    progress('4 KiB operations: object layer (direct)')
    await gw.close()
    results.set('object layer (direct)', summary(puts.direct, gets.direct, await smallOps(direct)))
  } finally {
    await gateway.stop()
    await direct.close()
  }

  progress('s3rver')
  const s3rver = await startServer(['--target', 's3rver', '--dir', join(scratch, 's3rver')])
  const ref = s3Target('s3rver', s3rver.info, s3rver.stop)
  try {
    await ref.createBucket()
    const part = randomBytes(partBytes)
    const puts: number[] = []
    const gets: LargeGet[] = []
    for (let r = 0; r < repetitions; r++) {
      puts.push(await putLarge(ref, part))
      gets.push(await getLarge(ref, () => s3rver.cpuUs()))
    }
    results.set('s3rver', summary(puts, gets, await smallOps(ref)))
    sdkRetries.set('s3rver', ref.retries())
  } finally {
    await ref.close()
  }
} finally {
  rmSync(scratch, { recursive: true, force: true })
}

const ordered = (['blobfs gateway', 's3rver', 'object layer (direct)'] as const).map((name) => [name, results.get(name)!] as const)
const gw = results.get('blobfs gateway')!
const ref = results.get('s3rver')!
const direct = results.get('object layer (direct)')!
const round = (x: number, digits = 1) => Number(x.toFixed(digits))
const figures: Figures = {
  object_layer: layerDescription,
  large_object_mib: largeBytes / MiB,
  part_mib: partBytes / MiB,
  parts_in_flight: partsInFlight,
  small_clients: smallClients,
  cpus: cpus().length,
  repetitions,
}
for (const [label, r] of [
  ['blobfs', gw],
  ['s3rver', ref],
  ['direct', direct],
] as const) {
  figures[`${label}_put_large_mibps`] = round(r.putMBps)
  figures[`${label}_get_large_mibps`] = round(r.getMBps)
  figures[`${label}_get_large_reader_cpu_ms_per_gib`] = round(r.getClientCpuMsPerGiB, 0)
  if (label !== 'direct') figures[`${label}_get_large_server_cpu_ms_per_gib`] = round(r.getServerCpuMsPerGiB, 0)
  figures[`${label}_put_4k_ops`] = round(r.put4kOps, 0)
  figures[`${label}_get_4k_ops`] = round(r.get4kOps, 0)
  figures[`${label}_get_4k_ttfb_p50_ms`] = round(r.ttfbP50Ms, 2)
  figures[`${label}_get_4k_ttfb_p99_ms`] = round(r.ttfbP99Ms, 2)
}
figures.blobfs_sdk_retries = sdkRetries.get('blobfs') ?? 0
figures.s3rver_sdk_retries = sdkRetries.get('s3rver') ?? 0
figures.load_avg_1m_start = round(loadStart, 2)
figures.load_avg_1m_end = round(loadavg()[0]!, 2)
const getRatio = median(pairRatios)
figures.blobfs_get_large_vs_direct = round(getRatio, 3)
figures.blobfs_get_large_vs_direct_pairs = pairRatios.map((r) => r.toFixed(3)).join(' ')
figures.blobfs_put_large_vs_direct = round(gw.putMBps / direct.putMBps, 3)
figures.target_get_large_vs_direct_met = getRatio >= 0.8 ? 'yes' : 'no'
figures.target_ttfb_p99_under_50ms_met = gw.ttfbP99Ms < 50 ? 'yes' : 'no'

console.log(`S3 side-port benchmark: ${largeBytes / MiB} MiB object in ${partBytes / MiB} MiB parts (${partsInFlight} in flight), 4 KiB ops with ${smallClients} clients; object layer: ${layerDescription}; ${cpus().length} CPUs`)
printTable(
  'S3 side-port vs s3rver vs the object layer called directly',
  ['system', `PUT ${largeBytes / MiB} MiB (MiB/s)`, `GET ${largeBytes / MiB} MiB (MiB/s)`, '4 KiB PUT (ops/s)', '4 KiB GET (ops/s)', '4 KiB GET TTFB p50 (ms)', 'p99 (ms)'],
  ordered.map(([name, r]) => [name, r.putMBps, r.getMBps, r.put4kOps, r.get4kOps, r.ttfbP50Ms, r.ttfbP99Ms]),
)
printTable(
  `CPU per GiB of the ${largeBytes / MiB} MiB GET (ms of CPU time, user + system; PostgreSQL not counted)`,
  ['system', 'reader process (SDK client, or the in-process reader)', 'server process', 'total'],
  ordered.map(([name, r]) => [name, r.getClientCpuMsPerGiB, name === 'object layer (direct)' ? '-' : r.getServerCpuMsPerGiB, r.getClientCpuMsPerGiB + r.getServerCpuMsPerGiB]),
)
console.log(`\nrequests the SDK retried: ${figures.blobfs_sdk_retries} against the gateway, ${figures.s3rver_sdk_retries} against s3rver`)
console.log(`\nload average (1 min): ${loadStart.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end`)
console.log(
  `\ngateway GET throughput = ${(100 * getRatio).toFixed(1)}% of the object layer's own (median of ${pairRatios.length} back-to-back pairs: ${pairRatios.map((r) => (100 * r).toFixed(1) + '%').join(', ')}; target >= 80%); ` +
    `4 KiB GET TTFB p99 = ${gw.ttfbP99Ms.toFixed(2)} ms (target < 50 ms)`,
)
emitJson(options, figures)

// npm run bench -- s3 [--quick] [--json] [--object-layer PATH]
//
// The S3 side-port under load, in one run, through @aws-sdk/client-s3 (default
// settings): PUT and GET throughput of a 1 GiB object (multipart, 16 MiB parts, 8
// in parallel; GET as 8 parallel ranged reads), 4 KiB PUT and GET ops/s with 32
// concurrent clients, and 4 KiB GET time to first byte (p50/p99, one client). The
// same workloads run against s3rver (files on local disk) and against the object
// layer called directly (no HTTP), so the table shows the gateway's overhead.
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

async function measure(target: Target, serverCpuUs: () => Promise<number> = async () => 0): Promise<Results> {
  await target.createBucket()
  const part = randomBytes(partBytes)
  const puts: number[] = []
  const gets: number[] = []
  const clientCpu: number[] = []
  const serverCpu: number[] = []
  for (let r = 0; r < repetitions; r++) {
    let started = performance.now()
    await target.putLarge('large.bin', largeBytes, part, partsInFlight)
    puts.push(largeBytes / MiB / ((performance.now() - started) / 1000))
    const server0 = await serverCpuUs()
    const client0 = processCpuUs()
    started = performance.now()
    let received = 0
    await inParallel(Math.ceil(largeBytes / partBytes), partsInFlight, async (i) => {
      const bytes = await target.getRange('large.bin', i * partBytes, Math.min(largeBytes, (i + 1) * partBytes) - 1)
      received += bytes
    })
    if (received !== largeBytes) throw new Error(`${target.name}: read ${received} of ${largeBytes} bytes`)
    gets.push(largeBytes / MiB / ((performance.now() - started) / 1000))
    const gib = largeBytes / (1024 * MiB)
    clientCpu.push((processCpuUs() - client0) / 1000 / gib)
    serverCpu.push(((await serverCpuUs()) - server0) / 1000 / gib)
  }
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
  return { putMBps: median(puts), getMBps: median(gets), getClientCpuMsPerGiB: median(clientCpu), getServerCpuMsPerGiB: median(serverCpu), put4kOps, get4kOps, ttfbP50Ms: percentile(ttfb, 50), ttfbP99Ms: percentile(ttfb, 99) }
}

const loadStart = loadavg()[0]!
const scratch = mkdtempSync(join(tmpdir(), 'blobfs-bench-s3-'))
const results = new Map<string, Results>()
let layerDescription = ''
try {
  const gateway = await startServer(['--target', 'blobfs', '--object-layer', objectLayerModule])
  layerDescription = gateway.info.description
  results.set('blobfs gateway', await measure(s3Target('blobfs gateway', gateway.info, gateway.stop), () => gateway.cpuUs()))
  await gateway.stop()

  const s3rver = await startServer(['--target', 's3rver', '--dir', join(scratch, 's3rver')])
  results.set('s3rver', await measure(s3Target('s3rver', s3rver.info, s3rver.stop), () => s3rver.cpuUs()))
  await s3rver.stop()

  const module = (await import(objectLayerModule)) as { openObjectLayer(): Promise<BenchObjectLayer> }
  const direct = directTarget(await module.openObjectLayer())
  try {
    results.set('object layer (direct)', await measure(direct))
  } finally {
    await direct.close()
  }
} finally {
  rmSync(scratch, { recursive: true, force: true })
}

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
figures.load_avg_1m_start = round(loadStart, 2)
figures.load_avg_1m_end = round(loadavg()[0]!, 2)
figures.blobfs_get_large_vs_direct = round(gw.getMBps / direct.getMBps, 3)
figures.blobfs_put_large_vs_direct = round(gw.putMBps / direct.putMBps, 3)
figures.target_get_large_vs_direct_met = gw.getMBps / direct.getMBps >= 0.8 ? 'yes' : 'no'
figures.target_ttfb_p99_under_50ms_met = gw.ttfbP99Ms < 50 ? 'yes' : 'no'

console.log(`S3 side-port benchmark: ${largeBytes / MiB} MiB object in ${partBytes / MiB} MiB parts (${partsInFlight} in flight), 4 KiB ops with ${smallClients} clients; object layer: ${layerDescription}; ${cpus().length} CPUs`)
printTable(
  'S3 side-port vs s3rver vs the object layer called directly',
  ['system', `PUT ${largeBytes / MiB} MiB (MiB/s)`, `GET ${largeBytes / MiB} MiB (MiB/s)`, '4 KiB PUT (ops/s)', '4 KiB GET (ops/s)', '4 KiB GET TTFB p50 (ms)', 'p99 (ms)'],
  [...results.entries()].map(([name, r]) => [name, r.putMBps, r.getMBps, r.put4kOps, r.get4kOps, r.ttfbP50Ms, r.ttfbP99Ms]),
)
printTable(
  `CPU per GiB of the ${largeBytes / MiB} MiB GET (ms of CPU time, user + system; PostgreSQL not counted)`,
  ['system', 'reader process (SDK client, or the in-process reader)', 'server process', 'total'],
  [...results.entries()].map(([name, r]) => [name, r.getClientCpuMsPerGiB, name === 'object layer (direct)' ? '-' : r.getServerCpuMsPerGiB, r.getClientCpuMsPerGiB + r.getServerCpuMsPerGiB]),
)
console.log(`\nload average (1 min): ${loadStart.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end`)
console.log(
  `\ngateway GET throughput = ${(100 * (gw.getMBps / direct.getMBps)).toFixed(1)}% of the object layer's own (target >= 80%); ` +
    `4 KiB GET TTFB p99 = ${gw.ttfbP99Ms.toFixed(2)} ms (target < 50 ms)`,
)
emitJson(options, figures)

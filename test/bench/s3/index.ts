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
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { Agent } from 'node:http'
import { cpus, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import type { ObjectLayer } from '../../../src/objects/types.ts'
import { seededRandom } from '../../../src/random.ts'
import { emitJson, median, parseBenchArgs, percentile, printTable, type Figures } from '../report.ts'
import type { BenchObjectLayer } from './memory-layer.ts'

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
const bucket = 'bench'

/** One system under test, driven the same way whatever it is. */
interface Target {
  readonly name: string
  createBucket(): Promise<void>
  /** Multipart upload of `size` bytes from `part` repeated, `parallel` parts in flight. */
  putLarge(key: string, size: number, part: Buffer, parallel: number): Promise<void>
  /** Reads [start, end] and returns the bytes received. */
  getRange(key: string, start: number, end: number): Promise<number>
  put(key: string, body: Buffer): Promise<void>
  /** Whole-object read; resolves with ms to the first body byte and the bytes read. */
  get(key: string): Promise<{ firstByteMs: number; bytes: number }>
  close(): Promise<void>
}

async function drain(body: AsyncIterable<Uint8Array>, started: number): Promise<{ firstByteMs: number; bytes: number }> {
  let firstByteMs = -1
  let bytes = 0
  for await (const piece of body) {
    if (firstByteMs < 0) firstByteMs = performance.now() - started
    bytes += piece.length
  }
  return { firstByteMs: firstByteMs < 0 ? performance.now() - started : firstByteMs, bytes }
}

async function inParallel(count: number, parallel: number, work: (index: number) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < count) await work(next++)
  }
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker))
}

function s3Target(name: string, info: { endpoint: string; accessKeyId: string; secretAccessKey: string }, onClose: () => Promise<void>): Target {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 })
  const s3 = new S3Client({
    endpoint: info.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey },
    maxAttempts: 1,
    requestHandler: { httpAgent: agent } as never,
  })
  return {
    name,
    async createBucket() {
      await s3.send(new CreateBucketCommand({ Bucket: bucket }))
    },
    async putLarge(key, size, part, parallel) {
      const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))
      const count = Math.ceil(size / part.length)
      const etags: string[] = new Array(count)
      await inParallel(count, parallel, async (i) => {
        const body = i === count - 1 ? part.subarray(0, size - i * part.length) : part
        etags[i] = (await s3.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: i + 1, Body: body }))).ETag!
      })
      await s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) } }))
    },
    async getRange(key, start, end) {
      const started = performance.now()
      const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${start}-${end}` }))
      return (await drain(r.Body as AsyncIterable<Uint8Array>, started)).bytes
    },
    async put(key, body) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }))
    },
    async get(key) {
      const started = performance.now()
      const r = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
      return drain(r.Body as AsyncIterable<Uint8Array>, started)
    },
    async close() {
      s3.destroy()
      agent.destroy()
      await onClose()
    },
  }
}

function directTarget(layer: BenchObjectLayer): Target {
  const objects: ObjectLayer = layer.objects
  return {
    name: 'object layer (direct)',
    async createBucket() {
      await objects.createBucket(bucket, layer.accessKey.owner)
    },
    async putLarge(key, size, part, parallel) {
      const { uploadId } = await objects.createMultipartUpload(bucket, key)
      const count = Math.ceil(size / part.length)
      const etags: string[] = new Array(count)
      await inParallel(count, parallel, async (i) => {
        const body = i === count - 1 ? part.subarray(0, size - i * part.length) : part
        etags[i] = (await objects.uploadPart(bucket, key, uploadId, i + 1, Readable.from([body]), { expectedLengthBytes: body.length })).etag
      })
      await objects.completeMultipartUpload(bucket, key, uploadId, etags.map((etag, i) => ({ etag, partNumber: i + 1 })))
    },
    async getRange(key, start, end) {
      const started = performance.now()
      const r = await objects.getObject(bucket, key, { range: { start, end } })
      return (await drain(r.body, started)).bytes
    },
    async put(key, body) {
      await objects.putObject(bucket, key, Readable.from([body]), { expectedLengthBytes: body.length })
    },
    async get(key) {
      const started = performance.now()
      const r = await objects.getObject(bucket, key)
      return drain(r.body, started)
    },
    close: () => layer.close(),
  }
}

async function startServer(args: string[]): Promise<{ info: { endpoint: string; accessKeyId: string; secretAccessKey: string; description: string }; stop: () => Promise<void> }> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(here, 'serve.ts'), ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
  const line = await new Promise<string>((resolveLine, reject) => {
    const lines = createInterface({ input: child.stdout! })
    lines.once('line', resolveLine)
    child.once('exit', (code) => reject(new Error(`the server process exited (${code}) before it was ready`)))
  })
  return {
    info: JSON.parse(line),
    stop: () =>
      new Promise<void>((resolveStop) => {
        if (child.exitCode !== null) return resolveStop()
        child.once('exit', () => resolveStop())
        child.stdin!.end()
      }),
  }
}

interface Results {
  putMBps: number
  getMBps: number
  put4kOps: number
  get4kOps: number
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

async function measure(target: Target): Promise<Results> {
  await target.createBucket()
  const part = randomBytes(partBytes)
  const puts: number[] = []
  const gets: number[] = []
  for (let r = 0; r < repetitions; r++) {
    let started = performance.now()
    await target.putLarge('large.bin', largeBytes, part, partsInFlight)
    puts.push(largeBytes / MiB / ((performance.now() - started) / 1000))
    started = performance.now()
    let received = 0
    await inParallel(Math.ceil(largeBytes / partBytes), partsInFlight, async (i) => {
      const bytes = await target.getRange('large.bin', i * partBytes, Math.min(largeBytes, (i + 1) * partBytes) - 1)
      received += bytes
    })
    if (received !== largeBytes) throw new Error(`${target.name}: read ${received} of ${largeBytes} bytes`)
    gets.push(largeBytes / MiB / ((performance.now() - started) / 1000))
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
  return { putMBps: median(puts), getMBps: median(gets), put4kOps, get4kOps, ttfbP50Ms: percentile(ttfb, 50), ttfbP99Ms: percentile(ttfb, 99) }
}

const scratch = mkdtempSync(join(tmpdir(), 'blobfs-bench-s3-'))
const results = new Map<string, Results>()
let layerDescription = ''
try {
  const gateway = await startServer(['--target', 'blobfs', '--object-layer', objectLayerModule])
  layerDescription = gateway.info.description
  results.set('blobfs gateway', await measure(s3Target('blobfs gateway', gateway.info, gateway.stop)))
  await gateway.stop()

  const s3rver = await startServer(['--target', 's3rver', '--dir', join(scratch, 's3rver')])
  results.set('s3rver', await measure(s3Target('s3rver', s3rver.info, s3rver.stop)))
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
  figures[`${label}_put_4k_ops`] = round(r.put4kOps, 0)
  figures[`${label}_get_4k_ops`] = round(r.get4kOps, 0)
  figures[`${label}_get_4k_ttfb_p50_ms`] = round(r.ttfbP50Ms, 2)
  figures[`${label}_get_4k_ttfb_p99_ms`] = round(r.ttfbP99Ms, 2)
}
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
console.log(
  `\ngateway GET throughput = ${(100 * (gw.getMBps / direct.getMBps)).toFixed(1)}% of the object layer's own (target >= 80%); ` +
    `4 KiB GET TTFB p99 = ${gw.ttfbP99Ms.toFixed(2)} ms (target < 50 ms)`,
)
emitJson(options, figures)

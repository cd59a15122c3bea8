// npx tsx test/bench/s3/get-cpu.ts [--object-layer PATH] [--mib N] [--rounds R] [--server-node-arg ARG]...
//
// Where the CPU of a large GET goes: the workload of the S3 benchmark's large GET
// (8 parallel ranged reads of 16 MiB, every byte consumed) through the gateway with
// @aws-sdk/client-s3 and with node:http (presigned URLs), then against the object
// layer called in process, and for
// each the CPU milliseconds spent per GiB served by the client process, the
// gateway process, and the direct reader. CPU time per GiB depends less than
// throughput on other jobs sharing the machine (it still grows with their load:
// caches, page faults), so compare rows of one run. PostgreSQL (the catalog) is not counted in either. The last row is a
// floor: node:http reading the same ranges from a bare node:http server that sends
// bytes it already holds (serve.ts --target bare). Pass
// `--server-node-arg --cpu-prof --server-node-arg --cpu-prof-dir=DIR` to profile
// the gateway process.
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { Agent, get } from 'node:http'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { benchFlag, median } from '../report.ts'
import type { BenchObjectLayer } from './memory-layer.ts'
import { benchBucket as bucket, directTarget, inParallel, s3Target, startServer, type ServerProcess, type Target } from './targets.ts'

const here = dirname(fileURLToPath(import.meta.url))
const argv = process.argv.slice(2)
const flag = (name: string) => benchFlag(name, argv)
const objectLayerModule = resolve(flag('--object-layer') ?? join(here, 'object-store-layer.ts'))
const MiB = 1024 * 1024
const objectBytes = Number(flag('--mib') ?? 256) * MiB
const rounds = Number(flag('--rounds') ?? 3)
const pin = argv.includes('--pin')
const serverNodeArgs = argv.flatMap((a, i) => (a === '--server-node-arg' ? [argv[i + 1]!] : []))
const partBytes = 16 * MiB
const parallel = 8

const cpuUs = () => {
  const u = process.cpuUsage()
  return u.user + u.system
}

interface Round {
  mibps: number
  clientMsPerGiB: number
  serverMsPerGiB: number
}

async function rounds_(target: Target, serverCpuUs: () => Promise<number>): Promise<Round[]> {
  await target.createBucket()
  await target.putLarge('large.bin', objectBytes, randomBytes(partBytes), parallel)
  const out: Round[] = []
  for (let r = 0; r < rounds; r++) {
    const server0 = await serverCpuUs()
    const client0 = cpuUs()
    const started = performance.now()
    let received = 0
    await inParallel(Math.ceil(objectBytes / partBytes), parallel, async (i) => {
      const bytes = await target.getRange('large.bin', i * partBytes, Math.min(objectBytes, (i + 1) * partBytes) - 1)
      received += bytes
    })
    const seconds = (performance.now() - started) / 1000
    const client1 = cpuUs()
    const server1 = await serverCpuUs()
    if (received !== objectBytes) throw new Error(`${target.name}: read ${received} of ${objectBytes} bytes`)
    const gib = objectBytes / (1024 * MiB)
    out.push({ mibps: objectBytes / MiB / seconds, clientMsPerGiB: (client1 - client0) / 1000 / gib, serverMsPerGiB: (server1 - server0) / 1000 / gib })
  }
  return out
}

function show(name: string, rs: Round[]): void {
  const m = (f: (r: Round) => number) => median(rs.map(f)).toFixed(0)
  console.log(
    `${name.padEnd(24)} ${m((r) => r.mibps).padStart(6)} MiB/s   CPU ms/GiB: client ${m((r) => r.clientMsPerGiB).padStart(6)}  server ${m((r) => r.serverMsPerGiB).padStart(6)}  total ${m((r) => r.clientMsPerGiB + r.serverMsPerGiB).padStart(6)}`,
  )
}

/** The same reads with node:http and presigned URLs: what the SDK adds on the client side. */
function rawTarget(server: ServerProcess, sdk: Target): Target {
  const s3 = new S3Client({
    endpoint: server.info.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: server.info.accessKeyId, secretAccessKey: server.info.secretAccessKey },
  })
  const agent = new Agent({ keepAlive: true, maxSockets: 64 })
  return {
    ...sdk,
    name: 'blobfs gateway (node:http)',
    retries: () => 0,
    async getRange(key, start, end) {
      const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: 600 })
      return new Promise((resolveBytes, reject) => {
        get(url, { agent, headers: { range: `bytes=${start}-${end}` } }, (res) => {
          let bytes = 0
          res.on('data', (piece: Buffer) => (bytes += piece.length))
          res.on('end', () => resolveBytes(res.statusCode === 206 ? bytes : -1))
          res.on('error', reject)
        }).on('error', reject)
      })
    },
    async close() {
      s3.destroy()
      agent.destroy()
    },
  }
}

if (pin) execFileSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' })
const server = await startServer(['--target', 'blobfs', '--object-layer', objectLayerModule], serverNodeArgs, pin ? '0' : undefined)
let gateway: Round[]
let raw: Round[]
try {
  const sdk = s3Target('blobfs gateway (SDK)', server.info, async () => {})
  gateway = await rounds_(sdk, () => server.cpuUs())
  const plain = rawTarget(server, sdk)
  raw = await rounds_({ ...plain, createBucket: async () => {} }, () => server.cpuUs())
  await plain.close()
  await sdk.close()
} finally {
  await server.stop()
}
if (pin) execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' })
const module = (await import(objectLayerModule)) as { openObjectLayer(): Promise<BenchObjectLayer> }
const direct = directTarget(await module.openObjectLayer())
let directRounds: Round[]
try {
  directRounds = await rounds_(direct, async () => 0)
} finally {
  await direct.close()
}
// The floor: the same reads with node:http from a bare node:http server (no object layer).
const floor = await startServer(['--target', 'bare'])
let floorRounds: Round[]
try {
  const agent = new Agent({ keepAlive: true, maxSockets: 64 })
  const bareTarget: Target = {
    ...direct,
    name: 'bare node:http server',
    createBucket: async () => {},
    putLarge: async () => {},
    getRange: (_key, start, end) =>
      new Promise((resolveBytes, reject) => {
        get(floor.info.endpoint, { agent, headers: { range: `bytes=${start}-${end}` } }, (res) => {
          let bytes = 0
          res.on('data', (piece: Buffer) => (bytes += piece.length))
          res.on('end', () => resolveBytes(res.statusCode === 206 ? bytes : -1))
          res.on('error', reject)
        }).on('error', reject)
      }),
  }
  floorRounds = await rounds_(bareTarget, () => floor.cpuUs())
  agent.destroy()
} finally {
  await floor.stop()
}
console.log(`large GET of ${objectBytes / MiB} MiB as ${partBytes / MiB} MiB ranges, ${parallel} in parallel; median of ${rounds}`)
show('blobfs gateway (SDK)', gateway)
show('blobfs gateway (node:http)', raw)
show('object layer (direct)', directRounds)
show('floor: bare node:http', floorRounds)

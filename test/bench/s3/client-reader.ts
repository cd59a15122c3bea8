// The reading side of client-cost.ts, in a process of its own so that its CPU time
// (and, with node --cpu-prof, its profile) is the client's alone:
//
//   node [--cpu-prof ...] --import tsx client-reader.ts '<json>'
//
// <json>: {endpoint, accessKeyId, secretAccessKey, bucket, key, sizeBytes, partBytes,
// parallel, rounds, mode}. Reads the object `rounds` times as ranged GETs of
// partBytes, `parallel` at a time, every byte received, with @aws-sdk/client-s3
// (mode "sdk", default settings as in the S3 benchmark) or with node:http and
// presigned URLs (mode "http", no SDK on the response path). Prints one JSON line:
// CPU (user and system) per GiB, throughput, what the sockets delivered (reads and
// their sizes, connections opened), what the consumer received (body pieces), the
// process's context switches, and the first response's headers. With profileFile,
// a CPU profile of the measured reads alone.
import { GetObjectCommand } from '@aws-sdk/client-s3'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import { Agent, get, type IncomingMessage } from 'node:http'
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector'
import type { Socket } from 'node:net'
import { benchS3Client } from './targets.ts'

interface Options {
  endpoint: string
  accessKeyId: string
  secretAccessKey: string
  bucket: string
  key: string
  sizeBytes: number
  partBytes: number
  parallel: number
  rounds: number
  mode: 'sdk' | 'http'
  /** When set, a CPU profile of the measured reads only (the inspector's profiler, 200 µs samples) is written there. */
  profileFile?: string
}

const o = JSON.parse(process.argv[2]!) as Options
const MiB = 1024 * 1024

/** Socket reads and body pieces by size: how many, and bytes. */
class Sizes {
  count = 0
  bytes = 0
  /** Upper bounds (inclusive) of the buckets; the last catches the rest. */
  static readonly bounds = [1024, 4096, 16384, 32767, 65535, 65536, Infinity]
  readonly buckets = Sizes.bounds.map(() => 0)
  add(n: number): void {
    this.count++
    this.bytes += n
    this.buckets[Sizes.bounds.findIndex((b) => n <= b)]!++
  }
}

const socketReads = new Sizes()
const bodyPieces = new Sizes()
let connections = 0

/** An agent that counts the connections it opens and every read of their sockets. */
class CountingAgent extends Agent {
  override createConnection(...args: Parameters<Agent['createConnection']>): Socket {
    connections++
    const socket = super.createConnection(...args) as Socket
    socket.on('data', (chunk: Buffer) => socketReads.add(chunk.length))
    return socket
  }
}

const agent = new CountingAgent({ keepAlive: true, maxSockets: 64 })
const s3 = benchS3Client(o, agent)

let firstHeaders: Record<string, string> | null = null
const note = (res: IncomingMessage) => {
  if (firstHeaders !== null) return
  firstHeaders = {}
  for (let i = 0; i < res.rawHeaders.length; i += 2) firstHeaders[res.rawHeaders[i]!.toLowerCase()] = res.rawHeaders[i + 1]!
  firstHeaders[':status'] = String(res.statusCode)
}

async function drain(body: AsyncIterable<Uint8Array>): Promise<number> {
  let bytes = 0
  for await (const piece of body) {
    bodyPieces.add(piece.length)
    bytes += piece.length
  }
  return bytes
}

async function readRange(start: number, end: number): Promise<number> {
  const range = `bytes=${start}-${end}`
  if (o.mode === 'sdk') {
    const r = await s3.send(new GetObjectCommand({ Bucket: o.bucket, Key: o.key, Range: range }))
    note(r.Body as IncomingMessage)
    return drain(r.Body as AsyncIterable<Uint8Array>)
  }
  const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: o.bucket, Key: o.key }), { expiresIn: 600 })
  const res = await new Promise<IncomingMessage>((resolve, reject) => get(url, { agent, headers: { range } }, resolve).on('error', reject))
  note(res)
  if (res.statusCode !== 206) throw new Error(`status ${res.statusCode}`)
  return drain(res)
}

async function inParallel(count: number, parallel: number, work: (index: number) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < count) await work(next++)
  }
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker))
}

async function readAll(): Promise<number> {
  let received = 0
  await inParallel(Math.ceil(o.sizeBytes / o.partBytes), o.parallel, async (i) => {
    const bytes = await readRange(i * o.partBytes, Math.min(o.sizeBytes, (i + 1) * o.partBytes) - 1)
    received += bytes
  })
  return received
}

// One unmeasured pass first: module loading, the SDK's first-request set-up, the
// JIT compiling the read path, the connections opened.
await readAll()
const reset = () => {
  Object.assign(socketReads, new Sizes())
  Object.assign(bodyPieces, new Sizes())
  connections = 0
}
reset()
const session = o.profileFile ? new Session() : null
const post = (method: string, params?: object) =>
  new Promise<unknown>((resolve, reject) => session!.post(method, params ?? {}, (error, result) => (error ? reject(error) : resolve(result))))
if (session) {
  session.connect()
  await post('Profiler.enable')
  await post('Profiler.setSamplingInterval', { interval: 200 })
  await post('Profiler.start')
}
const cpu0 = process.cpuUsage()
const usage0 = process.resourceUsage()
const started = performance.now()
let received = 0
for (let r = 0; r < o.rounds; r++) received += await readAll()
const seconds = (performance.now() - started) / 1000
const cpu = process.cpuUsage(cpu0)
if (session) {
  const { profile } = (await post('Profiler.stop')) as { profile: object }
  writeFileSync(o.profileFile!, JSON.stringify(profile))
  session.disconnect()
}
const usage1 = process.resourceUsage()
if (received !== o.sizeBytes * o.rounds) throw new Error(`read ${received} of ${o.sizeBytes * o.rounds} bytes`)
const gib = received / (1024 * MiB)
const perGiB = (n: number) => Math.round(n / gib)
const sizes = (s: Sizes) => ({
  perGiB: perGiB(s.count),
  meanBytes: Math.round(s.bytes / Math.max(1, s.count)),
  buckets: Object.fromEntries(Sizes.bounds.map((b, i) => [b === Infinity ? '>64KiB' : `<=${b}`, s.buckets[i]])),
})
process.stdout.write(
  JSON.stringify({
    mode: o.mode,
    mibps: received / MiB / seconds,
    userMsPerGiB: cpu.user / 1000 / gib,
    systemMsPerGiB: cpu.system / 1000 / gib,
    voluntaryCtxSwitchesPerGiB: perGiB(usage1.voluntaryContextSwitches - usage0.voluntaryContextSwitches),
    involuntaryCtxSwitchesPerGiB: perGiB(usage1.involuntaryContextSwitches - usage0.involuntaryContextSwitches),
    connectionsOpened: connections,
    requests: Math.ceil(o.sizeBytes / o.partBytes) * o.rounds,
    socketReads: sizes(socketReads),
    bodyPieces: sizes(bodyPieces),
    firstHeaders,
  }) + '\n',
)
s3.destroy()
agent.destroy()

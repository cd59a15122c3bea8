// A server process for the S3 benchmark, so client and server do not share one
// event loop: `--target blobfs` runs the gateway over the object layer module given
// by --object-layer; `--target s3rver` runs s3rver on --dir; `--target bare` is a
// floor for HTTP reads (below). Prints one JSON line
// {endpoint, accessKeyId, secretAccessKey, description} and serves until stdin closes.
// The gateway logs warnings to stderr (stdout carries only these JSON lines).
// A line `cpu` on stdin is answered with one JSON line {userUs, systemUs}: this
// process's CPU time so far (process.cpuUsage), for CPU-per-byte figures.
import { randomBytes } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createRequire } from 'node:module'
import { createInterface } from 'node:readline'
import { pino } from 'pino'
import { createS3Server } from '../../../src/s3/index.ts'
import type { BenchObjectLayer } from './memory-layer.ts'

const args = new Map<string, string>()
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1]!)
const target = args.get('target')

async function blobfs(): Promise<{ info: object; close: () => Promise<void> }> {
  const module = (await import(args.get('object-layer')!)) as { openObjectLayer(): Promise<BenchObjectLayer> }
  const layer = await module.openObjectLayer()
  const gateway = createS3Server({ objects: layer.objects, rateLimit: null, logger: pino({ level: 'warn' }, pino.destination(2)) })
  const { endpoint } = await gateway.listen(0, '127.0.0.1')
  return {
    info: { endpoint, accessKeyId: layer.accessKey.accessKeyId, secretAccessKey: layer.accessKey.secretAccessKey, description: layer.description },
    close: async () => {
      await gateway.close()
      await layer.close()
    },
  }
}

async function s3rver(): Promise<{ info: object; close: () => Promise<void> }> {
  const S3rver = createRequire(import.meta.url)('s3rver') as new (options: object) => { run(): Promise<{ address: string; port: number }>; close(): Promise<void> }
  const directory = args.get('dir')!
  mkdirSync(directory, { recursive: true })
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory })
  const { port } = await server.run()
  return {
    info: { endpoint: `http://127.0.0.1:${port}`, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', description: 's3rver 3.7 (files on local disk)' },
    close: () => server.close(),
  }
}

/**
 * A floor for HTTP reads (get-cpu.ts, client-cost.ts): node:http answering any
 * `Range: bytes=A-B` with B-A+1 bytes written as 2 MiB pieces of one buffer
 * allocated at start, so it does no object-layer work and allocates nothing per
 * request. With `--pace-mibps N` each response is sent at no more than N MiB/s (a
 * piece, then a pause), like a server that has to fetch its bytes first.
 */
async function bare(): Promise<{ info: object; close: () => Promise<void> }> {
  const piece = randomBytes(2 * 1024 * 1024)
  const paceBytesPerMs = args.has('pace-mibps') ? (Number(args.get('pace-mibps')) * 1024 * 1024) / 1000 : Infinity
  const server = createServer((req, res) => {
    const match = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '')
    const length = match ? Number(match[2]) - Number(match[1]) + 1 : 0
    res.writeHead(match ? 206 : 416, { 'content-length': length })
    let left = length
    const started = performance.now()
    const more = () => {
      while (left > 0) {
        const dueMs = started + (length - left) / paceBytesPerMs - performance.now()
        if (dueMs > 1) return void setTimeout(more, dueMs)
        const n = Math.min(left, piece.length)
        left -= n
        if (!res.write(piece.subarray(0, n))) return void res.once('drain', more)
      }
      res.end()
    }
    more()
  })
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen))
  const { port } = server.address() as AddressInfo
  return {
    info: { endpoint: `http://127.0.0.1:${port}`, accessKeyId: '', secretAccessKey: '', description: 'node:http serving preallocated bytes' },
    close: () => new Promise((resolveClose) => server.close(() => resolveClose())),
  }
}

const running = target === 'blobfs' ? await blobfs() : target === 's3rver' ? await s3rver() : target === 'bare' ? await bare() : null
if (!running) throw new Error(`--target must be blobfs, s3rver or bare, not ${target}`)
process.stdout.write(JSON.stringify(running.info) + '\n')
const commands = createInterface({ input: process.stdin })
commands.on('line', (line) => {
  if (line.trim() !== 'cpu') return
  const usage = process.cpuUsage()
  process.stdout.write(JSON.stringify({ userUs: usage.user, systemUs: usage.system }) + '\n')
})
commands.on('close', () => {
  void running.close().then(() => process.exit(0))
})

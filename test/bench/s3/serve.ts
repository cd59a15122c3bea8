// A server process for the S3 benchmark, so client and server do not share one
// event loop: `--target blobfs` runs the gateway over the object layer module given
// by --object-layer; `--target s3rver` runs s3rver on --dir. Prints one JSON line
// {endpoint, accessKeyId, secretAccessKey, description} and serves until stdin closes.
// The gateway logs warnings to stderr (stdout carries only these JSON lines).
// A line `cpu` on stdin is answered with one JSON line {userUs, systemUs}: this
// process's CPU time so far (process.cpuUsage), for CPU-per-byte figures.
import { mkdirSync } from 'node:fs'
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

const running = target === 'blobfs' ? await blobfs() : target === 's3rver' ? await s3rver() : null
if (!running) throw new Error(`--target must be blobfs or s3rver, not ${target}`)
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

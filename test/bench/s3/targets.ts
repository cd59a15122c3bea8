// The systems the S3 benchmark drives (index.ts, get-cpu.ts), all through one
// interface: the gateway or s3rver in a child process (serve.ts) through
// @aws-sdk/client-s3, or the object layer called in process.
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
import { Agent } from 'node:http'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import type { ObjectLayer } from '../../../src/objects/types.ts'
import type { BenchObjectLayer } from './memory-layer.ts'

const here = dirname(fileURLToPath(import.meta.url))
export const benchBucket = 'bench'

/** One system under test, driven the same way whatever it is. */
export interface Target {
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
  /** Requests the client had to repeat (the SDK retries transient network errors, as real clients do). */
  retries(): number
}

/**
 * The large GET's ranged reads by curl (C, libcurl: SigV4 with --aws-sigv4, bodies to
 * /dev/null): a client whose own CPU per GiB is a fraction of the SDK's, to tell the
 * gateway's share of a GET from the client's on a machine where they share two CPUs.
 * One curl process per lane reads that lane's ranges one after the other over one
 * kept-alive connection (`--next`), so process start-up is paid per lane, not per
 * range. Its CPU is counted in the benchmark process's waited children.
 */
export interface LaneReader {
  readonly name: string
  /** Reads [0, size) of `key` in ranges of `partBytes`, `lanes` at a time; resolves with the bytes received. */
  readAll(key: string, sizeBytes: number, partBytes: number, lanes: number): Promise<number>
}

export function curlReader(name: string, info: { endpoint: string; accessKeyId: string; secretAccessKey: string }, bucket = benchBucket): LaneReader {
  const lane = (url: string, ranges: [number, number][]): Promise<number> => {
    const args: string[] = []
    ranges.forEach(([start, end], i) => {
      if (i > 0) args.push('--next')
      args.push('-sS', '--fail', '--aws-sigv4', 'aws:amz:us-east-1:s3', '--user', `${info.accessKeyId}:${info.secretAccessKey}`)
      args.push('-H', 'x-amz-content-sha256: UNSIGNED-PAYLOAD', '-r', `${start}-${end}`, '-o', '/dev/null', '-w', '%{size_download}\\n', url)
    })
    return new Promise((resolve, reject) => {
      const child = spawn('curl', args, { stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      let err = ''
      child.stdout.on('data', (piece: Buffer) => (out += piece.toString()))
      child.stderr.on('data', (piece: Buffer) => (err += piece.toString()))
      child.on('error', (error) => reject(new Error(`curl could not run (apt-get install -y curl): ${error.message}`)))
      // 'close', not 'exit': stdout is read to its end.
      child.on('close', (code) => {
        const sizes = out.trim().split('\n').map(Number)
        if (code !== 0 || sizes.length !== ranges.length) reject(new Error(`curl exited ${code} after ${sizes.length} of ${ranges.length} ranges: ${err.trim()}`))
        else resolve(sizes.reduce((a, b) => a + b, 0))
      })
    })
  }
  return {
    name,
    async readAll(key, sizeBytes, partBytes, lanes) {
      const url = `${info.endpoint.replace(/\/$/, '')}/${bucket}/${encodeURIComponent(key)}`
      const parts = Math.ceil(sizeBytes / partBytes)
      const byLane = Array.from({ length: Math.min(lanes, parts) }, (_, j) => {
        const ranges: [number, number][] = []
        for (let i = j; i < parts; i += lanes) ranges.push([i * partBytes, Math.min(sizeBytes, (i + 1) * partBytes) - 1])
        return lane(url, ranges)
      })
      return (await Promise.all(byLane)).reduce((a, b) => a + b, 0)
    },
  }
}

export async function drain(body: AsyncIterable<Uint8Array>, started: number): Promise<{ firstByteMs: number; bytes: number }> {
  let firstByteMs = -1
  let bytes = 0
  for await (const piece of body) {
    if (firstByteMs < 0) firstByteMs = performance.now() - started
    bytes += piece.length
  }
  return { firstByteMs: firstByteMs < 0 ? performance.now() - started : firstByteMs, bytes }
}

export async function inParallel(count: number, parallel: number, work: (index: number) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < count) await work(next++)
  }
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker))
}

/** The SDK client every S3 benchmark reads with: default settings, path-style, over `agent`. */
export function benchS3Client(info: { endpoint: string; accessKeyId: string; secretAccessKey: string }, agent: Agent): S3Client {
  return new S3Client({
    endpoint: info.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: info.accessKeyId, secretAccessKey: info.secretAccessKey },
    requestHandler: { httpAgent: agent } as never,
  })
}

export function s3Target(
  name: string,
  info: { endpoint: string; accessKeyId: string; secretAccessKey: string },
  onClose: () => Promise<void>,
  bucket = benchBucket,
): Target {
  // The SDK's default retry (3 attempts) stays on, as for any real client: a
  // keep-alive socket the server closed just as a request went out is retried, not
  // fatal. Every repeated attempt is counted and reported (retries()).
  const agent = new Agent({ keepAlive: true, maxSockets: 64 })
  const s3 = benchS3Client(info, agent)
  let retried = 0
  const send = s3.send.bind(s3)
  s3.send = (async (command: never) => {
    const out = (await send(command)) as { $metadata: { attempts?: number } }
    retried += (out.$metadata.attempts ?? 1) - 1
    return out
  }) as typeof s3.send
  return {
    name,
    retries: () => retried,
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

export function directTarget(layer: BenchObjectLayer, bucket = benchBucket): Target {
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
    retries: () => 0,
  }
}

export interface ServerProcess {
  info: { endpoint: string; accessKeyId: string; secretAccessKey: string; description: string }
  /** The server process's CPU time so far (user + system), in microseconds. */
  cpuUs(): Promise<number>
  stop(): Promise<void>
}

/**
 * Starts serve.ts with `args`; `nodeArgs` go to node itself (e.g. --cpu-prof);
 * `cpus` (a taskset list such as "0") pins the server and what it starts.
 */
export async function startServer(args: string[], nodeArgs: string[] = [], cpus?: string): Promise<ServerProcess> {
  const command = [process.execPath, ...nodeArgs, '--import', 'tsx', join(here, 'serve.ts'), ...args]
  if (cpus !== undefined) command.unshift('taskset', '-c', cpus)
  const child: ChildProcess = spawn(command[0]!, command.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout! })
  const waiting: ((line: string) => void)[] = []
  lines.on('line', (line) => {
    if (line.startsWith('{')) waiting.shift()?.(line)
    else process.stderr.write(`server: ${line}\n`)
  })
  const nextLine = () => new Promise<string>((resolveLine) => waiting.push(resolveLine))
  const line = await new Promise<string>((resolveLine, reject) => {
    void nextLine().then(resolveLine)
    child.once('exit', (code) => reject(new Error(`the server process exited (${code}) before it was ready`)))
  })
  return {
    info: JSON.parse(line),
    async cpuUs() {
      const answer = nextLine()
      child.stdin!.write('cpu\n')
      const { userUs, systemUs } = JSON.parse(await answer) as { userUs: number; systemUs: number }
      return userUs + systemUs
    },
    stop: () =>
      new Promise<void>((resolveStop) => {
        if (child.exitCode !== null) return resolveStop()
        child.once('exit', () => resolveStop())
        child.stdin!.end()
      }),
  }
}

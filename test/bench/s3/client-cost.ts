// flock /tmp/bench.lock npx tsx test/bench/s3/client-cost.ts [--mib N] [--rounds R] [--reps K]
//     [--targets s3rver,gateway-store,cluster,gateway-ram] [--modes sdk,http] [--prof DIR]
//
// What a large GET costs the *client*, per server: the S3 benchmark's large-GET
// workload (ranged GETs of 16 MiB, 8 in parallel) read by client-reader.ts in a
// process of its own (so its CPU time, and its profile with --prof, is the client's
// alone) from each server in turn, K times, interleaved:
//   s3rver         s3rver 3.7 (serve.ts), files on local disk;
//   gateway-store  the gateway (serve.ts) over ObjectStore with 12 in-memory nodes
//                  and PostgreSQL (the benchmark's in-memory setup);
//   cluster        the `blobfs gateway` process of `blobfs up` (12 node processes);
//   gateway-ram    the gateway over the tests' in-memory ObjectLayer (bytes in RAM);
//   bare, bare@N   node:http writing 2 MiB pieces of one buffer (serve.ts --target
//                  bare), at full speed or paced to N MiB/s in all (N/8 per response):
//                  the same client against a server that sends nothing but bytes.
// Per read: the client's user and system CPU per GiB, throughput, the socket reads
// (count per GiB, sizes), the body pieces the consumer got, context switches,
// connections opened, and the first response's headers. With --prof DIR the reader
// profiles its measured reads (node:inspector, 200 µs samples; the files stay in DIR)
// and their self time is summed by package (npm package, src/ directory, Node internal module, or V8 category).
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startUp, type RunningUp } from '../../support/up.ts'
import { benchFlag } from '../report.ts'
import { s3Target, startServer, type ServerProcess } from './targets.ts'

const here = dirname(fileURLToPath(import.meta.url))
const argv = process.argv.slice(2)
const flag = (name: string) => benchFlag(name, argv)
const MiB = 1024 * 1024
const sizeBytes = Number(flag('--mib') ?? 256) * MiB
const rounds = Number(flag('--rounds') ?? 1)
const reps = Number(flag('--reps') ?? 2)
const targetNames = (flag('--targets') ?? 's3rver,gateway-store,cluster').split(',')
const modes = (flag('--modes') ?? 'sdk').split(',') as ('sdk' | 'http')[]
const profDir = flag('--prof')
const partBytes = 16 * MiB
const parallel = 8

interface Endpoint {
  name: string
  endpoint: string
  accessKeyId: string
  secretAccessKey: string
  bucket: string
  /** False for the bare server, which answers any range without storing anything. */
  uploads?: boolean
  close(): Promise<void>
}

interface ReaderResult {
  mode: string
  mibps: number
  userMsPerGiB: number
  systemMsPerGiB: number
  voluntaryCtxSwitchesPerGiB: number
  involuntaryCtxSwitchesPerGiB: number
  connectionsOpened: number
  requests: number
  socketReads: { perGiB: number; meanBytes: number; buckets: Record<string, number> }
  bodyPieces: { perGiB: number; meanBytes: number; buckets: Record<string, number> }
  firstHeaders: Record<string, string>
  profile?: Record<string, number>
  topFunctions?: [string, number][]
}

const progress = (what: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)} load ${loadavg()[0]!.toFixed(1)}] ${what}\n`)

async function fromServer(name: string, server: ServerProcess, bucket = 'bench'): Promise<Endpoint> {
  return { name, ...server.info, bucket, close: server.stop }
}

async function open(name: string, scratch: string): Promise<Endpoint> {
  if (name === 's3rver') return fromServer(name, await startServer(['--target', 's3rver', '--dir', join(scratch, 's3rver')]))
  if (name === 'gateway-store') return fromServer(name, await startServer(['--target', 'blobfs', '--object-layer', join(here, 'object-store-layer.ts')]))
  if (name === 'gateway-ram') return fromServer(name, await startServer(['--target', 'blobfs', '--object-layer', join(here, 'memory-layer.ts')]))
  const paced = /^bare(?:@(\d+))?$/.exec(name)
  if (paced) {
    const server = await startServer(['--target', 'bare', ...(paced[1] ? ['--pace-mibps', String(Number(paced[1]) / parallel)] : [])])
    return { ...(await fromServer(name, server)), accessKeyId: 'AKIABARE000000000000', secretAccessKey: 'bare', uploads: false }
  }
  if (name === 'cluster') {
    const up: RunningUp = await startUp(join(scratch, 'up'), ['--block-size', '1GiB'])
    const endpoint = up.cluster.gatewayUrl
    if (endpoint === null) {
      up.kill()
      throw new Error('blobfs up wrote no gateway URL')
    }
    return {
      name,
      endpoint,
      ...up.credentials,
      bucket: 'bench',
      async close() {
        let timer: NodeJS.Timeout | undefined
        await Promise.race([up.stop(), new Promise((resolve) => (timer = setTimeout(resolve, 60_000)))])
        clearTimeout(timer)
        up.kill()
      },
    }
  }
  throw new Error(`unknown target ${name}`)
}

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}

/** Where a profile node's self time belongs: an npm package, a src/ directory, a Node module, or a V8 category. */
function owner(frame: ProfileNode['callFrame']): string {
  const { url, functionName } = frame
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)
  if (pkg) return pkg[1]!
  const src = /\/(src\/[^/]+)\//.exec(url)
  if (src) return src[1]!
  if (url.includes('/test/')) return 'test (the reader)'
  if (url.startsWith('node:')) return url.replace(/^node:(internal\/)?/, 'node:').replace(/\/[^/]+$/, '/*')
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)'
  return url
}

/** Self time (ms) by owner and by function. */
function summarize(file: string): { byOwner: Record<string, number>; top: [string, number][] } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }
  const nodes = new Map(p.nodes.map((n) => [n.id, n]))
  const byOwner = new Map<string, number>()
  const byFunction = new Map<string, number>()
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000
    const frame = nodes.get(p.samples[i]!)!.callFrame
    if (frame.functionName === '(idle)') continue
    const who = owner(frame)
    byOwner.set(who, (byOwner.get(who) ?? 0) + dt)
    const fn = `${frame.functionName || '(anonymous)'} ${frame.url.replace(/^.*\/node_modules\//, '').replace(/^.*\/(src|test)\//, '$1/')}:${frame.lineNumber + 1}`
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + dt)
  }
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1])
  return { byOwner: Object.fromEntries(sorted(byOwner)), top: sorted(byFunction).slice(0, 25) }
}

function runReader(target: Endpoint, mode: 'sdk' | 'http', tag: string): Promise<ReaderResult> {
  const dir = profDir ? join(profDir, tag) : null
  if (dir) mkdirSync(dir, { recursive: true })
  const options = {
    profileFile: dir ? join(dir, 'client.cpuprofile') : undefined, endpoint: target.endpoint, accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey, bucket: target.bucket, key: 'large.bin', sizeBytes, partBytes, parallel, rounds, mode }
  const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'client-reader.ts'), JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000)
    child.once('exit', (code) => {
      clearTimeout(timer)
      if (code !== 0) return reject(new Error(`the reader exited with ${code}`))
      const result = JSON.parse(out.trim().split('\n').pop()!) as ReaderResult
      if (dir) {
        const { byOwner, top } = summarize(join(dir, 'client.cpuprofile'))
        result.profile = byOwner
        result.topFunctions = top
      }
      resolve(result)
    })
  })
}

const loadStart = loadavg()[0]!
const scratch = mkdtempSync(join(tmpdir(), 'blobfs-s3-client-cost-'))
const targets: Endpoint[] = []
const results = new Map<string, ReaderResult[]>()
try {
  const part = randomBytes(partBytes)
  for (const name of targetNames) {
    progress(`starting ${name}`)
    const target = await open(name, scratch)
    targets.push(target)
    if (target.uploads === false) continue
    const writer = s3Target(name, target, async () => {}, target.bucket)
    await writer.createBucket()
    await writer.putLarge('large.bin', sizeBytes, part, parallel)
    await writer.close()
  }
  for (let rep = 0; rep < reps; rep++) {
    // Alternate the order, so neither server always reads first after a quiet spell.
    const order = rep % 2 === 0 ? targets : [...targets].reverse()
    for (const target of order) {
      for (const mode of modes) {
        const tag = `${target.name}-${mode}-${rep + 1}`
        const r = await runReader(target, mode, tag)
        progress(
          `${tag}: ${r.mibps.toFixed(0)} MiB/s, client CPU ms/GiB user ${r.userMsPerGiB.toFixed(0)} + system ${r.systemMsPerGiB.toFixed(0)} = ${(r.userMsPerGiB + r.systemMsPerGiB).toFixed(0)}; ` +
            `socket reads/GiB ${r.socketReads.perGiB} (mean ${r.socketReads.meanBytes} B), body pieces/GiB ${r.bodyPieces.perGiB} (mean ${r.bodyPieces.meanBytes} B), ` +
            `voluntary ctx switches/GiB ${r.voluntaryCtxSwitchesPerGiB}, connections ${r.connectionsOpened} for ${r.requests} requests`,
        )
        const key = `${target.name} ${mode}`
        results.set(key, [...(results.get(key) ?? []), r])
      }
    }
  }
} finally {
  for (const t of targets.reverse()) await t.close().catch((error) => progress(`closing ${t.name}: ${error}`))
  rmSync(scratch, { recursive: true, force: true })
}
console.log(`large GET of ${sizeBytes / MiB} MiB x ${rounds} as ${partBytes / MiB} MiB ranges, ${parallel} in parallel; ${reps} reps per server, interleaved`)
console.log(`load average (1 min): ${loadStart.toFixed(2)} at the start, ${loadavg()[0]!.toFixed(2)} at the end`)
for (const [key, rs] of results) {
  console.log(`\n== ${key}`)
  for (const r of rs) {
    console.log(
      `  ${r.mibps.toFixed(0)} MiB/s  CPU ms/GiB user ${r.userMsPerGiB.toFixed(0)} system ${r.systemMsPerGiB.toFixed(0)}  socket reads/GiB ${r.socketReads.perGiB} ${JSON.stringify(r.socketReads.buckets)}  body pieces/GiB ${r.bodyPieces.perGiB} (mean ${r.bodyPieces.meanBytes} B)  vol ctx/GiB ${r.voluntaryCtxSwitchesPerGiB}  invol ${r.involuntaryCtxSwitchesPerGiB}  conns ${r.connectionsOpened}/${r.requests}`,
    )
  }
  console.log(`  first response headers: ${JSON.stringify(rs[0]!.firstHeaders)}`)
  if (rs[0]!.profile) {
    const gib = (sizeBytes * rounds) / (1024 * MiB)
    const merged = new Map<string, number>()
    for (const r of rs) for (const [k, v] of Object.entries(r.profile!)) merged.set(k, (merged.get(k) ?? 0) + v / rs.length / gib)
    const total = [...merged.values()].reduce((a, b) => a + b, 0)
    console.log(`  profile, self time in ms per GiB (mean of ${rs.length}), total ${total.toFixed(0)}:`)
    for (const [k, v] of [...merged.entries()].sort((a, b) => b[1] - a[1]).slice(0, 18)) console.log(`    ${v.toFixed(0).padStart(6)}  ${k}`)
    console.log(`  top functions (first rep, ms per GiB):`)
    for (const [fn, ms] of rs[0]!.topFunctions!.slice(0, 15)) console.log(`    ${(ms / gib).toFixed(0).padStart(6)}  ${fn}`)
  }
}

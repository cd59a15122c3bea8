// npx tsx test/bench/s3/cluster-profile.ts [--mib N] [--out DIR]
//
// A CPU profile of the gateway process over a real cluster (under the bench lock):
// starts `blobfs up` (12 node processes, the embedded catalog), then a second
// `blobfs gateway` on the same cluster run with `node --cpu-prof`, once for a large
// multipart PUT (16 MiB parts, 8 in flight, through @aws-sdk/client-s3 with its
// default settings) and once for the large GET (8 parallel ranged reads of 16 MiB),
// and prints for each the gateway process's CPU per GiB and its top functions by
// self time (with the profile files left in --out for a closer look).
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { blobfsBin } from '../../support/cluster.ts'
import { cpuSecondsOf } from '../../support/processes.ts'
import { startUp } from '../../support/up.ts'
import { benchFlag } from '../report.ts'
import { inParallel, s3Target } from './targets.ts'

const argv = process.argv.slice(2)
const flag = (name: string) => benchFlag(name, argv)
const MiB = 1024 * 1024
const objectBytes = Number(flag('--mib') ?? 256) * MiB
const out = flag('--out') ?? mkdtempSync(join(tmpdir(), 'blobfs-s3-profile-'))
const partBytes = 16 * MiB

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
}

/** Self time by function (ms), the largest first. */
function topFunctions(file: string, count: number): string[] {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[] }
  const msPerSample = (profile.endTime - profile.startTime) / 1000 / profile.samples.length
  const self = new Map<string, number>()
  for (const node of profile.nodes) {
    const { functionName, url, lineNumber } = node.callFrame
    const where = url ? `${url.replace(/^.*\/(node_modules|src)\//, '$1/')}:${lineNumber + 1}` : ''
    const name = `${functionName || '(anonymous)'} ${where}`.trim()
    self.set(name, (self.get(name) ?? 0) + (node.hitCount ?? 0) * msPerSample)
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0)
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, ms]) => `${ms.toFixed(0).padStart(7)} ms ${((100 * ms) / total).toFixed(1).padStart(5)}%  ${name}`)
}

async function profiled(catalogUrl: string, credentials: { accessKeyId: string; secretAccessKey: string }, phase: string, work: (t: ReturnType<typeof s3Target>) => Promise<number>) {
  const dir = join(out, phase)
  mkdirSync(dir, { recursive: true })
  const child = spawn(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, blobfsBin, 'gateway', '--catalog', catalogUrl, '--listen', '127.0.0.1:0', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] })
  try {
    const endpoint = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the gateway did not start in 120 s')), 120_000)
      child.once('exit', (code) => reject(new Error(`the gateway exited (${code})`)))
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const match = /^blobfs gateway listening on (\S+)/.exec(line)
        if (match) {
          clearTimeout(timer)
          resolve(match[1]!)
        }
      })
    })
    const target = s3Target(`gateway (${phase})`, { endpoint, ...credentials }, async () => {}, 'profile')
    const cpu0 = cpuSecondsOf(child.pid!)
    const started = performance.now()
    const moved = await work(target)
    const seconds = (performance.now() - started) / 1000
    const cpuS = cpuSecondsOf(child.pid!) - cpu0
    await target.close()
    const gib = moved / (1024 * MiB)
    console.log(`\n${phase}: ${(moved / MiB / seconds).toFixed(1)} MiB/s, gateway process ${((cpuS * 1000) / gib).toFixed(0)} ms CPU per GiB (load ${loadavg()[0]!.toFixed(1)})`)
  } finally {
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGINT')
    await exited
  }
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
  if (file) for (const line of topFunctions(join(dir, file), 25)) console.log(line)
}

const root = mkdtempSync(join(tmpdir(), 'blobfs-s3-profile-up-'))
const up = await startUp(join(root, 'up'), ['--block-size', '1GiB'])
try {
  const part = randomBytes(partBytes)
  let created = false
  await profiled(up.cluster.catalogUrl, up.credentials, 'put', async (t) => {
    await t.createBucket()
    created = true
    await t.putLarge('large.bin', objectBytes, part, 8)
    return objectBytes
  })
  if (!created) throw new Error('no bucket')
  await profiled(up.cluster.catalogUrl, up.credentials, 'get', async (t) => {
    for (let r = 0; r < 2; r++) {
      await inParallel(objectBytes / partBytes, 8, async (i) => {
        const bytes = await t.getRange('large.bin', i * partBytes, (i + 1) * partBytes - 1)
        if (bytes !== partBytes) throw new Error(`read ${bytes} bytes`)
      })
    }
    return 2 * objectBytes
  })
  console.log(`\nprofiles in ${out}`)
} finally {
  await up.stop()
  up.kill()
  rmSync(root, { recursive: true, force: true })
}

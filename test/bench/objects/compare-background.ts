// Before/after for what a cluster's own background work does to a GET's time to
// first byte: two `blobfs up` clusters run at once, one of another source tree
// (--base DIR: its catalog, nodes and their heartbeats, registry refreshes and
// queue polls) and one of this tree, both read by this tree's object layer, GET
// for GET alternating between them, so the machine's load falls on both alike and
// only what their nodes send their embedded catalogs differs. Every catalog lookup
// is timed (its share of the first byte).
// npx tsx test/bench/objects/compare-background.ts --base DIR [--quick] [--json]
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { Readable } from 'node:stream'
import { randomBytes } from 'node:crypto'
import { openCluster, type Cluster, type ClusterFile } from '../../../src/cli/cluster.ts'
import { emitJson, formatNumber, parseBenchArgs, percentile, printTable, type Figures } from '../report.ts'
import { baseAndThisTree, timeCatalogCalls } from './shared.ts'

const options = parseBenchArgs()
const trees = baseAndThisTree('usage: npx tsx test/bench/objects/compare-background.ts --base DIR [--quick] [--json]')
type Tree = keyof typeof trees
const order: Tree[] = ['base', 'this']
const samplesPerSize = options.quick ? 150 : 300
const settleMs = options.quick ? 5_000 : 10_000
const MiB = 1024 * 1024

interface Up {
  child: ChildProcess
  cluster: ClusterFile
}

function startUp(tree: Tree, dataDir: string): Promise<Up> {
  const child = spawn(process.execPath, [join(trees[tree], 'src', 'cli', 'bin.mjs'), 'up', '--data', dataDir, '--listen', '127.0.0.1:0', '--block-size', '256MiB'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  return new Promise((resolveUp, reject) => {
    const timer = setTimeout(() => reject(new Error(`${tree}: blobfs up not ready in 180 s`)), 180_000)
    child.once('exit', (code) => reject(new Error(`${tree}: blobfs up exited (${code})`)))
    child.stderr!.resume()
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line !== 'blobfs ready') return
      clearTimeout(timer)
      child.removeAllListeners('exit')
      resolveUp({ child, cluster: JSON.parse(readFileSync(join(dataDir, 'cluster.json'), 'utf8')) as ClusterFile })
    })
  })
}

async function stopUp(up: Up): Promise<void> {
  if (up.child.exitCode !== null || up.child.signalCode !== null) return
  const exited = new Promise<void>((r) => up.child.once('exit', () => r()))
  up.child.kill('SIGINT')
  const timer = setTimeout(() => {
    try {
      process.kill(-up.child.pid!, 'SIGKILL')
    } catch {
      // gone
    }
  }, 30_000)
  await exited
  clearTimeout(timer)
}


async function firstByteMs(cluster: Cluster, key: string, sizeBytes: number): Promise<number> {
  const started = performance.now()
  const read = await cluster.objects.getObject('background', key)
  const chunks = read.body[Symbol.asyncIterator]()
  const first = await chunks.next()
  const ms = performance.now() - started
  if (first.done) throw new Error(`GET of ${sizeBytes} bytes returned no data`)
  let bytes = (first.value as Buffer).length
  for (let next = await chunks.next(); !next.done; next = await chunks.next()) bytes += (next.value as Buffer).length
  if (bytes !== sizeBytes) throw new Error(`GET returned ${bytes} of ${sizeBytes} bytes`)
  return ms
}

async function main(): Promise<void> {
  const figures: Figures = { load_average_1m_at_start: loadavg()[0]! }
  const root = mkdtempSync(join(tmpdir(), 'blobfs-bench-compare-background-'))
  const ups: Partial<Record<Tree, Up>> = {}
  const clusters: Partial<Record<Tree, Cluster>> = {}
  try {
    for (const tree of order) ups[tree] = await startUp(tree, join(root, tree))
    for (const tree of order) clusters[tree] = await openCluster(ups[tree]!.cluster.catalogUrl)
    const lookups: Record<Tree, number[]> = { base: timeCatalogCalls(clusters.base!, 'lookup'), this: timeCatalogCalls(clusters.this!, 'lookup') }
    for (const [name, size] of [['4kib', 4096], ['1mib', MiB]] as const) {
      const data = randomBytes(size)
      const keys = Array.from({ length: 20 }, (_, i) => `${name}-${i}`)
      for (const tree of order) {
        await clusters[tree]!.objects.createBucket('background', 'bench').catch(() => {})
        for (const key of keys) await clusters[tree]!.objects.putObject('background', key, Readable.from([data]))
      }
      await new Promise((r) => setTimeout(r, settleMs)) // the PUTs' own after-effects pass
      const samples: Record<Tree, number[]> = { base: [], this: [] }
      for (const tree of order) lookups[tree].splice(0)
      for (let i = 0; i < samplesPerSize; i++) {
        for (const tree of i % 2 === 0 ? order : [...order].reverse()) samples[tree].push(await firstByteMs(clusters[tree]!, keys[i % keys.length]!, size))
      }
      for (const tree of order) {
        figures[`ttfb_${name}_${tree}_p50_ms`] = percentile(samples[tree], 50)
        figures[`ttfb_${name}_${tree}_p90_ms`] = percentile(samples[tree], 90)
        figures[`ttfb_${name}_${tree}_p99_ms`] = percentile(samples[tree], 99)
        figures[`ttfb_${name}_${tree}_lookup_p50_ms`] = percentile(lookups[tree], 50)
        figures[`ttfb_${name}_${tree}_lookup_p99_ms`] = percentile(lookups[tree], 99)
      }
    }
  } finally {
    await Promise.allSettled(Object.values(clusters).map((c) => c!.close()))
    await Promise.allSettled(Object.values(ups).map((u) => stopUp(u!)))
    rmSync(root, { recursive: true, force: true })
  }
  figures.samples_per_size = samplesPerSize
  figures.load_average_1m_at_end = loadavg()[0]!
  const f = (name: string) => formatNumber(figures[name] as number)
  const row = (label: string, name: string) => [
    label,
    `${f(`ttfb_${name}_base_p50_ms`)} / ${f(`ttfb_${name}_base_p90_ms`)} / ${f(`ttfb_${name}_base_p99_ms`)}`,
    `${f(`ttfb_${name}_this_p50_ms`)} / ${f(`ttfb_${name}_this_p90_ms`)} / ${f(`ttfb_${name}_this_p99_ms`)}`,
  ]
  const lookupRow = (label: string, name: string) => [
    label,
    `${f(`ttfb_${name}_base_lookup_p50_ms`)} / ${f(`ttfb_${name}_base_lookup_p99_ms`)}`,
    `${f(`ttfb_${name}_this_lookup_p50_ms`)} / ${f(`ttfb_${name}_this_lookup_p99_ms`)}`,
  ]
  printTable(
    `Two clusters side by side, base (${trees.base}) and this tree, ${samplesPerSize} GETs each per size, alternating; load ${f('load_average_1m_at_start')} at the start, ${f('load_average_1m_at_end')} at the end`,
    ['measure', 'base', 'this'],
    [
      row('4 KiB GET time to first byte p50 / p90 / p99 (ms)', '4kib'),
      lookupRow('  of which the catalog lookup, p50 / p99 (ms)', '4kib'),
      row('1 MiB GET time to first byte p50 / p90 / p99 (ms)', '1mib'),
      lookupRow('  of which the catalog lookup, p50 / p99 (ms)', '1mib'),
    ],
  )
  emitJson(options, figures)
}

await main()

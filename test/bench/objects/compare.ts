// Before/after for the object layer on a shared machine: two source trees measured
// side by side in one run, their requests interleaved, so that the machine's load
// (which moves the absolute figures several-fold from one minute to the next)
// falls on both alike. Measured:
//   - time to first byte of 4 KiB (inline) and 1 MiB objects, each tree's object
//     layer against the same `blobfs up` cluster (of this tree), alternating GETs;
//   - client CPU seconds per GiB of a PUT and a GET of a 256 MiB object through
//     each tree's object layer, alternating (the order flips every round);
//   - CPU seconds per GiB of chunk data a standalone `blobfs node` of each tree
//     spends receiving, verifying and appending 2 MiB chunk PUTs (12 at a time,
//     fdatasync), the two nodes fed alternately by one client; then the CPU seconds
//     per GiB each node spends serving those chunks back (whole-chunk GETs, 12 in
//     flight), read alternately by one client.
// The other tree needs its own node_modules and native addon, e.g.:
//   mkdir /tmp/base && git archive COMMIT | tar -x -C /tmp/base
//   ln -s "$PWD/node_modules" /tmp/base/node_modules && cp -r native/build /tmp/base/native/
//   npx tsx test/bench/objects/compare.ts --base /tmp/base [--quick] [--json]
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { Readable } from 'node:stream'
import type { Cluster } from '../../../src/cli/cluster.ts'
import { startUp } from '../../support/up.ts'
import { emitJson, formatNumber, median, parseBenchArgs, percentile, printTable, type Figures } from '../report.ts'
import { baseAndThisTree } from './shared.ts'

const options = parseBenchArgs()
const trees = baseAndThisTree('usage: npx tsx test/bench/objects/compare.ts --base DIR [--quick] [--json]   (DIR: another blobfs source tree)')
type Tree = keyof typeof trees
const order: Tree[] = ['base', 'this']
const MiB = 1024 * 1024
const GiB = 1024 * MiB
const ttfbSamples = options.quick ? 100 : 300
const rounds = options.quick ? 2 : 4
const objectBytes = 256 * MiB
const nodeBytes = (options.quick ? 128 : 256) * MiB
const pattern = randomBytes(64 * MiB)

function* body(sizeBytes: number): Generator<Buffer> {
  for (let offset = 0; offset < sizeBytes; offset += MiB) {
    const at = offset % pattern.length
    yield pattern.subarray(at, at + Math.min(MiB, sizeBytes - offset))
  }
}

const ownCpuS = () => {
  const usage = process.cpuUsage()
  return (usage.user + usage.system) / 1e6
}

function cpuSecondsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** Each round runs base then this, or this then base: neither is always first. */
const inRoundOrder = (round: number): Tree[] => (round % 2 === 0 ? order : [...order].reverse())

async function ttfb(clusters: Record<Tree, Cluster>, sizeBytes: number): Promise<Record<Tree, number[]>> {
  const keys = Array.from({ length: 20 }, (_, i) => `compare-${sizeBytes}-${i}`)
  for (const key of keys) await clusters.this.objects.putObject('compare', key, Readable.from(body(sizeBytes)))
  const samples: Record<Tree, number[]> = { base: [], this: [] }
  for (let i = 0; i < ttfbSamples; i++) {
    for (const tree of inRoundOrder(i)) {
      const started = performance.now()
      const chunks = (await clusters[tree].objects.getObject('compare', keys[i % keys.length]!)).body[Symbol.asyncIterator]()
      let next = await chunks.next()
      samples[tree].push(performance.now() - started)
      let bytes = 0
      for (; !next.done; next = await chunks.next()) bytes += (next.value as Buffer).length
      if (bytes !== sizeBytes) throw new Error(`${tree}: GET returned ${bytes} of ${sizeBytes} bytes`)
    }
  }
  return samples
}

async function clientCpu(clusters: Record<Tree, Cluster>): Promise<Record<Tree, { put: number[]; get: number[] }>> {
  const out: Record<Tree, { put: number[]; get: number[] }> = { base: { put: [], get: [] }, this: { put: [], get: [] } }
  for (let round = 0; round < rounds; round++) {
    for (const tree of inRoundOrder(round)) {
      const { objects } = clusters[tree]
      let cpu = ownCpuS()
      await objects.putObject('compare', `big-${tree}`, Readable.from(body(objectBytes)))
      out[tree].put.push((ownCpuS() - cpu) / (objectBytes / GiB))
      cpu = ownCpuS()
      let bytes = 0
      for await (const piece of (await objects.getObject('compare', `big-${tree}`)).body) bytes += (piece as Buffer).length
      if (bytes !== objectBytes) throw new Error(`${tree}: GET returned ${bytes} of ${objectBytes} bytes`)
      out[tree].get.push((ownCpuS() - cpu) / (objectBytes / GiB))
    }
  }
  return out
}

interface StandaloneNode {
  child: ChildProcess
  url: string
  dir: string
}

async function startNode(tree: Tree): Promise<StandaloneNode> {
  const dir = mkdtempSync(join(tmpdir(), `blobfs-compare-node-${tree}-`))
  const child = spawn(process.execPath, [join(trees[tree], 'src', 'cli', 'bin.mjs'), 'node', '--data', dir, '--listen', '127.0.0.1:0', '--block-size', '1GiB'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`${tree} node did not start in 180 s`)), 180_000)
    child.once('exit', (code) => reject(new Error(`${tree} node exited (${code})`)))
    createInterface({ input: child.stderr! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string }
        if (entry.msg === 'storage node listening' && entry.url) {
          clearTimeout(timer)
          resolveUrl(entry.url)
        }
      } catch {
        // not a log line
      }
    })
  })
  child.removeAllListeners('exit')
  return { child, url, dir }
}

async function stopNode(node: StandaloneNode): Promise<void> {
  if (node.child.exitCode === null && node.child.signalCode === null) {
    const exited = once(node.child, 'exit')
    node.child.kill('SIGTERM')
    await exited
  }
  rmSync(node.dir, { recursive: true, force: true })
}

/** CPU s per GiB of chunks each tree's node spends on 2 MiB chunk PUTs, then on GETs of them, 12 in flight. */
async function nodeReceiveAndServe(): Promise<{ receive: Record<Tree, number[]>; serve: Record<Tree, number[]> }> {
  const { HttpChunkStore } = await import('../../../src/cluster/http-store.ts')
  const { checksumTree } = await import('../../../src/codec/checksum.ts')
  const nodes = { base: await startNode('base'), this: await startNode('this') }
  const stores = { base: new HttpChunkStore({ resolve: () => nodes.base.url }), this: new HttpChunkStore({ resolve: () => nodes.this.url }) }
  try {
    const chunks = Array.from({ length: 12 }, (_, i) => pattern.subarray(i * 2 * MiB, (i + 1) * 2 * MiB))
    const trees12 = chunks.map((c) => checksumTree(c))
    const stored: Record<Tree, { id: string; index: number }[]> = { base: [], this: [] }
    const send = async (tree: Tree, bytes: number) => {
      let sent = 0
      await Promise.all(chunks.map(async (chunk, i) => {
        while (sent < bytes) {
          sent += chunk.length
          const id = randomUUID()
          await stores[tree].put('n', id, chunk, trees12[i]!)
          stored[tree].push({ id, index: i })
        }
      }))
    }
    const serve = async (tree: Tree, bytes: number) => {
      let next = 0
      let read = 0
      await Promise.all(chunks.map(async () => {
        while (read < bytes) {
          const { id, index } = stored[tree][next++ % stored[tree].length]!
          read += chunks[index]!.length
          const got = await stores[tree].get('n', id)
          if (got.length !== chunks[index]!.length) throw new Error(`chunk ${id} came back with ${got.length} bytes`)
        }
      }))
    }
    for (const tree of order) await send(tree, 64 * MiB) // warm up both
    const out: Record<Tree, number[]> = { base: [], this: [] }
    for (let round = 0; round < rounds; round++) {
      for (const tree of inRoundOrder(round)) {
        const before = cpuSecondsOf(nodes[tree].child.pid!)
        await send(tree, nodeBytes)
        out[tree].push((cpuSecondsOf(nodes[tree].child.pid!) - before) / (nodeBytes / GiB))
      }
    }
    for (const tree of order) await serve(tree, 64 * MiB) // warm up both
    const served: Record<Tree, number[]> = { base: [], this: [] }
    for (let round = 0; round < rounds; round++) {
      for (const tree of inRoundOrder(round)) {
        const before = cpuSecondsOf(nodes[tree].child.pid!)
        await serve(tree, nodeBytes)
        served[tree].push((cpuSecondsOf(nodes[tree].child.pid!) - before) / (nodeBytes / GiB))
      }
    }
    return { receive: out, serve: served }
  } finally {
    await Promise.all(order.map((tree) => stores[tree].close()))
    await Promise.all(order.map((tree) => stopNode(nodes[tree])))
  }
}

async function main(): Promise<void> {
  const figures: Figures = { load_average_1m_at_start: loadavg()[0]! }
  const root = mkdtempSync(join(tmpdir(), 'blobfs-bench-compare-'))
  const up = await startUp(join(root, 'up'), ['--block-size', '1GiB'])
  try {
    const open = async (tree: Tree) => ((await import(join(trees[tree], 'src', 'cli', 'cluster.ts'))) as typeof import('../../../src/cli/cluster.ts')).openCluster(up.cluster.catalogUrl)
    const clusters = { base: await open('base'), this: await open('this') }
    try {
      await clusters.this.objects.createBucket('compare', 'bench')
      for (const [name, size] of [['4kib', 4096], ['1mib', MiB]] as const) {
        const samples = await ttfb(clusters, size)
        for (const tree of order) {
          figures[`ttfb_${name}_${tree}_p50_ms`] = percentile(samples[tree], 50)
          figures[`ttfb_${name}_${tree}_p99_ms`] = percentile(samples[tree], 99)
        }
      }
      const cpu = await clientCpu(clusters)
      for (const tree of order) {
        figures[`put_client_${tree}_cpu_s_per_gib`] = median(cpu[tree].put)
        figures[`get_client_${tree}_cpu_s_per_gib`] = median(cpu[tree].get)
      }
    } finally {
      await Promise.all(order.map((tree) => clusters[tree].close()))
    }
  } finally {
    await up.stop()
    rmSync(root, { recursive: true, force: true })
  }
  const { receive, serve } = await nodeReceiveAndServe()
  for (const tree of order) figures[`node_receive_${tree}_cpu_s_per_gib`] = median(receive[tree])
  for (const tree of order) figures[`node_serve_${tree}_cpu_s_per_gib`] = median(serve[tree])
  figures.load_average_1m_at_end = loadavg()[0]!
  const f = (name: string) => formatNumber(figures[name] as number)
  printTable(`Base (${trees.base}) and this tree, interleaved in one run; load ${f('load_average_1m_at_start')} at the start, ${f('load_average_1m_at_end')} at the end`, ['measure', 'base', 'this'], [
    ['4 KiB GET time to first byte p50 / p99 (ms)', `${f('ttfb_4kib_base_p50_ms')} / ${f('ttfb_4kib_base_p99_ms')}`, `${f('ttfb_4kib_this_p50_ms')} / ${f('ttfb_4kib_this_p99_ms')}`],
    ['1 MiB GET time to first byte p50 / p99 (ms)', `${f('ttfb_1mib_base_p50_ms')} / ${f('ttfb_1mib_base_p99_ms')}`, `${f('ttfb_1mib_this_p50_ms')} / ${f('ttfb_1mib_this_p99_ms')}`],
    [`PUT, client CPU s per GiB (median of ${rounds})`, f('put_client_base_cpu_s_per_gib'), f('put_client_this_cpu_s_per_gib')],
    [`GET, client CPU s per GiB (median of ${rounds})`, f('get_client_base_cpu_s_per_gib'), f('get_client_this_cpu_s_per_gib')],
    [`standalone node receiving 2 MiB chunks, CPU s per GiB of chunks (median of ${rounds})`, f('node_receive_base_cpu_s_per_gib'), f('node_receive_this_cpu_s_per_gib')],
    [`standalone node serving 2 MiB chunk GETs, CPU s per GiB of chunks (median of ${rounds})`, f('node_serve_base_cpu_s_per_gib'), f('node_serve_this_cpu_s_per_gib')],
  ])
  emitJson(options, figures)
}

await main()

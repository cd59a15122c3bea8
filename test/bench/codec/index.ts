// npm run bench -- codec [--quick] [--json]
// RS(8,4) on one thread: encode, and rebuild of 1, 2 and 4 lost data shards, at
// shard sizes 64 KiB, 1 MiB and 2 MiB, in GB/s of user data (k * shard bytes per
// operation, 1 GB = 1e9 bytes); the same work through @ronomon/reed-solomon in
// the same run, interleaved repetition by repetition so both see the same
// machine; and CRC32C throughput. Figures are medians over the repetitions of
// median ~2 ms batch rates (see rate()).
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { cpus, loadavg } from 'node:os'
import { checksumTree, crc32c, kernels, ReedSolomon, type Kernel } from '../../../src/codec/index.ts'
import { emitJson, median, parseBenchArgs, printTable, type Figures } from '../report.ts'

interface Ronomon {
  create(k: number, m: number): unknown
  encode(
    context: unknown,
    sources: number,
    targets: number,
    buffer: Buffer,
    bufferOffset: number,
    bufferSize: number,
    parity: Buffer,
    parityOffset: number,
    paritySize: number,
    callback: (error?: Error) => void,
  ): void
}

const options = parseBenchArgs()
const k = 8
const m = 4
const KiB = 1024
const shardSizes = [
  { label: '64kib', title: '64 KiB', bytes: 64 * KiB },
  { label: '1mib', title: '1 MiB', bytes: 1024 * KiB },
  { label: '2mib', title: '2 MiB', bytes: 2048 * KiB },
]
const lostCounts = [1, 2, 4]
const repetitions = options.quick ? 2 : 9
const repetitionMs = options.quick ? 15 : 150
const batchMs = 2

const ronomon = createRequire(import.meta.url)('@ronomon/reed-solomon') as Ronomon

/**
 * Runs `op` for about repetitionMs in batches of at least batchMs and returns
 * the median batch rate in GB/s of `bytesPerOp`. The machine is shared (2
 * cores, other engineers' tests): a batch shorter than a scheduler slice is
 * either preempted or not, and the median batch is the speed of the code rather
 * than of whoever else ran. Every codec is measured the same way.
 */
async function rate(bytesPerOp: number, op: () => void | Promise<void>): Promise<number> {
  await op() // warm: caches, page faults, decode matrices
  const batchRates: number[] = []
  const started = performance.now()
  while (performance.now() - started < repetitionMs || batchRates.length < 3) {
    let ops = 0
    const batchStarted = performance.now()
    let elapsedMs = 0
    while (elapsedMs < batchMs || ops === 0) {
      await op()
      ops++
      elapsedMs = performance.now() - batchStarted
    }
    batchRates.push((ops * bytesPerOp) / (elapsedMs / 1000) / 1e9)
  }
  return median(batchRates)
}

/** Median over repetitions of each named measurement, the measurements interleaved. */
async function measure(named: Record<string, () => Promise<number>>): Promise<Record<string, number>> {
  const samples: Record<string, number[]> = Object.fromEntries(Object.keys(named).map((name) => [name, []]))
  for (let r = 0; r < repetitions; r++) {
    for (const [name, run] of Object.entries(named)) samples[name]!.push(await run())
  }
  return Object.fromEntries(Object.entries(samples).map(([name, values]) => [name, median(values)]))
}

function ronomonCall(context: unknown, sources: number, targets: number, data: Buffer, parity: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    ronomon.encode(context, sources, targets, data, 0, data.length, parity, 0, parity.length, (error) => (error ? reject(error) : resolve()))
  })
}

function cpuLine(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'))
    return line ? line.replace(/^model name\s*:\s*/, '') : cpus()[0]?.model ?? 'unknown'
  } catch {
    return cpus()[0]?.model ?? 'unknown'
  }
}

// The machine is shared: the load average at the start says how busy it was.
const figures: Figures = { kernel: kernels.default, cpu: cpuLine(), repetitions, loadavg_1m_start: Number(loadavg()[0]!.toFixed(2)) }
const rows: (string | number)[][] = []
// The default kernel (the fastest the CPU runs), and AVX2 as well when the
// default is another: the targets are set for AVX2.
const tableKernels: Kernel[] = [kernels.default]
if (kernels.default !== 'avx2' && kernels.available.includes('avx2')) tableKernels.push('avx2')

for (const size of shardSizes) {
  const userBytes = k * size.bytes
  // Ours: k + m separate Buffers. Ronomon: its layout, data and parity contiguous.
  const shards = Array.from({ length: k + m }, (_, i) => (i < k ? randomBytes(size.bytes) : Buffer.alloc(size.bytes)))
  const context = ronomon.create(k, m)
  const data = Buffer.concat(shards.slice(0, k))
  const parity = Buffer.alloc(m * size.bytes)
  const dataMask = (1 << k) - 1
  const parityMask = ((1 << (k + m)) - 1) & ~dataMask
  // Parity is not compared: ronomon uses another generator matrix. Only speed is.
  await ronomonCall(context, dataMask, parityMask, data, parity)

  const named: Record<string, () => Promise<number>> = {}
  for (const kernel of tableKernels) {
    const rs = new ReedSolomon(k, m, { kernel })
    rs.encode(shards)
    named[`${kernel}:encode`] = () => rate(userBytes, () => rs.encode(shards))
    if (kernel === kernels.default) named[`${kernel}:encode_async`] = () => rate(userBytes, () => rs.encodeAsync(shards))
    for (const lost of lostCounts) {
      // Lose the first `lost` data shards; rebuild just those (a degraded read).
      const present = shards.map((_, i) => i >= lost)
      const wanted = shards.map((_, i) => i < lost)
      named[`${kernel}:reconstruct_${lost}lost`] = () => rate(userBytes, () => rs.reconstruct(shards, present, wanted))
    }
  }
  named['ronomon:encode'] = () => rate(userBytes, () => ronomonCall(context, dataMask, parityMask, data, parity))
  for (const lost of lostCounts) {
    const lostMask = (1 << lost) - 1
    const sources = ((1 << (k + m)) - 1) & ~lostMask
    named[`ronomon:reconstruct_${lost}lost`] = () => rate(userBytes, () => ronomonCall(context, sources, lostMask, data, parity))
  }
  const results = await measure(named)
  const round = (x: number): number => Number(x.toFixed(3))
  for (const [name, gbps] of Object.entries(results)) {
    const [who, what] = name.split(':') as [string, string]
    if (who === 'ronomon') figures[`ronomon_rs_8_4_${what}_${size.label}_gbps`] = round(gbps)
    else {
      if (who === kernels.default) figures[`rs_8_4_${what}_${size.label}_gbps`] = round(gbps)
      figures[`rs_8_4_${who}_${what}_${size.label}_gbps`] = round(gbps)
    }
  }
  for (const kernel of tableKernels) {
    const ratio = results[`${kernel}:encode`]! / results['ronomon:encode']!
    figures[`rs_8_4_${kernel}_encode_vs_ronomon_${size.label}_x`] = Number(ratio.toFixed(2))
    if (kernel === kernels.default) figures[`rs_8_4_encode_vs_ronomon_${size.label}_x`] = Number(ratio.toFixed(2))
    rows.push([
      size.title,
      kernel === kernels.default ? `${kernel} (default)` : kernel,
      results[`${kernel}:encode`]!,
      results[`${kernel}:encode_async`] ?? '',
      results[`${kernel}:reconstruct_1lost`]!,
      results[`${kernel}:reconstruct_2lost`]!,
      results[`${kernel}:reconstruct_4lost`]!,
      `${ratio.toFixed(2)}x`,
    ])
  }
  rows.push([
    size.title,
    '@ronomon/reed-solomon',
    results['ronomon:encode']!,
    '',
    results['ronomon:reconstruct_1lost']!,
    results['ronomon:reconstruct_2lost']!,
    results['ronomon:reconstruct_4lost']!,
    '1x',
  ])
}

// Every kernel at the reference point (1 MiB shards): the kernels of the
// table above are taken from it, the others (scalar, SSSE3) measured here.
const kernelRows: (string | number)[][] = []
{
  const shardBytes = 1024 * KiB
  const shards = Array.from({ length: k + m }, () => randomBytes(shardBytes))
  const present = shards.map((_, i) => i >= 2)
  const wanted = shards.map((_, i) => i < 2)
  const named: Record<string, () => Promise<number>> = {}
  for (const kernel of kernels.available.filter((x) => !tableKernels.includes(x))) {
    const rs = new ReedSolomon(k, m, { kernel })
    named[`rs_8_4_${kernel}_encode_1mib_gbps`] = () => rate(k * shardBytes, () => rs.encode(shards))
    named[`rs_8_4_${kernel}_reconstruct_2lost_1mib_gbps`] = () => rate(k * shardBytes, () => rs.reconstruct(shards, present, wanted))
  }
  for (const [key, gbps] of Object.entries(await measure(named))) figures[key] = Number(gbps.toFixed(3))
  for (const kernel of kernels.available) {
    kernelRows.push([
      kernel === kernels.default ? `${kernel} (default)` : kernel,
      figures[`rs_8_4_${kernel}_encode_1mib_gbps`] as number,
      figures[`rs_8_4_${kernel}_reconstruct_2lost_1mib_gbps`] as number,
    ])
  }
}

const crcRows: (string | number)[][] = []
// CRC32C: raw over 1 MiB, and the checksum tree of a 2 MiB chunk (32 pages + root).
{
  const buffer = randomBytes(1024 * KiB)
  const chunk = randomBytes(2048 * KiB)
  const results = await measure({
    crc32c: () => rate(buffer.length, () => void crc32c(buffer)),
    tree: () => rate(chunk.length, () => void checksumTree(chunk)),
  })
  figures.crc32c_1mib_gbps = Number(results.crc32c!.toFixed(3))
  figures.checksum_tree_2mib_gbps = Number(results.tree!.toFixed(3))
  crcRows.push(['CRC32C of 1 MiB (fast-crc32c)', results.crc32c!])
  crcRows.push(['checksum tree of a 2 MiB chunk (32 pages + root)', results.tree!])
}

figures.loadavg_1m_end = Number(loadavg()[0]!.toFixed(2))
console.log(
  `RS(8,4), one thread, kernel ${kernels.default}, ${cpuLine()}; GB/s of user data (k x shard bytes per op), median of ${repetitions}; ` +
    `load average ${figures.loadavg_1m_start} at start, ${figures.loadavg_1m_end} at end`,
)
printTable(
  'Codec: RS(8,4) encode and rebuild of lost data shards, GB/s of user data',
  ['shard size', 'codec', 'encode', 'encode (async)', 'rebuild 1 lost', 'rebuild 2 lost', 'rebuild 4 lost', 'encode vs ronomon'],
  rows,
)
printTable('Codec: each kernel forced, RS(8,4), 1 MiB shards, GB/s of user data', ['kernel', 'encode', 'rebuild 2 lost'], kernelRows)
printTable('CRC32C, GB/s', ['what', 'GB/s'], crcRows)
emitJson(options, figures)

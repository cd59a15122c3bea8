// `blobfs selftest`: proves this machine's codec before any data is trusted to
// it. Checks every kernel the CPU runs against a known answer, encodes and
// rebuilds random stripes on each, checks the kernels agree byte for byte, and
// prints the kernel chosen and its speed.
// Until the cluster exists (`blobfs up`), this is the README's first command.
import { randomBytes, randomInt } from 'node:crypto'
import type { CommandModule } from 'yargs'
import { kernels, ReedSolomon, type Kernel } from '../../codec/index.ts'
import { units } from '../../limits.ts'

interface SelftestArgs {
  stripes: number
  'shard-kib': number
  'data-shards': number
  'parity-shards': number
  json: boolean
}

interface KernelReport {
  kernel: Kernel
  encodeGbps: number
  reconstructGbps: number
}

// A known answer from an independent implementation (Intel ISA-L, the same
// generator and field): RS(8,4) parity of 8 x 37 bytes from the LCG below.
const knownParityHex = [
  '1981d00bb820d62f669ad8fe6e0f3b848fc0f622df971e98f6b08a037be0500b6ce09dc224',
  'c7df053df0256a77c1457d436a17a27f7c8552706496e91b709beff84603b0116d5a9841e0',
  '1afad914644037054b106cacb962f5e1c6e5d57fff0b9a5fe1c8df9ab032778c21639162bd',
  '189166345ebd0a668f82f0d9aca7b3cc1ea7b8575bce96985aafc18018e8650b7f95b256b2',
]

function checkKnownAnswer(): string[] {
  const problems: string[] = []
  let state = 4
  const lcg = (): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0
    return (state >>> 16) & 0xff
  }
  const data = Array.from({ length: 8 }, () => Buffer.from(Array.from({ length: 37 }, lcg)))
  for (const kernel of kernels.available) {
    const shards = [...data.map((d) => Buffer.from(d)), ...Array.from({ length: 4 }, () => Buffer.alloc(37))]
    new ReedSolomon(8, 4, { kernel }).encode(shards)
    shards.slice(8).forEach((parity, p) => {
      if (parity.toString('hex') !== knownParityHex[p]) problems.push(`${kernel}: RS(8,4) known-answer parity ${p} is wrong`)
    })
  }
  return problems
}

/** Random stripes on every kernel; returns the mismatches found (none is a pass). */
function checkAgreement(k: number, m: number, stripes: number, maxShardBytes: number): string[] {
  const problems: string[] = []
  const codecs = kernels.available.map((kernel) => new ReedSolomon(k, m, { kernel }))
  for (let s = 0; s < stripes; s++) {
    // Odd lengths too: the SIMD kernels hand their unaligned tail to the scalar
    // path; every fourth stripe is long enough to cross the kernels' column tiles.
    const lengthBytes = s === 0 ? 0 : randomInt(1, (s % 4 === 3 ? 70_000 : maxShardBytes) + 1)
    const data = Array.from({ length: k }, () => randomBytes(lengthBytes))
    const results = codecs.map((rs) => {
      const shards = [...data.map((d) => Buffer.from(d)), ...Array.from({ length: m }, () => Buffer.alloc(lengthBytes))]
      rs.encode(shards)
      return shards
    })
    for (let c = 1; c < codecs.length; c++) {
      for (let p = k; p < k + m; p++) {
        if (!results[c]![p]!.equals(results[0]![p]!)) {
          problems.push(`stripe ${s} (${lengthBytes} B/shard): parity ${p - k} from ${codecs[c]!.kernel} differs from ${codecs[0]!.kernel}`)
        }
      }
    }
    const lost = new Set<number>()
    const lostCount = randomInt(1, m + 1)
    while (lost.size < lostCount) lost.add(randomInt(0, k + m))
    codecs.forEach((rs, c) => {
      const original = results[c]!
      const shards = original.map((shard, i) => (lost.has(i) ? Buffer.alloc(lengthBytes, 0xa5) : Buffer.from(shard)))
      rs.reconstruct(shards, shards.map((_, i) => !lost.has(i)))
      shards.forEach((shard, i) => {
        if (!shard.equals(original[i]!)) problems.push(`stripe ${s}: ${rs.kernel} rebuilt shard ${i} wrong (lost ${[...lost].join(',')})`)
      })
    })
  }
  return problems
}

/** Bytes of user data per second through encode and a 2-shard rebuild: a rough figure. */
function measure(kernel: Kernel, k: number, m: number, shardBytes: number): KernelReport {
  const rs = new ReedSolomon(k, m, { kernel })
  const shards = Array.from({ length: k + m }, () => randomBytes(shardBytes))
  const userBytes = k * shardBytes
  const rate = (run: () => void): number => {
    run()
    let ops = 0
    const started = performance.now()
    let elapsedMs = 0
    while (elapsedMs < 150) {
      run()
      ops++
      elapsedMs = performance.now() - started
    }
    return (ops * userBytes) / (elapsedMs / 1000) / 1e9
  }
  const encodeGbps = rate(() => rs.encode(shards))
  const present = shards.map((_, i) => i !== 0 && i !== 1)
  const reconstructGbps = rate(() => rs.reconstruct(shards, present))
  return { kernel, encodeGbps, reconstructGbps }
}

export const selftestCommand: CommandModule<object, SelftestArgs> = {
  command: 'selftest',
  describe: 'check the erasure codec on every CPU kernel and print the kernel chosen and its speed',
  builder: (yargs) =>
    yargs
      .option('stripes', { type: 'number', default: 20, describe: 'random stripes to encode and rebuild per kernel' })
      .option('shard-kib', { type: 'number', default: 1024, describe: 'shard size for the throughput figure, KiB' })
      .option('data-shards', { type: 'number', default: 8, describe: 'K, data shards per stripe' })
      .option('parity-shards', { type: 'number', default: 4, describe: 'M, parity shards per stripe' })
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON object instead of text' })
      .example('$0 selftest', 'check RS(8,4) on every kernel, then measure 1 MiB shards')
      .example('$0 selftest --data-shards 10 --parity-shards 4 --stripes 100', 'check RS(10,4) on 100 random stripes')
      .example('BLOBFS_CODEC_KERNEL=scalar $0 selftest', 'make the portable scalar kernel the default'),
  handler: (args) => {
    const k = args['data-shards']
    const m = args['parity-shards']
    const shardBytes = Math.max(1, Math.round(args['shard-kib'] * units.KiB))
    const problems = [...checkKnownAnswer(), ...checkAgreement(k, m, args.stripes, 4096 + 63)]
    const reports = kernels.available.map((kernel) => measure(kernel, k, m, shardBytes))
    const ok = problems.length === 0
    if (args.json) {
      console.log(JSON.stringify({ ok, kernel: kernels.default, available: kernels.available, rs: `${k}+${m}`, shardBytes, reports, problems }))
    } else {
      console.log(`blobfs codec selftest: RS(${k},${m}), ${args.stripes} random stripes on ${kernels.available.join(', ')}`)
      for (const problem of problems) console.log(`  MISMATCH ${problem}`)
      console.log(
        ok
          ? '  every kernel gives the known-answer parity, agrees byte for byte with the others, and rebuilds the original'
          : `  ${problems.length} mismatches`,
      )
      console.log(`throughput, one core, ${args['shard-kib']} KiB shards (GB/s of user data):`)
      for (const r of reports) {
        const mark = r.kernel === kernels.default ? '  <- chosen' : ''
        console.log(`  ${r.kernel.padEnd(7)} encode ${r.encodeGbps.toFixed(2).padStart(6)}   rebuild 2 lost ${r.reconstructGbps.toFixed(2).padStart(6)}${mark}`)
      }
      console.log(`kernel: ${kernels.default}`)
    }
    if (!ok) process.exitCode = 1
  },
}

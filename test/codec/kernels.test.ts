// The kernels agree byte for byte: every SIMD kernel this CPU runs gives what the
// scalar kernel gives, and what the TypeScript oracle gives, for encode and for
// rebuilds, across vector-size boundaries, unaligned tails, column tiles and
// output groups larger than one register pass.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import fc from 'fast-check'
import { kernels, ReedSolomon, type Kernel } from '../../src/codec/index.ts'
import { copyShards, erasurePatterns, makeShards, seededRandom } from './helpers.ts'
import { referenceEncode, referenceReconstruct } from './reference.ts'

const simdKernels = kernels.available.filter((k) => k !== 'scalar')

test('the kernels offered are exactly those the CPU flags allow, and the fastest is the default', () => {
  // The test machines (and CI) are x86-64 with AVX2: a build or a detection that
  // lost the fast paths there would fail here rather than pass slowly. AVX-512
  // (with GFNI) is offered exactly when /proc/cpuinfo lists its flags.
  if (process.arch === 'x64') {
    const flags = new Set(readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)![1]!.trim().split(/\s+/))
    const expected = ['scalar', 'ssse3', 'avx2']
    if (['avx512f', 'avx512bw', 'avx512vl', 'gfni'].every((f) => flags.has(f))) expected.push('avx512')
    assert.deepEqual(kernels.available, expected)
  }
  assert.equal(kernels.default, process.env.BLOBFS_CODEC_KERNEL || kernels.available.at(-1))
  for (const kernel of kernels.available) assert.equal(new ReedSolomon(4, 2, { kernel }).kernel, kernel)
})

function encodeWith(kernel: Kernel, k: number, m: number, data: readonly Buffer[]): Buffer[] {
  const shards = [...data.map((d) => Buffer.from(d)), ...Array.from({ length: m }, () => Buffer.alloc(data[0]!.length))]
  new ReedSolomon(k, m, { kernel }).encode(shards)
  return shards
}

const lengthArbitrary = fc.oneof(
  fc.constantFrom(1, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 95, 96, 97),
  fc.integer({ min: 0, max: 600 }),
  fc.integer({ min: 16_000, max: 40_000 }), // crosses the 16 KiB column tiles
)

test('every kernel encodes what scalar and the oracle encode', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 16 }), lengthArbitrary, fc.integer(), (k, m, lengthBytes, seed) => {
      const data = makeShards(k, m, lengthBytes, seed).slice(0, k)
      const scalar = encodeWith('scalar', k, m, data)
      if (lengthBytes <= 600) {
        const oracle = referenceEncode(k, m, data)
        for (let p = 0; p < m; p++) assert.ok(scalar[k + p]!.equals(oracle[p]!), `scalar parity ${p} vs oracle`)
      }
      for (const kernel of simdKernels) {
        const simd = encodeWith(kernel, k, m, data)
        for (let p = 0; p < m; p++) {
          assert.ok(simd[k + p]!.equals(scalar[k + p]!), `${kernel} parity ${p} vs scalar, RS(${k},${m}) ${lengthBytes} B`)
        }
      }
    }),
    { numRuns: 120 },
  )
})

test('every kernel rebuilds what scalar and the oracle rebuild', () => {
  fc.assert(
    fc.property(fc.constantFrom<[number, number]>([8, 4], [10, 4], [12, 4], [4, 2], [6, 12], [16, 16], [32, 32]), lengthArbitrary, fc.integer(), ([k, m], lengthBytes, seed) => {
      const original = encodeWith('scalar', k, m, makeShards(k, m, lengthBytes, seed).slice(0, k))
      for (const missing of erasurePatterns(k + m, m, 12, seededRandom(seed))) {
        const present = original.map((_, i) => !missing.includes(i))
        if (lengthBytes <= 600) {
          const rebuilt = referenceReconstruct(k, m, original, present)
          rebuilt.forEach((s, i) => assert.ok(s.equals(original[i]!), `oracle rebuilt shard ${i} wrong`))
        }
        for (const kernel of kernels.available) {
          const shards = copyShards(original)
          for (const i of missing) shards[i]!.fill(0x5a)
          new ReedSolomon(k, m, { kernel }).reconstruct(shards, present)
          shards.forEach((s, i) => assert.ok(s.equals(original[i]!), `${kernel}: RS(${k},${m}) ${lengthBytes} B lost [${missing}] shard ${i}`))
        }
      }
    }),
    { numRuns: 40 },
  )
})

test('SIMD kernels read and write shards at every misalignment', () => {
  const k = 5
  const m = 9 // more outputs than one register pass: two groups
  const lengthBytes = 3 * 1024 + 29
  for (let offset = 0; offset < 33; offset += 4) {
    const arena = Buffer.alloc(offset + (k + m) * (lengthBytes + 3))
    const shards = Array.from({ length: k + m }, (_, i) => arena.subarray(offset + i * (lengthBytes + 3), offset + i * (lengthBytes + 3) + lengthBytes))
    makeShards(k, m, lengthBytes, offset).forEach((s, i) => s.copy(shards[i]!))
    const scalar = encodeWith('scalar', k, m, shards.slice(0, k))
    for (const kernel of simdKernels) {
      for (const s of shards.slice(k)) s.fill(0)
      new ReedSolomon(k, m, { kernel }).encode(shards)
      for (let p = k; p < k + m; p++) assert.ok(shards[p]!.equals(scalar[p]!), `${kernel} offset ${offset} parity ${p - k}`)
    }
  }
})

test('shards that alias in the caches (4 KiB apart, as Node lays out large Buffers) take the grouped path and agree', () => {
  // Spacing a multiple of 4 KiB puts every stream at the same cache set: the
  // SIMD kernels then read inputs a few at a time and accumulate into outputs.
  for (const [k, m, lengthBytes] of [[8, 4, 5 * 4096 - 3], [10, 4, 40_000], [12, 4, 70_001], [20, 9, 33_000], [3, 7, 20_000]] as const) {
    const spacing = Math.ceil(lengthBytes / 4096) * 4096
    for (const kernel of kernels.available) {
      const arena = Buffer.alloc((k + m) * spacing + 16)
      const shards = Array.from({ length: k + m }, (_, i) => arena.subarray(16 + i * spacing, 16 + i * spacing + lengthBytes))
      makeShards(k, m, lengthBytes, k * m).forEach((s, i) => s.copy(shards[i]!))
      const expected = encodeWith('scalar', k, m, shards.slice(0, k).map((s) => Buffer.from(s)))
      const rs = new ReedSolomon(k, m, { kernel })
      rs.encode(shards)
      shards.forEach((s, i) => assert.ok(s.equals(expected[i]!), `${kernel} RS(${k},${m}) aliased: encoded shard ${i}`))
      const lost = Array.from({ length: m }, (_, i) => (i * 3) % (k + m))
      for (const i of lost) shards[i]!.fill(0)
      rs.reconstruct(shards, shards.map((_, i) => !lost.includes(i)))
      shards.forEach((s, i) => assert.ok(s.equals(expected[i]!), `${kernel} RS(${k},${m}) aliased: rebuilt shard ${i}`))
    }
  }
})

function childKernel(value: string): ReturnType<typeof spawnSync> {
  const script = "import('./src/codec/index.ts').then((c) => console.log(c.kernels.default, new c.ReedSolomon(8, 4).kernel))"
  return spawnSync(process.execPath, ['--import', 'tsx', '-e', script], {
    cwd: new URL('../..', import.meta.url),
    env: { ...process.env, BLOBFS_CODEC_KERNEL: value },
    encoding: 'utf8',
  })
}

test('BLOBFS_CODEC_KERNEL forces the default kernel; a name that cannot run fails the load', () => {
  for (const kernel of kernels.available) {
    const result = childKernel(kernel)
    assert.equal(result.status, 0, String(result.stderr))
    assert.equal(String(result.stdout).trim(), `${kernel} ${kernel}`)
  }
  const bogus = childKernel('neon')
  assert.notEqual(bogus.status, 0)
  assert.match(String(bogus.stderr), /BLOBFS_CODEC_KERNEL='neon' is not a kernel; kernels: scalar, ssse3, avx2, avx512/)
})

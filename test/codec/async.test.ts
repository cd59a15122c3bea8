// The asynchronous calls (libuv threadpool) give the same bytes as the
// synchronous ones, run many at once safely, keep their Buffers alive while in
// flight, and report bad arguments as rejections. And the decode matrix cache.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { test } from 'node:test'
import fc from 'fast-check'
import { kernels, ReedSolomon } from '../../src/codec/index.ts'
import { copyShards, makeShards } from './helpers.ts'

test('encodeAsync and reconstructAsync agree with encode and reconstruct on every kernel', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom<[number, number]>([8, 4], [10, 4], [4, 2], [1, 1], [20, 12]),
      fc.integer({ min: 0, max: 70_000 }),
      fc.integer(),
      fc.constantFrom(...kernels.available),
      async ([k, m], lengthBytes, seed, kernel) => {
        const rs = new ReedSolomon(k, m, { kernel })
        const sync = makeShards(k, m, lengthBytes, seed)
        const async_ = copyShards(sync)
        rs.encode(sync)
        await rs.encodeAsync(async_)
        async_.forEach((s, i) => assert.ok(s.equals(sync[i]!), `encode shard ${i}`))
        const lost = new Set([seed & 0xff, (seed >>> 8) & 0xff].map((x) => x % (k + m)).slice(0, m))
        for (const i of lost) async_[i]!.fill(0)
        await rs.reconstructAsync(async_, async_.map((_, i) => !lost.has(i)))
        async_.forEach((s, i) => assert.ok(s.equals(sync[i]!), `reconstruct shard ${i}`))
      },
    ),
    { numRuns: 40 },
  )
})

test('many calls in flight at once, on one codec, all give the right bytes', async () => {
  const rs = new ReedSolomon(8, 4)
  const stripes = Array.from({ length: 24 }, (_, s) => makeShards(8, 4, 64 * 1024 + s, s))
  const expected = stripes.map((shards) => {
    const copy = copyShards(shards)
    rs.encode(copy)
    return copy
  })
  await Promise.all(stripes.map((shards) => rs.encodeAsync(shards)))
  stripes.forEach((shards, s) => shards.forEach((shard, i) => assert.ok(shard.equals(expected[s]![i]!), `stripe ${s} shard ${i}`)))
  // Rebuilds with different patterns at once share the cached decode matrices.
  const damaged = expected.map((shards, s) => {
    const copy = copyShards(shards)
    copy[s % 12]!.fill(0)
    copy[(s + 5) % 12]!.fill(0)
    return copy
  })
  await Promise.all(damaged.map((shards, s) => rs.reconstructAsync(shards, shards.map((_, i) => i !== s % 12 && i !== (s + 5) % 12))))
  damaged.forEach((shards, s) => shards.forEach((shard, i) => assert.ok(shard.equals(expected[s]![i]!), `rebuilt stripe ${s} shard ${i}`)))
})

test('bad arguments reject the promise with the same errors', async () => {
  const rs = new ReedSolomon(4, 2)
  const shards = makeShards(4, 2, 32, 1)
  await assert.rejects(rs.encodeAsync(shards.slice(1)), RangeError)
  await assert.rejects(rs.encodeAsync([...shards.slice(0, 5), 'x' as unknown as Buffer]), TypeError)
  await assert.rejects(rs.reconstructAsync(shards, [false, false, false, true, true, true]), { name: 'RangeError', code: 'TooManyErasures' })
})

test('Buffers handed to an asynchronous call stay alive until it completes (child with --expose-gc)', () => {
  // One threadpool thread, busy with a long scalar encode, so the small call
  // waits in the queue. The caller keeps only a WeakRef to its shards; forced
  // garbage collections must not take them while the call is in flight. The
  // call goes straight to the binding: the TypeScript async method's own frame
  // would hold the shards and hide a missing reference in C.
  const script = `
    const { ReedSolomon } = await import('./src/codec/index.ts')
    const { native } = await import('./src/codec/native.ts')
    const slow = new ReedSolomon(8, 4, { kernel: 'scalar' })
    const blocker = slow.encodeAsync(Array.from({ length: 12 }, (_, i) => Buffer.alloc(8 << 20, i)))
    const rs = new ReedSolomon(8, 4)
    const codec = native.create(8, 4)
    let done = false
    const weak = (() => {
      const shards = Array.from({ length: 12 }, (_, i) => Buffer.alloc(4096, i < 8 ? i + 1 : 0))
      const ref = new WeakRef(shards[8])
      native.encodeAsync(codec, shards).then(() => { done = true })
      return ref
    })()
    let aliveInFlight = 0
    for (let i = 0; i < 5; i++) {
      globalThis.gc()
      await new Promise((resolve) => setImmediate(resolve))
      if (!done && weak.deref() !== undefined) aliveInFlight++
      if (!done && weak.deref() === undefined) { console.log('collected while in flight'); process.exit(1) }
    }
    await blocker
    while (!done) await new Promise((resolve) => setImmediate(resolve))
    const parity = weak.deref()
    const check = Array.from({ length: 12 }, (_, i) => Buffer.alloc(4096, i < 8 ? i + 1 : 0))
    rs.encode(check)
    console.log(aliveInFlight, parity === undefined ? 'collected' : parity.equals(check[8]) ? 'same' : 'different')
  `
  const result = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: new URL('../..', import.meta.url),
    env: { ...process.env, UV_THREADPOOL_SIZE: '1' },
    encoding: 'utf8',
  })
  assert.equal(result.status, 0, result.stdout + result.stderr)
  const [aliveInFlight, verdict] = result.stdout.trim().split(' ')
  assert.ok(Number(aliveInFlight) > 0, 'the call was still in flight during a collection')
  assert.equal(verdict, 'same')
})

test('small asynchronous calls run inline; large ones wait for the threadpool', () => {
  // One threadpool thread, busy with a long scalar encode queued first: a call
  // that went to the pool cannot have run when encodeAsync returns, one that ran
  // inline has. At most codecInlineBytesMax (256 KiB) of input runs inline.
  const script = `
    const { ReedSolomon } = await import('./src/codec/index.ts')
    const slow = new ReedSolomon(8, 4, { kernel: 'scalar' })
    const blocker = slow.encodeAsync(Array.from({ length: 12 }, (_, i) => Buffer.alloc(8 << 20, i)))
    const rs = new ReedSolomon(8, 4)
    const shardsOf = (bytes) => Array.from({ length: 12 }, (_, i) => Buffer.alloc(bytes, i < 8 ? i + 1 : 0))
    const small = shardsOf(32 * 1024)
    const large = shardsOf(32 * 1024 + 1)
    const smallDone = rs.encodeAsync(small)
    const largeDone = rs.encodeAsync(large)
    const ranInline = [small, large].map((s) => s[8].some((b) => b !== 0))
    const lost = small.map((s) => Buffer.from(s))
    lost[0].fill(0)
    const rebuilt = rs.reconstructAsync(lost, lost.map((_, i) => i !== 0))
    const rebuiltInline = lost[0].equals(small[0])
    await Promise.all([blocker, smallDone, largeDone, rebuilt])
    console.log(JSON.stringify({ ranInline, rebuiltInline, largeDoneLater: large[8].some((b) => b !== 0) }))
  `
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: new URL('../..', import.meta.url),
    env: { ...process.env, UV_THREADPOOL_SIZE: '1' },
    encoding: 'utf8',
  })
  assert.equal(result.status, 0, result.stdout + result.stderr)
  assert.deepEqual(JSON.parse(result.stdout), { ranInline: [true, false], rebuiltInline: true, largeDoneLater: true })
})

test('decode matrices are cached per erasure pattern, evicted least recently used', () => {
  const rs = new ReedSolomon(8, 4)
  const original = makeShards(8, 4, 100, 3)
  rs.encode(original)
  const rebuild = (lost: number[], wanted?: number[]): void => {
    const shards = copyShards(original)
    for (const i of lost) shards[i]!.fill(0)
    rs.reconstruct(shards, shards.map((_, i) => !lost.includes(i)), wanted && shards.map((_, i) => wanted.includes(i)))
    for (const i of wanted ?? lost) assert.ok(shards[i]!.equals(original[i]!), `shard ${i}`)
  }
  assert.deepEqual(rs.decodeCacheStats, { hits: 0, misses: 0, entries: 0 })
  rebuild([0, 1])
  rebuild([0, 1])
  rebuild([0, 1])
  assert.deepEqual(rs.decodeCacheStats, { hits: 2, misses: 1, entries: 1 })
  // Same losses, fewer wanted: another matrix.
  rebuild([0, 1], [1])
  assert.deepEqual(rs.decodeCacheStats, { hits: 2, misses: 2, entries: 2 })
  // 20 more patterns: the cache holds 16, the oldest go first, results stay right.
  for (let i = 0; i < 20; i++) rebuild([2 + (i % 10), Math.floor(i / 10)], [2 + (i % 10)])
  assert.equal(rs.decodeCacheStats.entries, 16)
  const missesBefore = rs.decodeCacheStats.misses
  rebuild([0, 1])
  assert.equal(rs.decodeCacheStats.misses, missesBefore + 1, 'the first pattern was evicted')
})

test('the addon loads and encodes in worker threads too (one instance per thread)', async () => {
  const { Worker } = await import('node:worker_threads')
  const source = `
    const { parentPort } = require('node:worker_threads')
    import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
      .then(({ register }) => register())
      .then(() => import(${JSON.stringify(new URL('../../src/codec/index.ts', import.meta.url).href)}))
      .then(({ ReedSolomon }) => {
      const shards = Array.from({ length: 12 }, (_, i) => Buffer.alloc(5000, i < 8 ? i * 37 + 1 : 0))
      new ReedSolomon(8, 4).encode(shards)
      parentPort.postMessage(Buffer.concat(shards.slice(8)).toString('hex'))
    })
  `
  const expected = Array.from({ length: 12 }, (_, i) => Buffer.alloc(5000, i < 8 ? i * 37 + 1 : 0))
  new ReedSolomon(8, 4).encode(expected)
  const results = await Promise.all(
    [0, 1].map(
      () =>
        new Promise<string>((resolve, reject) => {
          const worker = new Worker(source, { eval: true })
          worker.once('message', (hex: string) => {
            resolve(hex)
            void worker.terminate()
          })
          worker.once('error', reject)
        }),
    ),
  )
  for (const hex of results) assert.equal(hex, Buffer.concat(expected.slice(8)).toString('hex'))
})

// Bad arguments throw TypeError/RangeError with a clear message, never crash and
// never write: through the typed API (validated in TypeScript) and straight into
// the native binding (validated again in C, which must not trust its caller).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ReedSolomon } from '../../src/codec/index.ts'
import { native } from '../../src/codec/native.ts'
import { makeShards } from './helpers.ts'

function throwsWith(fn: () => unknown, type: typeof TypeError | typeof RangeError, message: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof type, `expected ${type.name}, got ${String(error)}`)
    assert.match((error as Error).message, message)
    return true
  })
}

test('constructor: shard counts out of range or not integers', () => {
  throwsWith(() => new ReedSolomon(0, 4), RangeError, /dataShards must be an integer from 1 to 254/)
  throwsWith(() => new ReedSolomon(8, 0), RangeError, /parityShards must be an integer from 1 to 254/)
  throwsWith(() => new ReedSolomon(8.5, 4), RangeError, /dataShards/)
  throwsWith(() => new ReedSolomon(200, 56), RangeError, /at most 255, got 200 \+ 56/)
  throwsWith(() => new ReedSolomon('8' as unknown as number, 4), TypeError, /dataShards must be an integer/)
  throwsWith(() => new ReedSolomon(8, 4, { kernel: 'neon' as 'scalar' }), RangeError, /kernel 'neon' is not available/)
  assert.equal(new ReedSolomon(254, 1).totalShards, 255)
})

test('encode: wrong shard count, non-Buffers, unequal lengths, overlapping parity', () => {
  const rs = new ReedSolomon(4, 2)
  const shards = makeShards(4, 2, 32, 1)
  throwsWith(() => rs.encode(shards.slice(0, 5)), RangeError, /expected 6 shards \(4 data \+ 2 parity\), got 5/)
  throwsWith(() => rs.encode('nope' as unknown as Buffer[]), TypeError, /shards must be an array/)
  throwsWith(() => rs.encode([...shards.slice(0, 5), new Uint16Array(16) as unknown as Buffer]), TypeError, /shard 5 is not a Buffer/)
  throwsWith(() => rs.encode([...shards.slice(0, 5), Buffer.alloc(31)]), RangeError, /shards differ in length/)
  const parity = shards[4]!
  throwsWith(() => rs.encode([...shards.slice(0, 5), parity]), RangeError, /shard 4 shares memory with shard 5/)
  throwsWith(() => rs.encode([...shards.slice(0, 4), shards[0]!, shards[5]!]), RangeError, /shard 4 shares memory with shard 0/)
})

test('reconstruct: bad present/wanted flags and missing Buffers', () => {
  const rs = new ReedSolomon(4, 2)
  const shards = makeShards(4, 2, 32, 1)
  rs.encode(shards)
  const present = [false, true, true, true, true, true]
  throwsWith(() => rs.reconstruct(shards, present.slice(1)), RangeError, /present must have one flag per shard \(6\), got 5/)
  throwsWith(() => rs.reconstruct(shards, present, [true]), RangeError, /wanted must have one flag per shard/)
  throwsWith(() => rs.reconstruct(shards, 'all' as unknown as boolean[]), TypeError, /present must be an array/)
  throwsWith(() => rs.reconstruct([null, ...shards.slice(1)], present), TypeError, /shard 0 is not a Buffer/)
  throwsWith(() => rs.reconstruct([...shards.slice(0, 5), null], present), TypeError, /shard 5 is not a Buffer/)
})

test('native create: C checks the counts and the kernel itself', () => {
  throwsWith(() => native.create(0, 4), RangeError, /dataShards must be an integer from 1 to 254, got 0/)
  throwsWith(() => native.create(8, 300), RangeError, /parityShards must be an integer from 1 to 254, got 300/)
  throwsWith(() => native.create(128, 128), RangeError, /at most 255, got 128 \+ 128/)
  throwsWith(() => native.create(Number.NaN, 4), RangeError, /dataShards/)
  throwsWith(() => native.create({} as unknown as number, 4), TypeError, /dataShards must be an integer/)
  throwsWith(() => (native.create as unknown as (k: number) => unknown)(8), TypeError, /needs two shard counts/)
  throwsWith(() => native.create(8, 4, 'neon'), RangeError, /unknown kernel 'neon'/)
  throwsWith(() => native.create(8, 4, 7 as unknown as string), TypeError, /kernel must be a string/)
})

test('native encode/reconstruct: C rejects what TypeScript would have', () => {
  const codec = native.create(4, 2)
  const shards = makeShards(4, 2, 32, 1)
  const call = native as unknown as Record<string, (...args: unknown[]) => unknown>
  throwsWith(() => call.encode!({}, shards), TypeError, /codec handle expected/)
  throwsWith(() => call.encode!(codec), TypeError, /expected 2 arguments, got 1/)
  throwsWith(() => call.encode!(codec, {}), TypeError, /shards must be an array/)
  throwsWith(() => call.encode!(codec, shards.slice(1)), RangeError, /expected 6 shards/)
  throwsWith(() => call.encode!(codec, [...shards.slice(0, 5), 'x']), TypeError, /shard 5 is not a Buffer/)
  throwsWith(() => call.encode!(codec, [...shards.slice(0, 5), new Float32Array(8)]), TypeError, /shard 5 is not a Buffer/)
  throwsWith(() => call.encode!(codec, [...shards.slice(0, 5), Buffer.alloc(33)]), RangeError, /shards differ in length/)
  throwsWith(() => call.encode!(codec, [...shards.slice(0, 5), shards[4]!.subarray(0)]), RangeError, /shares memory/)
  // A view one byte off still overlaps.
  const arena = Buffer.alloc(33)
  throwsWith(() => call.encode!(codec, [...shards.slice(0, 4), arena.subarray(0, 32), arena.subarray(1, 33)]), RangeError, /shares memory/)

  const roles = Uint8Array.from([0, 1, 1, 1, 1, 2])
  throwsWith(() => call.reconstruct!(codec, shards, [0, 1, 1, 1, 1, 1]), TypeError, /roles must be a Uint8Array/)
  throwsWith(() => call.reconstruct!(codec, shards, new Uint16Array(6)), TypeError, /roles must be a Uint8Array/)
  throwsWith(() => call.reconstruct!(codec, shards, roles.subarray(1)), RangeError, /expected 6 shard roles, got 5/)
  throwsWith(() => call.reconstruct!(codec, shards, Uint8Array.from([3, 1, 1, 1, 1, 1])), RangeError, /role of shard 0 is 3/)
  throwsWith(() => call.reconstruct!(codec, shards, Uint8Array.from([2, 2, 2, 1, 1, 1])), RangeError, /too many shards missing: 3 of 6 present/)
  throwsWith(() => call.reconstruct!(codec, [null, ...shards.slice(1)], Uint8Array.from([2, 1, 1, 1, 1, 1])), TypeError, /shard 0 is not a Buffer/)
  // A shard that is neither present nor wanted is not looked at.
  call.reconstruct!(codec, [null, ...shards.slice(1)], Uint8Array.from([0, 1, 1, 1, 1, 1]))
})

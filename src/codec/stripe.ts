// Cutting a stripe into K equal data shards and putting it back together. The
// shard size is ceil(length / K) and the tail is zero-padded, so every shard of a
// stripe has one length (what the codec needs) and the padding is never stored
// twice: the object's length in the catalog says where the bytes end.
import assert from 'node:assert/strict'

/** Bytes per shard for a stripe of `lengthBytes` cut into `dataShards` shards. */
export function shardSizeFor(lengthBytes: number, dataShards: number): number {
  if (!Number.isSafeInteger(lengthBytes) || lengthBytes < 0) throw new RangeError(`stripe length must be a non-negative integer, got ${lengthBytes}`)
  if (!Number.isSafeInteger(dataShards) || dataShards < 1) throw new RangeError(`dataShards must be a positive integer, got ${dataShards}`)
  return Math.ceil(lengthBytes / dataShards)
}

/**
 * Cuts `data` into `dataShards` shards of shardSizeFor(data.length) bytes. Shards
 * that lie wholly inside `data` are views of it (no copy: do not reuse `data`
 * while they are in use); the shard holding the end and any after it are new,
 * zero-padded Buffers.
 */
export function splitStripe(data: Buffer, dataShards: number): Buffer[] {
  if (!Buffer.isBuffer(data)) throw new TypeError('data must be a Buffer')
  const shardSizeBytes = shardSizeFor(data.length, dataShards)
  const shards: Buffer[] = []
  for (let i = 0; i < dataShards; i++) {
    const start = i * shardSizeBytes
    const end = start + shardSizeBytes
    if (end <= data.length) {
      shards.push(data.subarray(start, end))
    } else {
      const shard = Buffer.alloc(shardSizeBytes)
      if (start < data.length) data.copy(shard, 0, start)
      shards.push(shard)
    }
  }
  assert.equal(shards.length, dataShards)
  return shards
}

/**
 * The first `lengthBytes` bytes of the shards laid end to end: the inverse of
 * splitStripe. Pass the data shards (extra shards after them are ignored once
 * `lengthBytes` is reached). Returns a new Buffer.
 */
export function joinStripe(shards: readonly Buffer[], lengthBytes: number): Buffer {
  if (!Array.isArray(shards)) throw new TypeError('shards must be an array of Buffers')
  if (!Number.isSafeInteger(lengthBytes) || lengthBytes < 0) throw new RangeError(`stripe length must be a non-negative integer, got ${lengthBytes}`)
  const out = Buffer.allocUnsafe(lengthBytes)
  let offset = 0
  for (let i = 0; i < shards.length && offset < lengthBytes; i++) {
    const shard = shards[i]
    if (!Buffer.isBuffer(shard)) throw new TypeError(`shard ${i} is not a Buffer`)
    if (i > 0 && shard.length !== shards[0]!.length) {
      throw new RangeError(`shards differ in length: shard ${i} is ${shard.length} bytes, shard 0 is ${shards[0]!.length}`)
    }
    offset += shard.copy(out, offset, 0, Math.min(shard.length, lengthBytes - offset))
  }
  if (offset < lengthBytes) throw new RangeError(`shards hold ${offset} bytes, fewer than the ${lengthBytes} asked for`)
  return out
}

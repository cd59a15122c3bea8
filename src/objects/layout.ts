// How an object's bytes map onto stripes and chunks (DESIGN.md, "Objects,
// stripes, chunks"). Pure arithmetic, kept apart so that the writer, the reader,
// repair and the tests agree on one definition.
//
// A part of P bytes is cut into stripes of S bytes (the last one shorter). A stripe
// of L bytes becomes k data shards of s = ceil(L / k) bytes — shard i holds stripe
// bytes [i*s, (i+1)*s), zero-padded past L — plus m parity shards of s bytes.
// Because the code is systematic, a byte of the stripe is read from exactly one
// data chunk; a range of the stripe is a handful of contiguous pieces of data chunks.
import assert from 'node:assert/strict'

export interface ErasureScheme {
  dataShards: number
  parityShards: number
}

export function schemeName(scheme: ErasureScheme): string {
  return `RS_${scheme.dataShards}_${scheme.parityShards}`
}

export function parseScheme(name: string): ErasureScheme | 'INLINE' {
  if (name === 'INLINE') return 'INLINE'
  const match = /^RS_(\d+)_(\d+)$/.exec(name)
  assert.ok(match, `unknown erasure coding scheme ${name}`)
  return { dataShards: Number(match[1]), parityShards: Number(match[2]) }
}

export function stripeCount(partLengthBytes: number, stripeSizeBytes: number): number {
  assert.ok(partLengthBytes >= 0 && stripeSizeBytes > 0)
  return Math.ceil(partLengthBytes / stripeSizeBytes)
}

export function shardSizeFor(stripeLengthBytes: number, dataShards: number): number {
  assert.ok(stripeLengthBytes > 0 && dataShards > 0)
  return Math.ceil(stripeLengthBytes / dataShards)
}

/** A contiguous piece of one data shard, and where it lands in the output. */
export interface ShardPiece {
  shard: number
  /** Offset inside the shard (the chunk). */
  offsetBytes: number
  lengthBytes: number
  /** Offset inside the requested range. */
  outputOffsetBytes: number
}

/** The data-shard pieces that hold stripe bytes [offset, offset + length). */
export function dataPieces(stripeLengthBytes: number, dataShards: number, offsetBytes: number, lengthBytes: number): ShardPiece[] {
  assert.ok(offsetBytes >= 0 && lengthBytes >= 0 && offsetBytes + lengthBytes <= stripeLengthBytes)
  if (lengthBytes === 0) return []
  const shardSize = shardSizeFor(stripeLengthBytes, dataShards)
  const pieces: ShardPiece[] = []
  let position = offsetBytes
  const end = offsetBytes + lengthBytes
  while (position < end) {
    const shard = Math.floor(position / shardSize)
    const inShard = position - shard * shardSize
    const take = Math.min(shardSize - inShard, end - position)
    pieces.push({ shard, offsetBytes: inShard, lengthBytes: take, outputOffsetBytes: position - offsetBytes })
    position += take
  }
  return pieces
}

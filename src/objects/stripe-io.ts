// Writing and reading one stripe: the data path under every PUT and GET.
//
// Write: the stripe is split into k data shards, encoded into m parity shards,
// each chunk checksummed and stored on its own node (placement.ts), with alternates
// tried when a node fails. It succeeds with all k+m chunks, or with at least k+1
// and the missing ones reported for repair; below that nothing is kept.
//
// Read: a byte range becomes pieces of data chunks (layout.ts), fetched directly —
// no decode on a healthy read. A piece whose chunk is missing, rotten or too slow
// (hedged after the recent p95 of similar reads, hedge.ts, or at most `hedgeAfterMs`)
// is rebuilt from the same column range of k other chunks: RS works column by column,
// so a sub-range decodes on its own.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { checksumTree } from '../codec/checksum.ts'
import { ReedSolomon } from '../codec/reed-solomon.ts'
import { BlobfsError, errorCodeOf, isBlobfsError, type ErrorCode } from '../errors.ts'
import type { ChunkId, ChunkStore, NodeId } from '../cluster/chunk-store.ts'
import { StripePlacement, type NodeCandidate } from '../cluster/placement.ts'
import type { HedgePolicy } from './hedge.ts'
import { dataPieces, shardSizeFor, type ShardPiece } from './layout.ts'

/** The erasure code as the object layer needs it (an adapter over src/codec). */
export interface StripeCodec {
  readonly dataShards: number
  readonly parityShards: number
  /** Fills shards[k .. k+m) from shards[0 .. k); all of equal length. */
  encode(shards: Buffer[]): Promise<void>
  /** Fills every shard with wanted[i] && !present[i] from k present shards. */
  reconstruct(shards: Buffer[], present: boolean[], wanted: boolean[]): Promise<void>
}

export interface ChunkRecord {
  chunkIndex: number
  nodeId: NodeId
  chunkId: ChunkId
  lengthBytes: number
  /** Root of the chunk's CRC32C checksum tree. */
  root: number
}

export interface StripeRecord {
  lengthBytes: number
  shardSizeBytes: number
  /** The chunks that exist (at most k+m, any order). */
  chunks: ChunkRecord[]
}

export interface WrittenStripe extends StripeRecord {
  /** Chunk indexes that could not be stored; they must become repair tasks. */
  missingChunkIndexes: number[]
}

export interface WriteStripeContext {
  store: ChunkStore
  codec: StripeCodec
  candidates: readonly NodeCandidate[]
  /** Names the stripe for placement (the stripe's own UUID is a good key). */
  stripeKey: string
  putTimeoutMs: number
  signal?: AbortSignal
  /**
   * Buffers for the m parity shards, reused across a PUT's stripes (used when each
   * is exactly the shard size, else fresh ones are allocated). The caller may reuse
   * them once the returned promise settles: every chunk put has settled by then.
   */
  parityBuffers?: readonly Buffer[]
}

export async function writeStripe(context: WriteStripeContext, data: Buffer): Promise<WrittenStripe> {
  const { codec, store } = context
  const k = codec.dataShards
  const m = codec.parityShards
  assert.ok(data.length > 0, 'an empty stripe is never written')
  const shardSize = shardSizeFor(data.length, k)
  const shards = splitIntoShards(data, k, m, shardSize, context.parityBuffers)
  await codec.encode(shards)

  const placement = new StripePlacement(context.stripeKey, context.candidates, k + m, m)
  const stored: (ChunkRecord | undefined)[] = new Array(k + m).fill(undefined)
  const failures: unknown[] = []
  await Promise.all(
    shards.map(async (shard, chunkIndex) => {
      const tree = checksumTree(shard)
      const chunkId = randomUUID()
      for (let node = placement.nodes[chunkIndex]; node; node = placement.replace(chunkIndex)) {
        if (context.signal?.aborted) break
        try {
          await store.put(node.id, chunkId, shard, tree, withTimeout(context.signal, context.putTimeoutMs))
          stored[chunkIndex] = { chunkIndex, nodeId: node.id, chunkId, lengthBytes: shard.length, root: tree.root }
          return
        } catch (error) {
          failures.push(error)
        }
      }
    }),
  )
  if (context.signal?.aborted) {
    await deleteQuietly(store, stored)
    throw new BlobfsError('Timeout', 'stripe write aborted', { cause: context.signal.reason })
  }
  const chunks = stored.filter((c): c is ChunkRecord => c !== undefined)
  if (chunks.length < Math.min(k + 1, k + m)) {
    await deleteQuietly(store, stored)
    throw new BlobfsError(
      'NotEnoughNodes',
      `stored ${chunks.length} of ${k + m} chunks of a stripe; at least ${k + 1} are required`,
      { cause: failures[0] },
    )
  }
  const missingChunkIndexes = stored.flatMap((c, i) => (c === undefined ? [i] : []))
  return { lengthBytes: data.length, shardSizeBytes: shardSize, chunks, missingChunkIndexes }
}

/** k data shards (views into `data` where possible, a padded copy for the tail) + m parity buffers. */
function splitIntoShards(data: Buffer, k: number, m: number, shardSize: number, parity: readonly Buffer[] = []): Buffer[] {
  const shards: Buffer[] = []
  for (let i = 0; i < k; i++) {
    const start = i * shardSize
    const end = start + shardSize
    if (end <= data.length) {
      shards.push(data.subarray(start, end))
    } else {
      const shard = Buffer.alloc(shardSize)
      if (start < data.length) data.copy(shard, 0, start)
      shards.push(shard)
    }
  }
  const reuse = parity.length === m && parity.every((b) => b.length === shardSize)
  for (let i = 0; i < m; i++) shards.push(reuse ? parity[i]! : Buffer.allocUnsafe(shardSize))
  return shards
}

async function deleteQuietly(store: ChunkStore, chunks: (ChunkRecord | undefined)[]): Promise<void> {
  // Best effort: whatever stays behind is unreferenced and the GC sweep removes it.
  await Promise.allSettled(chunks.filter((c) => c !== undefined).map((c) => store.delete(c!.nodeId, c!.chunkId)))
}

export interface ReadStripeContext {
  store: ChunkStore
  codec: StripeCodec
  getTimeoutMs: number
  /** Start rebuilding a piece from other chunks when its own read takes longer (at the latest, with `hedge`). */
  hedgeAfterMs: number
  /** Hedge sooner, after what recent reads took (never later than hedgeAfterMs); fed by every chunk read. */
  hedge?: HedgePolicy
  signal?: AbortSignal
  /** Told about chunks that are gone or rotten, so they become repair tasks. */
  onBadChunk?: (chunk: ChunkRecord, code: ErrorCode) => void
}

/** Reads stripe bytes [offset, offset + length); throws TooManyErasures rather than return wrong bytes. */
export async function readStripeRange(
  context: ReadStripeContext,
  stripe: StripeRecord,
  offsetBytes: number,
  lengthBytes: number,
): Promise<Buffer> {
  const pieces = await readStripePieces(context, stripe, offsetBytes, lengthBytes)
  return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, lengthBytes)
}

/**
 * The same bytes as readStripeRange, as the verified pieces of the data chunks in
 * order, uncopied: a streaming reader passes them on as they are, so a stripe costs
 * its bytes once in memory, not twice (pieces + a joined copy).
 */
export async function readStripePieces(
  context: ReadStripeContext,
  stripe: StripeRecord,
  offsetBytes: number,
  lengthBytes: number,
): Promise<Buffer[]> {
  return Promise.all(fetchStripePieces(context, stripe, offsetBytes, lengthBytes))
}

/**
 * Starts every piece of the range at once and returns them in order, each its own
 * promise: a streaming reader hands on the first piece as soon as it is verified,
 * without waiting for the slowest of the stripe's chunks (the first byte of a GET
 * waits for one node, not for the last of k). Each promise is observed here, so a
 * reader that stops early leaves no unhandled rejection.
 */
export function fetchStripePieces(
  context: ReadStripeContext,
  stripe: StripeRecord,
  offsetBytes: number,
  lengthBytes: number,
): Promise<Buffer>[] {
  const reader = new StripeReader(context, stripe)
  const pieces = dataPieces(stripe.lengthBytes, context.codec.dataShards, offsetBytes, lengthBytes)
  let covered = 0
  for (const piece of pieces) {
    assert.equal(piece.outputOffsetBytes, covered, 'pieces cover the range in order, without gaps')
    covered += piece.lengthBytes
  }
  assert.equal(covered, lengthBytes)
  return pieces.map((piece) => {
    const read = reader.piece(piece).then((got) => {
      assert.equal(got.length, piece.lengthBytes)
      return got
    })
    read.catch(() => {}) // surfaced to whoever awaits it
    return read
  })
}

class StripeReader {
  private readonly byIndex = new Map<number, ChunkRecord>()
  /** Column ranges already requested, shared between direct and degraded reads. */
  private readonly fetches = new Map<string, Promise<Buffer>>()
  /** Stops a column range's read (its own abort, beside the caller's and the timeout). */
  private readonly aborts = new Map<string, AbortController>()
  private readonly failed = new Set<number>()

  constructor(private readonly context: ReadStripeContext, stripe: StripeRecord) {
    for (const chunk of stripe.chunks) this.byIndex.set(chunk.chunkIndex, chunk)
  }

  /** One piece, from its own chunk or rebuilt; any failure to get it is TooManyErasures (or the caller's abort). */
  async piece(piece: ShardPiece): Promise<Buffer> {
    try {
      return await this.pieceOrFirstError(piece)
    } catch (error) {
      if (this.context.signal?.aborted) throw new BlobfsError('Timeout', 'read aborted', { cause: error })
      if (isBlobfsError(error, 'TooManyErasures')) throw error
      throw new BlobfsError('TooManyErasures', `shard ${piece.shard} could neither be read nor rebuilt: ${(error as Error).message}`, { cause: error })
    }
  }

  private async pieceOrFirstError(piece: ShardPiece): Promise<Buffer> {
    if (!this.byIndex.has(piece.shard)) return this.degraded(piece)
    const direct = this.fetch(piece.shard, piece.offsetBytes, piece.lengthBytes)
    const { hedge, hedgeAfterMs: maxDelayMs } = this.context
    assert.ok(!hedge || hedge.maxDelayMs === maxDelayMs, 'the hedge policy and the read agree on the fixed delay')
    hedge?.earn()
    let waitedMs = hedge ? hedge.delayMs(piece.lengthBytes) : maxDelayMs
    let outcome = await settledWithin(direct, waitedMs)
    if (outcome === 'slow' && hedge && !hedge.mayHedge(waitedMs, this.rebuildReads(piece))) {
      // Past the adaptive delay with the hedge budget spent: wait on, up to the fixed delay.
      outcome = await settledWithin(direct, maxDelayMs - waitedMs)
      waitedMs = maxDelayMs
      if (outcome === 'slow') hedge.mayHedge(waitedMs) // always yes at the fixed delay; counted
    }
    // Slow: rebuild from other chunks while the direct read goes on; first to succeed wins.
    // A rebuild that wins stops the direct read, which would otherwise hold a connection
    // to the stalled node until its timeout (a rebuild sharing that range reads parity instead).
    if (outcome === 'slow') {
      const winner = await firstSuccess([direct.then((bytes) => ({ bytes, rebuilt: false })), this.degraded(piece).then((bytes) => ({ bytes, rebuilt: true }))])
      if (winner.rebuilt) this.aborts.get(fetchKey(piece.shard, piece.offsetBytes, piece.lengthBytes))?.abort(new BlobfsError('Timeout', `shard ${piece.shard} was rebuilt first`))
      return winner.bytes
    }
    if ('bytes' in outcome) return outcome.bytes
    // Failed outright: rebuild now rather than after the hedge delay.
    return this.degraded(piece)
  }

  /** Chunk reads rebuilding this piece would start: k less those of its column range already in flight. */
  private rebuildReads(piece: ShardPiece): number {
    const k = this.context.codec.dataShards
    let shared = 0
    for (const index of this.byIndex.keys()) {
      if (index !== piece.shard && !this.failed.has(index) && this.fetches.has(fetchKey(index, piece.offsetBytes, piece.lengthBytes))) shared++
    }
    return Math.max(1, k - shared)
  }

  private fetch(chunkIndex: number, offsetBytes: number, lengthBytes: number): Promise<Buffer> {
    const key = fetchKey(chunkIndex, offsetBytes, lengthBytes)
    let pending = this.fetches.get(key)
    if (!pending) {
      const chunk = this.byIndex.get(chunkIndex)!
      const startedAt = performance.now()
      const abort = new AbortController()
      this.aborts.set(key, abort)
      pending = this.context.store
        .get(chunk.nodeId, chunk.chunkId, { offsetBytes, lengthBytes }, AbortSignal.any([abort.signal, withTimeout(this.context.signal, this.context.getTimeoutMs)]))
        .then((bytes) => {
          this.context.hedge?.record(lengthBytes, performance.now() - startedAt)
          return bytes
        })
        .catch((error: unknown) => {
          this.failed.add(chunkIndex)
          if (isBlobfsError(error, 'ChunkCorrupt') || isBlobfsError(error, 'ChunkNotFound')) {
            this.context.onBadChunk?.(chunk, errorCodeOf(error))
          }
          throw error
        })
      pending.catch(() => {}) // observed by every awaiting reader; never unhandled
      this.fetches.set(key, pending)
    }
    return pending
  }

  /** Rebuilds one data-shard piece from the same column range of k other chunks. */
  private async degraded(piece: ShardPiece): Promise<Buffer> {
    const { dataShards: k, parityShards: m } = this.context.codec
    const columnOffset = piece.offsetBytes
    const columnLength = piece.lengthBytes
    // Data chunks first (their ranges may already be in flight), then parity.
    const sources = [...this.byIndex.keys()].filter((i) => i !== piece.shard).sort((a, b) => a - b)
    const columns: (Buffer | undefined)[] = new Array(k + m).fill(undefined)
    let next = 0
    let have = 0
    while (have < k) {
      const batch: number[] = []
      while (batch.length < k - have && next < sources.length) {
        const index = sources[next++]!
        if (!this.failed.has(index)) batch.push(index)
      }
      if (batch.length === 0) {
        throw new BlobfsError('TooManyErasures', `only ${have} of the ${k} chunks needed to rebuild shard ${piece.shard} could be read`)
      }
      const results = await Promise.allSettled(batch.map((i) => this.fetch(i, columnOffset, columnLength)))
      results.forEach((result, j) => {
        if (result.status === 'fulfilled') {
          columns[batch[j]!] = result.value
          have++
        }
      })
    }
    const present = columns.map((c) => c !== undefined)
    const wanted = columns.map((_, i) => i === piece.shard)
    const shards = columns.map((c) => c ?? Buffer.alloc(columnLength))
    await this.context.codec.reconstruct(shards, present, wanted)
    return shards[piece.shard]!
  }
}

const fetchKey = (chunkIndex: number, offsetBytes: number, lengthBytes: number) => `${chunkIndex}:${offsetBytes}:${lengthBytes}`

/** How a read stands after `ms`: its bytes, its error, or still 'slow'. */
async function settledWithin<T>(read: Promise<T>, ms: number): Promise<{ bytes: T } | { error: unknown } | 'slow'> {
  let timer: NodeJS.Timeout | undefined
  const slow = new Promise<'slow'>((resolve) => {
    timer = setTimeout(() => resolve('slow'), ms)
  })
  try {
    return await Promise.race([read.then((bytes) => ({ bytes }), (error: unknown) => ({ error })), slow])
  } finally {
    clearTimeout(timer)
  }
}

/** Resolves with the first promise to fulfil; rejects only when all reject (with the first error). */
function firstSuccess<T>(promises: Promise<T>[]): Promise<T> {
  return new Promise((resolve, reject) => {
    let rejected = 0
    let firstError: unknown
    for (const promise of promises) {
      promise.then(resolve, (error) => {
        if (rejected++ === 0) firstError = error
        if (rejected === promises.length) reject(firstError)
      })
    }
  })
}

function withTimeout(signal: AbortSignal | undefined, timeoutMs: number): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs)
  return signal ? AbortSignal.any([signal, timeout]) : timeout
}

/** The object layer's codec over the native Reed-Solomon kernels (threadpool calls). */
export function stripeCodec(dataShards: number, parityShards: number): StripeCodec {
  const rs = new ReedSolomon(dataShards, parityShards)
  return {
    dataShards,
    parityShards,
    encode: (shards) => rs.encodeAsync(shards),
    reconstruct: (shards, present, wanted) => rs.reconstructAsync(shards, present, wanted),
  }
}

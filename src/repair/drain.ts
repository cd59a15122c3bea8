// Draining a node (`blobfs node drain NODE`): every chunk the catalog places on it
// is copied to another node and the chunk map re-pointed, so the node can be
// removed with no loss of redundancy. The node is alive, so its bytes are simply
// copied (verified on the way: a chunk that fails its checksum, or is missing, is
// rebuilt from the rest of its stripe instead). The target keeps the stripe's
// placement rules: a node that holds no other chunk of the stripe, within the rack
// cap (src/cluster/placement.ts, placeAdditional).
//
// Order of effects, as for any write: the copy is durable on its new node before
// the catalog points at it (ChunkMap.relocate, which checks the row still names the
// chunk copied — a repair may have replaced it meanwhile — and that the target holds
// no other chunk of the stripe by then, and queues the old copy for deletion after
// the deletion delay, so readers that already looked it up finish). The node is
// marked DRAINING first, so placement stops choosing it; writers that looked at
// membership just before may still add a chunk or two, so the drain passes over the
// node until the catalog places nothing there. Safe to re-run: each pass starts from
// what the catalog says now.
import { randomUUID } from 'node:crypto'
import type { Catalog } from '../catalog/catalog.ts'
import type { ChunkLocation, StripeState } from '../catalog/chunks.ts'
import { checksumTree } from '../codec/checksum.ts'
import type { ChunkStore, NodeId } from '../cluster/chunk-store.ts'
import { placeAdditional, type NodeCandidate } from '../cluster/placement.ts'
import { BlobfsError, errorCodeOf, isBlobfsError } from '../errors.ts'
import { drainConcurrencyDefault, drainPageChunks, writeDurationMsMax } from '../limits.ts'
import type { Logger } from '../log.ts'
import { readStripeRange, stripeCodec, type StripeCodec } from '../objects/stripe-io.ts'
import { forEachLimit } from './gc-util.ts'

export interface DrainOptions {
  catalog: Pick<Catalog, 'nodes' | 'chunks'>
  store: ChunkStore
  /** Where chunks may go: healthy UP nodes (Membership.candidates); refreshed between passes. */
  candidates: () => readonly NodeCandidate[]
  /** The rack of any registered node (Membership.get(id)?.rack), for the rack rule. */
  rackOf: (nodeId: NodeId) => string | undefined
  /** Refreshes the view behind `candidates` (after the node is marked DRAINING). */
  refresh?: () => Promise<void>
  nodeId: NodeId
  log: Logger
  concurrency?: number
  /** Passes over the node before giving up on chunks that would not move. */
  passesMax?: number
  putTimeoutMs?: number
  getTimeoutMs?: number
  onProgress?: (progress: DrainProgress) => void
  signal?: AbortSignal
}

export interface DrainProgress {
  /** Chunks on the node when the pass started, plus those found since. */
  total: number
  moved: number
  /** Moved by rebuilding from the stripe (the node's copy was missing or corrupt). */
  rebuilt: number
  /** Chunks that needed no move after all (replaced by a repair, or their object deleted). */
  skipped: number
  failed: number
  bytesCopied: number
  pass: number
}

export interface DrainResult extends DrainProgress {
  /** True when the catalog places no chunk on the node any more. */
  drained: boolean
  remaining: number
  /** Why the last failures happened (a few, for the operator). */
  errors: string[]
}

const passPauseMs = 1_000

export async function drainNode(options: DrainOptions): Promise<DrainResult> {
  const { catalog, nodeId, log } = options
  const node = await catalog.nodes.get(nodeId)
  if (!node) throw new BlobfsError('InvalidArgument', `node ${nodeId} is not registered`)
  if (node.state === 'DOWN') {
    throw new BlobfsError('InvalidArgument', `node ${nodeId} is DOWN: its chunks cannot be copied; repair rebuilds them (\`blobfs repair --wait\`)`)
  }
  if (node.state !== 'DRAINING') {
    await catalog.nodes.setState(nodeId, 'DRAINING')
    log.info({ nodeId, previousState: node.state }, 'node marked DRAINING: placement no longer chooses it')
  }
  await options.refresh?.()
  const passesMax = options.passesMax ?? 5
  const concurrency = options.concurrency ?? drainConcurrencyDefault
  const progress: DrainProgress = { total: await catalog.chunks.countOnNode(nodeId), moved: 0, rebuilt: 0, skipped: 0, failed: 0, bytesCopied: 0, pass: 0 }
  const errors: string[] = []
  const codecs = new Map<string, StripeCodec>()
  options.onProgress?.({ ...progress })

  let remaining = progress.total
  while (remaining > 0 && progress.pass < passesMax && !options.signal?.aborted) {
    progress.pass++
    if (progress.pass > 1) {
      await new Promise((resolve) => setTimeout(resolve, passPauseMs))
      await options.refresh?.()
    }
    const failedBefore = progress.failed
    let after: string | undefined
    for (;;) {
      if (options.signal?.aborted) break
      const page = await catalog.chunks.onNode(nodeId, { limit: drainPageChunks, ...(after !== undefined ? { afterChunkId: after } : {}) })
      if (page.length === 0) break
      after = page[page.length - 1]!.chunkId
      // A stripe's chunks on this node move one after the other (each move changes the stripe's holders).
      const byStripe = new Map<string, ChunkLocation[]>()
      for (const location of page) {
        const key = `${location.objectId}/${location.partNumber}/${location.stripeIndex}`
        byStripe.set(key, [...(byStripe.get(key) ?? []), location])
      }
      await forEachLimit([...byStripe.values()], concurrency, async (locations) => {
        for (const location of locations) {
          try {
            const outcome = await moveChunk(options, location, codecs)
            if (outcome.state === 'moved') {
              progress.moved++
              progress.bytesCopied += outcome.bytes
              if (outcome.rebuilt) progress.rebuilt++
            } else {
              progress.skipped++
            }
          } catch (error) {
            if (options.signal?.aborted) return
            progress.failed++
            const text = `chunk ${location.chunkId}: ${errorCodeOf(error)}: ${(error as Error).message}`
            if (errors.length < 10) errors.push(text)
            log.warn({ err: error, chunkId: location.chunkId, objectId: location.objectId }, 'could not move a chunk; a later pass retries it')
          }
          options.onProgress?.({ ...progress })
        }
      })
      if (page.length < drainPageChunks) break
    }
    remaining = await catalog.chunks.countOnNode(nodeId)
    // Chunks written by writers that had not seen DRAINING yet join the total.
    const accounted = progress.moved + progress.skipped + (progress.failed - failedBefore)
    progress.total = Math.max(progress.total, progress.moved + progress.skipped + remaining)
    options.onProgress?.({ ...progress })
    if (remaining > 0) log.info({ nodeId, pass: progress.pass, remaining, accounted }, 'chunks still on the draining node; another pass')
  }
  return { ...progress, drained: remaining === 0, remaining, errors }
}

type MoveOutcome = { state: 'moved'; bytes: number; rebuilt: boolean } | { state: 'skipped' }

async function moveChunk(options: DrainOptions, location: ChunkLocation, codecs: Map<string, StripeCodec>): Promise<MoveOutcome> {
  const { catalog, store, nodeId } = options
  const stripe = await catalog.chunks.stripe(location)
  const chunk = stripe?.chunks.find((c) => c.chunkIndex === location.chunkIndex)
  if (!stripe || !chunk || chunk.chunkId !== location.chunkId) return { state: 'skipped' } // changed since the page was read
  const { data, rebuilt } = await chunkBytes(options, stripe, chunk.chunkIndex, codecs)
  const tree = checksumTree(data)
  if (tree.root !== chunk.root || data.length !== chunk.lengthBytes) {
    throw new BlobfsError('ChunkCorrupt', `the bytes of chunk ${chunk.chunkId} do not match the catalog's checksum root`)
  }
  const holders = stripe.chunks
    .filter((c) => c.chunkIndex !== chunk.chunkIndex)
    .map((c) => ({ id: c.nodeId, rack: options.rackOf(c.nodeId) ?? rackOfUnknown(c.nodeId) }))
  const targets = placeAdditional(`${location.objectId}/${location.partNumber}/${location.stripeIndex}`, options.candidates().filter((n) => n.id !== nodeId), holders, stripe.dataShards + stripe.parityShards, stripe.parityShards)
  if (targets.length === 0) {
    throw new BlobfsError('NotEnoughNodes', 'no node outside this stripe can take the chunk within the rack rule; add a node first')
  }
  const startedMs = performance.now()
  const newChunkId = randomUUID()
  let target: NodeCandidate | undefined
  let lastError: unknown
  for (const candidate of targets) {
    try {
      await store.put(candidate.id, newChunkId, data, tree, timeout(options.signal, options.putTimeoutMs ?? 30_000))
      target = candidate
      break
    } catch (error) {
      lastError = error
      if (options.signal?.aborted) throw error
    }
  }
  if (!target) throw new BlobfsError('NotEnoughNodes', `no target node took the copy of chunk ${chunk.chunkId}`, { cause: lastError })
  if (performance.now() - startedMs > writeDurationMsMax) {
    await store.delete(target.id, newChunkId).catch(() => {})
    throw new BlobfsError('Timeout', 'the copy took longer than a write may (the GC sweep could count it as an orphan)')
  }
  const result = await catalog.chunks.relocate(location, {
    chunkIndex: chunk.chunkIndex,
    fromChunkId: chunk.chunkId,
    to: { chunkIndex: chunk.chunkIndex, chunkId: newChunkId, nodeId: target.id, lengthBytes: data.length, root: tree.root },
  })
  if (result === 'node-taken') {
    // A repair or another drain put a chunk of this stripe on the target since the stripe was read.
    // The copy is queued for deletion by the catalog; the chunk is still here, so a later pass moves
    // it, placed on what the catalog holds then.
    throw new BlobfsError('SerializationFailure', `node ${target.id} took another chunk of the stripe while chunk ${chunk.chunkId} was copied there; a later pass moves it`)
  }
  return result === 'moved' ? { state: 'moved', bytes: data.length, rebuilt } : { state: 'skipped' }
}

/** The chunk's bytes: copied from the draining node, or rebuilt from k other chunks when its copy is gone or rotten. */
async function chunkBytes(options: DrainOptions, stripe: StripeState, chunkIndex: number, codecs: Map<string, StripeCodec>): Promise<{ data: Buffer; rebuilt: boolean }> {
  const chunk = stripe.chunks.find((c) => c.chunkIndex === chunkIndex)!
  try {
    return { data: await options.store.get(chunk.nodeId, chunk.chunkId, undefined, timeout(options.signal, options.getTimeoutMs ?? 30_000)), rebuilt: false }
  } catch (error) {
    if (!isBlobfsError(error, 'ChunkCorrupt') && !isBlobfsError(error, 'ChunkNotFound')) throw error
    options.log.warn({ chunkId: chunk.chunkId, code: error.code }, 'the draining node cannot serve a chunk; rebuilding it from its stripe')
  }
  const k = stripe.dataShards
  const m = stripe.parityShards
  const codec = codecs.get(stripe.scheme) ?? stripeCodec(k, m)
  codecs.set(stripe.scheme, codec)
  const others = stripe.chunks.filter((c) => c.chunkIndex !== chunkIndex)
  const bytes = await readStripeRange(
    { store: options.store, codec, getTimeoutMs: options.getTimeoutMs ?? 30_000, hedgeAfterMs: 5_000, ...(options.signal ? { signal: options.signal } : {}) },
    { lengthBytes: stripe.lengthBytes, shardSizeBytes: stripe.shardSizeBytes, chunks: others },
    0,
    stripe.lengthBytes,
  )
  const shards: Buffer[] = []
  for (let i = 0; i < k; i++) {
    const shard = Buffer.alloc(stripe.shardSizeBytes) // zeros past the stripe's end, as the writer padded it
    const start = i * stripe.shardSizeBytes
    if (start < bytes.length) bytes.copy(shard, 0, start, Math.min(start + stripe.shardSizeBytes, bytes.length))
    shards.push(shard)
  }
  for (let i = 0; i < m; i++) shards.push(Buffer.alloc(stripe.shardSizeBytes))
  await codec.encode(shards)
  return { data: shards[chunkIndex]!, rebuilt: true }
}

/** A holder no longer registered: a rack of its own (it cannot share one with a live node). */
function rackOfUnknown(nodeId: NodeId): string {
  return `unknown:${nodeId}`
}

function timeout(signal: AbortSignal | undefined, ms: number): AbortSignal {
  const t = AbortSignal.timeout(ms)
  return signal ? AbortSignal.any([signal, t]) : t
}

// A ChunkStore that wraps another and injects faults on demand: a node that is
// down, slow, or returns rotten bytes; a random fraction of failing calls. The
// randomness is seeded so that a failing schedule replays exactly.
import { BlobfsError } from '../errors.ts'
import { seededRandom, type Random } from '../random.ts'
import type { ChecksumTree } from '../codec/checksum.ts'
import type { ByteRange, ChunkId, ChunkInfo, ChunkStore, InventoryEntry, NodeId } from './chunk-store.ts'

export type FaultOperation = 'put' | 'get' | 'head' | 'delete' | 'inventory'

export interface NodeFaults {
  /** Every call fails with NodeUnavailable. */
  down?: boolean
  /** Every call waits this long first (honours the abort signal). */
  delayMs?: number
  /** get() fails with ChunkCorrupt, as a verifying client would report rotten bytes. */
  corruptReads?: boolean
  /** put() fails with InsufficientStorage. */
  full?: boolean
}

export interface FaultCounters {
  calls: Record<FaultOperation, number>
  injected: number
}

export class FaultInjectingChunkStore implements ChunkStore {
  private readonly faults = new Map<NodeId, NodeFaults>()
  private failFraction = 0
  private failOperations: ReadonlySet<FaultOperation> = new Set()
  private readonly random: Random
  readonly counters: FaultCounters = { calls: { put: 0, get: 0, head: 0, delete: 0, inventory: 0 }, injected: 0 }

  constructor(private readonly inner: ChunkStore, seed = 1) {
    this.random = seededRandom(seed)
  }

  setNodeFaults(node: NodeId, faults: NodeFaults): void {
    this.faults.set(node, { ...faults })
  }

  clearNodeFaults(node?: NodeId): void {
    if (node === undefined) this.faults.clear()
    else this.faults.delete(node)
  }

  /** Makes a random `fraction` of calls of the given operations fail with NodeUnavailable. */
  failRandomly(fraction: number, operations: FaultOperation[] = ['put', 'get', 'head', 'delete']): void {
    if (!(fraction >= 0 && fraction <= 1)) throw new RangeError(`fraction ${fraction} is not in [0, 1]`)
    this.failFraction = fraction
    this.failOperations = new Set(operations)
  }

  async put(node: NodeId, chunkId: ChunkId, data: Buffer, tree: ChecksumTree, signal?: AbortSignal): Promise<void> {
    const faults = await this.before('put', node, signal)
    if (faults?.full) this.inject(new BlobfsError('InsufficientStorage', `injected: node ${node} is full`))
    return this.inner.put(node, chunkId, data, tree, signal)
  }

  async get(node: NodeId, chunkId: ChunkId, range?: ByteRange, signal?: AbortSignal): Promise<Buffer> {
    const faults = await this.before('get', node, signal)
    if (faults?.corruptReads) this.inject(new BlobfsError('ChunkCorrupt', `injected: chunk ${chunkId} on ${node} failed its checksum`))
    return this.inner.get(node, chunkId, range, signal)
  }

  async head(node: NodeId, chunkId: ChunkId, signal?: AbortSignal): Promise<ChunkInfo | null> {
    await this.before('head', node, signal)
    return this.inner.head(node, chunkId, signal)
  }

  async delete(node: NodeId, chunkId: ChunkId, signal?: AbortSignal): Promise<void> {
    await this.before('delete', node, signal)
    return this.inner.delete(node, chunkId, signal)
  }

  async *inventory(node: NodeId, signal?: AbortSignal): AsyncIterable<InventoryEntry> {
    await this.before('inventory', node, signal)
    yield* this.inner.inventory(node, signal)
  }

  private async before(operation: FaultOperation, node: NodeId, signal?: AbortSignal): Promise<NodeFaults | undefined> {
    this.counters.calls[operation]++
    const faults = this.faults.get(node)
    if (faults?.delayMs) await sleep(faults.delayMs, signal)
    if (signal?.aborted) throw new BlobfsError('Timeout', `call to ${node} aborted`, { cause: signal.reason })
    if (faults?.down) this.inject(new BlobfsError('NodeUnavailable', `injected: node ${node} is down`))
    if (this.failFraction > 0 && this.failOperations.has(operation) && this.random() < this.failFraction) {
      this.inject(new BlobfsError('NodeUnavailable', `injected: random ${operation} failure on ${node}`))
    }
    return faults
  }

  private inject(error: BlobfsError): never {
    this.counters.injected++
    throw error
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    signal?.addEventListener('abort', done, { once: true })
  })
}

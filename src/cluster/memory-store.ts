// A ChunkStore held in memory: the object layer, repair and FUSE semantics run
// against it in tests with no sockets. It keeps the node's contract exactly —
// verify on put, idempotent same-bytes put, conflict on other bytes, page-verified
// range reads — and lets a test reach the stored bytes to rot them.
import { checksumTree, pagesCovering, verifyPages, verifyTree, type ChecksumTree } from '../codec/checksum.ts'
import { BlobfsError } from '../errors.ts'
import type { ByteRange, ChunkId, ChunkInfo, ChunkStore, InventoryEntry, NodeId } from './chunk-store.ts'

interface StoredChunk {
  data: Buffer
  tree: ChecksumTree
  writtenAtMs: number
}

export interface MemoryStoreCounters {
  puts: number
  gets: number
  deletes: number
  bytesWritten: number
  bytesRead: number
}

export class MemoryChunkStore implements ChunkStore {
  private readonly nodes = new Map<NodeId, Map<ChunkId, StoredChunk>>()
  private readonly capacityBytes = new Map<NodeId, number>()
  readonly counters: MemoryStoreCounters = { puts: 0, gets: 0, deletes: 0, bytesWritten: 0, bytesRead: 0 }

  constructor(nodeIds: Iterable<NodeId> = [], private readonly now: () => number = Date.now) {
    for (const id of nodeIds) this.addNode(id)
  }

  addNode(node: NodeId, capacityBytes = Number.POSITIVE_INFINITY): void {
    if (!this.nodes.has(node)) this.nodes.set(node, new Map())
    this.capacityBytes.set(node, capacityBytes)
  }

  /** Forgets everything a node holds, as if its disk was replaced. */
  wipeNode(node: NodeId): void {
    this.nodes.get(node)?.clear()
  }

  usedBytes(node: NodeId): number {
    let total = 0
    for (const chunk of this.chunks(node).values()) total += chunk.data.length
    return total
  }

  chunkIds(node: NodeId): ChunkId[] {
    return [...this.chunks(node).keys()]
  }

  /** The stored bytes themselves, for tests that flip bits (bit rot). */
  rawBytes(node: NodeId, chunkId: ChunkId): Buffer | undefined {
    return this.chunks(node).get(chunkId)?.data
  }

  async put(node: NodeId, chunkId: ChunkId, data: Buffer, tree: ChecksumTree): Promise<void> {
    const chunks = this.chunks(node)
    verifyTree(tree)
    const actual = checksumTree(data, tree.pageSizeBytes)
    if (actual.root !== tree.root || actual.lengthBytes !== tree.lengthBytes) {
      throw new BlobfsError('BadDigest', `chunk ${chunkId}: bytes do not match the checksum tree`)
    }
    const existing = chunks.get(chunkId)
    if (existing) {
      if (existing.tree.root === tree.root && existing.data.equals(data)) return
      throw new BlobfsError('ChunkConflict', `chunk ${chunkId} exists on ${node} with other bytes`)
    }
    if (this.usedBytes(node) + data.length > this.capacityBytes.get(node)!) {
      throw new BlobfsError('InsufficientStorage', `node ${node} is full`)
    }
    chunks.set(chunkId, { data: Buffer.from(data), tree, writtenAtMs: this.now() })
    this.counters.puts++
    this.counters.bytesWritten += data.length
  }

  async get(node: NodeId, chunkId: ChunkId, range?: ByteRange): Promise<Buffer> {
    const chunk = this.chunks(node).get(chunkId)
    if (!chunk) throw new BlobfsError('ChunkNotFound', `chunk ${chunkId} is not on ${node}`)
    const offset = range?.offsetBytes ?? 0
    const length = range?.lengthBytes ?? chunk.data.length
    const span = pagesCovering(offset, length, chunk.data.length, chunk.tree.pageSizeBytes)
    verifyPages(chunk.data.subarray(span.startBytes, span.endBytes), span.firstPage, chunk.tree.pageCrcs, chunk.tree.pageSizeBytes)
    this.counters.gets++
    this.counters.bytesRead += length
    return Buffer.from(chunk.data.subarray(offset, offset + length))
  }

  async head(node: NodeId, chunkId: ChunkId): Promise<ChunkInfo | null> {
    const chunk = this.chunks(node).get(chunkId)
    return chunk ? { lengthBytes: chunk.data.length, root: chunk.tree.root } : null
  }

  async delete(node: NodeId, chunkId: ChunkId): Promise<void> {
    this.counters.deletes++
    this.chunks(node).delete(chunkId)
  }

  async *inventory(node: NodeId): AsyncIterable<InventoryEntry> {
    const now = this.now()
    for (const [chunkId, chunk] of [...this.chunks(node)]) {
      yield { chunkId, lengthBytes: chunk.data.length, ageMs: now - chunk.writtenAtMs }
    }
  }

  private chunks(node: NodeId): Map<ChunkId, StoredChunk> {
    const chunks = this.nodes.get(node)
    if (!chunks) throw new BlobfsError('NodeUnavailable', `unknown node ${node}`)
    return chunks
  }
}

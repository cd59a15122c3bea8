// The one interface the object layer, repair and the FUSE semantics use to reach
// storage nodes (STYLE.md item 2). Implementations: HTTP to real `blobfs node`
// processes (http-store.ts), in memory (memory-store.ts), and a fault injector that
// wraps any other (fault-store.ts). Everything above this line is tested without
// sockets, with faults on demand.
import type { ChecksumTree } from '../codec/checksum.ts'

export type NodeId = string
/** A chunk id is a UUID chosen by the writer; a node knows chunks only by id. */
export type ChunkId = string

export interface ByteRange {
  offsetBytes: number
  lengthBytes: number
}

export interface ChunkInfo {
  lengthBytes: number
  /** Root of the chunk's checksum tree (CRC32C over its page CRCs). */
  root: number
}

export interface InventoryEntry {
  chunkId: ChunkId
  lengthBytes: number
  /** Time since the chunk was written, by the node's clock. */
  ageMs: number
}

export interface ChunkStore {
  /**
   * Stores a chunk durably; resolves only once the node has fdatasync'ed it.
   * The node verifies the bytes against `tree` first (BadDigest, nothing stored).
   * Same id and same bytes again: success. Same id, other bytes: ChunkConflict.
   * A full node: InsufficientStorage. Unreachable: NodeUnavailable.
   * No reference to `data` is kept once the promise settles: the caller reuses it.
   */
  put(node: NodeId, chunkId: ChunkId, data: Buffer, tree: ChecksumTree, signal?: AbortSignal): Promise<void>

  /**
   * Reads a whole chunk or a byte range of it. The node verifies every page the
   * range touches before sending a byte; so does the client after receiving them.
   * Missing: ChunkNotFound. Failed check: ChunkCorrupt (never the bytes).
   */
  get(node: NodeId, chunkId: ChunkId, range?: ByteRange, signal?: AbortSignal): Promise<Buffer>

  /** Length and checksum root, or null when the node does not hold the chunk. */
  head(node: NodeId, chunkId: ChunkId, signal?: AbortSignal): Promise<ChunkInfo | null>

  /** Writes a tombstone; deleting an absent chunk succeeds. */
  delete(node: NodeId, chunkId: ChunkId, signal?: AbortSignal): Promise<void>

  /** Every live chunk on the node, streamed (for the GC inventory sweep). */
  inventory(node: NodeId, signal?: AbortSignal): AsyncIterable<InventoryEntry>
}

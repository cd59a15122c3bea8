// A ChunkStore that keeps each chunk in a file under a directory (one folder per
// node), for tests that move more bytes than a MemoryChunkStore may hold in this
// process — the 2 GiB memory test: the chunks sit in the page cache, not in the
// measured process's RSS. It keeps the node's contract: verify on put, idempotent
// same-bytes put, page-verified range reads. No fsync: tests only.
import { mkdirSync, readdirSync } from 'node:fs'
import { open, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { checksumTree, pagesCovering, verifyPages, verifyTree, type ChecksumTree } from '../../src/codec/checksum.ts'
import type { ByteRange, ChunkId, ChunkInfo, ChunkStore, InventoryEntry, NodeId } from '../../src/cluster/chunk-store.ts'
import { BlobfsError } from '../../src/errors.ts'

export class FileChunkStore implements ChunkStore {
  /** Checksum trees stay in memory: 4 bytes per 64 KiB page. */
  private readonly trees = new Map<string, ChecksumTree>()

  constructor(private readonly root: string, private readonly nodeIds: readonly NodeId[]) {
    for (const node of nodeIds) mkdirSync(join(root, node), { recursive: true })
  }

  async put(node: NodeId, chunkId: ChunkId, data: Buffer, tree: ChecksumTree): Promise<void> {
    const path = this.path(node, chunkId)
    verifyTree(tree)
    const actual = checksumTree(data, tree.pageSizeBytes)
    if (actual.root !== tree.root || actual.lengthBytes !== tree.lengthBytes) throw new BlobfsError('BadDigest', `chunk ${chunkId}: bytes do not match the checksum tree`)
    const existing = this.trees.get(path)
    if (existing) {
      if (existing.root === tree.root && (await readFile(path)).equals(data)) return
      throw new BlobfsError('ChunkConflict', `chunk ${chunkId} exists on ${node} with other bytes`)
    }
    await writeFile(path, data)
    this.trees.set(path, tree)
  }

  async get(node: NodeId, chunkId: ChunkId, range?: ByteRange): Promise<Buffer> {
    const path = this.path(node, chunkId)
    const tree = this.trees.get(path)
    if (!tree) throw new BlobfsError('ChunkNotFound', `chunk ${chunkId} is not on ${node}`)
    const offset = range?.offsetBytes ?? 0
    const length = range?.lengthBytes ?? tree.lengthBytes
    const span = pagesCovering(offset, length, tree.lengthBytes, tree.pageSizeBytes)
    const pages = Buffer.allocUnsafe(span.endBytes - span.startBytes)
    const file = await open(path, 'r')
    try {
      const { bytesRead } = await file.read(pages, 0, pages.length, span.startBytes)
      if (bytesRead !== pages.length) throw new BlobfsError('ChunkCorrupt', `chunk ${chunkId} on ${node} is short`)
    } finally {
      await file.close()
    }
    verifyPages(pages, span.firstPage, tree.pageCrcs, tree.pageSizeBytes)
    return pages.subarray(offset - span.startBytes, offset - span.startBytes + length)
  }

  async head(node: NodeId, chunkId: ChunkId): Promise<ChunkInfo | null> {
    const tree = this.trees.get(this.path(node, chunkId))
    return tree ? { lengthBytes: tree.lengthBytes, root: tree.root } : null
  }

  async delete(node: NodeId, chunkId: ChunkId): Promise<void> {
    const path = this.path(node, chunkId)
    this.trees.delete(path)
    await rm(path, { force: true })
  }

  async *inventory(node: NodeId): AsyncIterable<InventoryEntry> {
    for (const chunkId of readdirSync(join(this.root, node))) {
      const info = await stat(this.path(node, chunkId))
      yield { chunkId, lengthBytes: info.size, ageMs: Date.now() - info.mtimeMs }
    }
  }

  private path(node: NodeId, chunkId: ChunkId): string {
    if (!this.nodeIds.includes(node)) throw new BlobfsError('NodeUnavailable', `unknown node ${node}`)
    if (!/^[0-9a-f-]{36}$/.test(chunkId)) throw new BlobfsError('InvalidArgument', `chunk id ${chunkId} is not a UUID`)
    return join(this.root, node, chunkId)
  }
}

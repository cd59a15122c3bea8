// The chunk map as repair, drain and the GC inventory sweep see it: one stripe's
// chunks with what is needed to rebuild them, replacing rebuilt chunks, the chunks
// a node holds, and which of a node's chunk ids the catalog still references.
import assert from 'node:assert/strict'
import { catalogRowsPerInsertMax, chunkDeletionDelayMsDefault } from '../limits.ts'
import { queueChunks } from './chunk-map.ts'
import { toNumber, type Db, type Queryable } from './db.ts'
import { batches } from './rows.ts'
import type { StripeKey } from './queues.ts'
import type { ChunkRecord, SchemeName } from './types.ts'
import { checkCount, checkCrc, checkName, checkUuid, invalid, parseScheme } from './validate.ts'

export interface StripeState extends StripeKey {
  scheme: SchemeName
  dataShards: number
  parityShards: number
  /** Object bytes the stripe holds, and the length of each of its chunks. */
  lengthBytes: number
  shardSizeBytes: number
  /** False while the stripe belongs to a multipart upload that is not complete. */
  committed: boolean
  /** The chunks that exist, by chunk index (fewer than k+m when some were lost). */
  chunks: ChunkRecord[]
}

export interface ReplaceResult {
  applied: boolean
  /** Chunks queued for deletion: the ones replaced, or the new ones when nothing was applied. */
  chunksQueued: number
  /** Why nothing was applied although the stripe exists: its rows changed since the caller read them, or a new chunk's node keeps another chunk of it. */
  conflict: false | 'changed' | 'node-taken'
}

export interface DegradedSummary {
  /** Stripes examined that exist. */
  stripes: number
  /** Stripe count by the number of chunks each lacks (k+m minus chunks on available nodes). */
  byLacking: Record<number, number>
  /** More rows existed than were examined: the counts are a lower bound. */
  truncated: boolean
}

export interface ChunkLocation extends StripeKey {
  chunkId: string
  chunkIndex: number
  nodeId: string
  lengthBytes: number
}

export class ChunkMap {
  constructor(
    private readonly db: Db,
    private readonly config: { deletionDelayMs: number } = { deletionDelayMs: chunkDeletionDelayMsDefault },
  ) {}

  /** A stripe's chunks and geometry, whether its object is committed or still a multipart upload; null if gone. */
  async stripe(key: StripeKey): Promise<StripeState | null> {
    const stripeKey = checkKey(key)
    // Through `read`, like every statement outside a transaction: a catalog outage is CatalogUnavailable, not a raw driver error.
    return this.db.read((q) => this.#stripeIn(q, stripeKey))
  }

  async #stripeIn(q: Queryable, key: StripeKey): Promise<StripeState | null> {
    const rows = await q`SELECT c.chunk_index, c.chunk_id, c.storage_node_id, c.length_bytes, c.checksum_crc32c,
        coalesce(o.erasure_coding_scheme, u.erasure_coding_scheme) AS scheme,
        coalesce(p.size_bytes, mp.size_bytes) AS part_size, coalesce(p.stripe_size_bytes, mp.stripe_size_bytes) AS stripe_size,
        o.object_id IS NOT NULL AS committed
      FROM object_chunks_allocation c
      LEFT JOIN bucket_objects o ON o.object_id = c.object_id
      LEFT JOIN object_parts p ON p.object_id = c.object_id AND p.part_number = c.part_index
      LEFT JOIN multipart_uploads u ON u.object_id = c.object_id
      LEFT JOIN multipart_parts mp ON mp.upload_id = u.upload_id AND mp.part_number = c.part_index
      WHERE c.object_id = ${key.objectId} AND c.part_index = ${key.partNumber} AND c.stripe_index = ${key.stripeIndex}
      ORDER BY c.chunk_index`
    if (rows.length === 0) return null
    const first = rows[0]!
    assert.ok(first.scheme !== null && first.part_size !== null, 'every chunk row belongs to an object or an open upload')
    const scheme = parseScheme(first.scheme)!
    const partSize = toNumber(first.part_size)
    const stripeSize = toNumber(first.stripe_size)
    const lengthBytes = Math.min(stripeSize, partSize - key.stripeIndex * stripeSize)
    return {
      ...key,
      scheme: first.scheme,
      dataShards: scheme.dataShards,
      parityShards: scheme.parityShards,
      lengthBytes,
      shardSizeBytes: Math.ceil(lengthBytes / scheme.dataShards),
      committed: first.committed,
      chunks: rows.map((r) => ({
        chunkIndex: r.chunk_index,
        chunkId: r.chunk_id,
        nodeId: r.storage_node_id,
        lengthBytes: toNumber(r.length_bytes),
        root: toNumber(r.checksum_crc32c),
      })),
    }
  }

  /**
   * Records rebuilt chunks of a stripe: each new chunk takes its chunk index's
   * row; the chunk it replaces (if any) is queued for deletion. If the stripe no
   * longer exists (its object was replaced or deleted meanwhile), nothing changes
   * except that the new chunks are queued for deletion, and `applied` is false.
   * With `ifChunkIds` (chunk index -> the chunk id the caller saw there, null for
   * none), the same happens with `conflict: 'changed'` when any of those rows
   * changed: two repairs of one stripe never both apply. And the same happens with
   * `conflict: 'node-taken'` when a new chunk's node would still hold another
   * chunk of the stripe (a row this call keeps): one node's loss must never cost
   * a stripe two chunks. Checked on the rows as locked in this transaction.
   */
  async replace(
    key: StripeKey,
    chunks: readonly ChunkRecord[],
    options: { ifChunkIds?: ReadonlyMap<number, string | null> } = {},
  ): Promise<ReplaceResult> {
    const stripeKey = checkKey(key)
    const expected = options.ifChunkIds
    if (expected) {
      for (const [index, id] of expected) {
        checkCount(index, 'chunk index', 0, 254)
        if (id !== null) checkUuid(id, 'expected chunk id')
      }
    }
    if (chunks.length === 0) throw invalid('replace needs at least one chunk')
    const seen = new Set<number>()
    for (const chunk of chunks) {
      checkCount(chunk.chunkIndex, 'chunk index', 0, 254)
      if (seen.has(chunk.chunkIndex)) throw invalid(`chunk index ${chunk.chunkIndex} given twice`)
      seen.add(chunk.chunkIndex)
      checkUuid(chunk.chunkId, 'chunk id')
      checkName(chunk.nodeId, 'node id', 64)
      checkCrc(chunk.root, 'chunk checksum root')
    }
    const nodes = new Map<string, number>()
    for (const chunk of chunks) {
      const other = nodes.get(chunk.nodeId)
      if (other !== undefined) throw invalid(`chunks ${other} and ${chunk.chunkIndex} of one stripe are both on node ${chunk.nodeId}`)
      nodes.set(chunk.nodeId, chunk.chunkIndex)
    }
    return this.db.tx(async (q) => {
      await q`SELECT chunk_index FROM object_chunks_allocation
        WHERE object_id = ${stripeKey.objectId} AND part_index = ${stripeKey.partNumber} AND stripe_index = ${stripeKey.stripeIndex} FOR UPDATE`
      const state = await this.#stripeIn(q, stripeKey)
      const orphan = async (conflict: ReplaceResult['conflict']) => {
        const chunksQueued = await queueChunks(q, chunks.map((c) => ({ nodeId: c.nodeId, chunkId: c.chunkId, objectId: stripeKey.objectId })), 'ORPHANED', 0)
        return { applied: false, chunksQueued, conflict }
      }
      if (state === null) return orphan(false)
      if (expected) {
        // Another repair (a lease that ran out, a second report) changed the rows since
        // they were read: this rebuild was planned on a stale view and is dropped.
        const current = new Map(state.chunks.map((c) => [c.chunkIndex, c.chunkId]))
        for (const [index, id] of expected) if ((current.get(index) ?? null) !== id) return orphan('changed')
      }
      for (const chunk of chunks) {
        if (chunk.chunkIndex >= state.dataShards + state.parityShards) throw invalid(`chunk index ${chunk.chunkIndex} is outside ${state.scheme}`)
        if (chunk.lengthBytes !== state.shardSizeBytes) throw invalid(`a rebuilt chunk must be ${state.shardSizeBytes} bytes, not ${chunk.lengthBytes}`)
      }
      // A node that keeps another chunk of the stripe takes no new one, whatever view the
      // caller planned on (a partial rebuild whose other chunk stayed put, a node back
      // under another view, a drain that moved a chunk there meanwhile).
      const kept = new Set(state.chunks.filter((c) => !seen.has(c.chunkIndex)).map((c) => c.nodeId))
      if (chunks.some((c) => kept.has(c.nodeId))) return orphan('node-taken')
      const replaced = state.chunks.filter((c) => seen.has(c.chunkIndex))
      const chunksQueued = await queueChunks(
        q,
        replaced.map((c) => ({ nodeId: c.nodeId, chunkId: c.chunkId, objectId: stripeKey.objectId })),
        'REPAIRED',
        this.config.deletionDelayMs,
      )
      await q`DELETE FROM object_chunks_allocation WHERE object_id = ${stripeKey.objectId} AND part_index = ${stripeKey.partNumber}
        AND stripe_index = ${stripeKey.stripeIndex} AND chunk_index = ANY(${[...seen]})`
      await q`INSERT INTO object_chunks_allocation ${q(
        chunks.map((c) => ({
          object_id: stripeKey.objectId,
          part_index: stripeKey.partNumber,
          stripe_index: stripeKey.stripeIndex,
          chunk_index: c.chunkIndex,
          chunk_id: c.chunkId,
          storage_node_id: c.nodeId,
          length_bytes: c.lengthBytes,
          checksum_crc32c: c.root,
          is_parity: c.chunkIndex >= state.dataShards,
        })),
        'object_id',
        'part_index',
        'stripe_index',
        'chunk_index',
        'chunk_id',
        'storage_node_id',
        'length_bytes',
        'checksum_crc32c',
        'is_parity',
      )}`
      return { applied: true, chunksQueued, conflict: false as const }
    })
  }

  /** The chunks the catalog places on `nodeId`, in chunk-id order after `afterChunkId` (seek-based pages). */
  async onNode(nodeId: string, options: { afterChunkId?: string; limit: number }): Promise<ChunkLocation[]> {
    checkName(nodeId, 'node id', 64)
    const limit = checkCount(options.limit, 'limit', 1, catalogRowsPerInsertMax * 10)
    const after = options.afterChunkId === undefined ? '00000000-0000-0000-0000-000000000000' : checkUuid(options.afterChunkId, 'afterChunkId')
    const rows = await this.db.read(
      (q) => q`SELECT chunk_id, object_id, part_index, stripe_index, chunk_index, storage_node_id, length_bytes
        FROM object_chunks_allocation WHERE storage_node_id = ${nodeId} AND chunk_id > ${after} ORDER BY chunk_id LIMIT ${limit}`,
    )
    return rows.map((r) => ({
      chunkId: r.chunk_id,
      objectId: r.object_id,
      partNumber: r.part_index,
      stripeIndex: r.stripe_index,
      chunkIndex: r.chunk_index,
      nodeId: r.storage_node_id,
      lengthBytes: toNumber(r.length_bytes),
    }))
  }

  /** Which of these chunk ids the chunk map references (the GC sweep deletes old chunks that are not). */
  async referenced(chunkIds: readonly string[]): Promise<Set<string>> {
    const ids = chunkIds.map((id) => checkUuid(id, 'chunk id'))
    if (ids.length === 0) return new Set()
    if (ids.length > catalogRowsPerInsertMax * 10) throw invalid(`at most ${catalogRowsPerInsertMax * 10} chunk ids per call`)
    const rows = await this.db.read((q) => q`SELECT chunk_id FROM object_chunks_allocation WHERE chunk_id = ANY(${ids}::UUID[])`)
    return new Set(rows.map((r) => r.chunk_id as string))
  }

  /**
   * Which of these chunk ids the chunk map places on `nodeId`. The GC asks per node:
   * a writer that timed out on one node and stored the same chunk id on an
   * alternate leaves a copy on the first node that nothing references there.
   */
  async referencedOn(nodeId: string, chunkIds: readonly string[]): Promise<Set<string>> {
    checkName(nodeId, 'node id', 64)
    const ids = chunkIds.map((id) => checkUuid(id, 'chunk id'))
    if (ids.length === 0) return new Set()
    if (ids.length > catalogRowsPerInsertMax * 10) throw invalid(`at most ${catalogRowsPerInsertMax * 10} chunk ids per call`)
    const rows = await this.db.read(
      (q) => q`SELECT chunk_id FROM object_chunks_allocation WHERE chunk_id = ANY(${ids}::UUID[]) AND storage_node_id = ${nodeId}`,
    )
    return new Set(rows.map((r) => r.chunk_id as string))
  }

  /**
   * Moves one chunk of a stripe to a copy on another node (drain): if the row
   * still holds `fromChunkId`, it now names the copy and the old chunk is queued
   * for deletion after the deletion delay (readers that already looked it up
   * finish first). If the row changed meanwhile (a repair replaced the chunk), the
   * stripe is gone (its object was deleted), or the copy's node holds another
   * chunk of the stripe by now ('node-taken': a repair or another drain put one
   * there since the caller chose it), the copy is queued for deletion instead and
   * nothing else changes. The copy must have the same length and root.
   */
  async relocate(key: StripeKey, move: { chunkIndex: number; fromChunkId: string; to: ChunkRecord }): Promise<'moved' | 'changed' | 'gone' | 'node-taken'> {
    const stripeKey = checkKey(key)
    const chunkIndex = checkCount(move.chunkIndex, 'chunk index', 0, 254)
    const from = checkUuid(move.fromChunkId, 'chunk id')
    const to = { ...move.to, chunkId: checkUuid(move.to.chunkId, 'chunk id'), nodeId: checkName(move.to.nodeId, 'node id', 64), root: checkCrc(move.to.root, 'chunk checksum root') }
    if (to.chunkId === from) throw invalid('a relocated chunk gets a new chunk id')
    return this.db.tx(async (q) => {
      // The whole stripe, locked: the target must hold none of its other chunks.
      const rows = await q`SELECT chunk_index, chunk_id, storage_node_id, length_bytes, checksum_crc32c FROM object_chunks_allocation
        WHERE object_id = ${stripeKey.objectId} AND part_index = ${stripeKey.partNumber} AND stripe_index = ${stripeKey.stripeIndex} FOR UPDATE`
      const row = rows.find((r) => r.chunk_index === chunkIndex)
      const orphan = async <T extends string>(outcome: T): Promise<T> => {
        await queueChunks(q, [{ nodeId: to.nodeId, chunkId: to.chunkId, objectId: stripeKey.objectId }], 'ORPHANED', 0)
        return outcome
      }
      if (row === undefined || row.chunk_id !== from) return orphan(row === undefined ? 'gone' : 'changed')
      if (toNumber(row.length_bytes) !== to.lengthBytes || toNumber(row.checksum_crc32c) !== to.root) {
        throw invalid(`the copy of chunk ${from} differs from it (length or checksum root)`)
      }
      if (rows.some((r) => r.chunk_index !== chunkIndex && r.storage_node_id === to.nodeId)) return orphan('node-taken')
      await queueChunks(q, [{ nodeId: row.storage_node_id as string, chunkId: from, objectId: stripeKey.objectId }], 'DRAINED', this.config.deletionDelayMs)
      await q`UPDATE object_chunks_allocation SET chunk_id = ${to.chunkId}, storage_node_id = ${to.nodeId}
        WHERE object_id = ${stripeKey.objectId} AND part_index = ${stripeKey.partNumber} AND stripe_index = ${stripeKey.stripeIndex}
          AND chunk_index = ${chunkIndex}`
      return 'moved'
    })
  }

  /** How many chunks the catalog places on `nodeId` (an index range: proportional to that node's chunks). */
  async countOnNode(nodeId: string): Promise<number> {
    checkName(nodeId, 'node id', 64)
    const rows = await this.db.read((q) => q`SELECT CAST(count(*) AS INT8) AS n FROM object_chunks_allocation WHERE storage_node_id = ${nodeId}`)
    return toNumber(rows[0]!.n)
  }

  /**
   * Stripes short of chunks, by how many they lack: those with a chunk on one of
   * `unavailableNodeIds` (DOWN nodes) and those queued for repair. A bounded read
   * for `blobfs status`: at most `rowsScanMax` rows of each source are looked at,
   * and `truncated` says when there was more. A stripe queued for repair whose
   * chunks all look present (a corrupt chunk, say) counts under lacking 0.
   */
  async degradedSummary(options: { unavailableNodeIds: readonly string[]; rowsScanMax: number }): Promise<DegradedSummary> {
    const down = options.unavailableNodeIds.map((id) => checkName(id, 'node id', 64))
    const scanMax = checkCount(options.rowsScanMax, 'rowsScanMax', 1, 1_000_000)
    const [onDown, queued] = await Promise.all([
      down.length === 0
        ? Promise.resolve([])
        : this.db.read((q) => q`SELECT object_id, part_index, stripe_index FROM object_chunks_allocation WHERE storage_node_id = ANY(${down}) LIMIT ${scanMax}`),
      this.db.read((q) => q`SELECT object_id, part_index, stripe_index FROM repair_tasks LIMIT ${scanMax}`),
    ])
    const stripes = new Map<string, [string, number, number]>()
    for (const r of [...onDown, ...queued]) stripes.set(`${r.object_id}/${r.part_index}/${r.stripe_index}`, [r.object_id, r.part_index, r.stripe_index])
    const byLacking: Record<number, number> = {}
    let counted = 0
    for (const batch of batches([...stripes.values()], catalogRowsPerInsertMax)) {
      const rows = await this.db.read(
        (q) => q`SELECT c.object_id, c.part_index, c.stripe_index, CAST(count(*) AS INT8) AS present,
            CAST(sum(CASE WHEN c.storage_node_id = ANY(${down}) THEN 1 ELSE 0 END) AS INT8) AS unavailable,
            max(coalesce(o.erasure_coding_scheme, u.erasure_coding_scheme)) AS scheme
          FROM object_chunks_allocation c
          LEFT JOIN bucket_objects o ON o.object_id = c.object_id
          LEFT JOIN multipart_uploads u ON u.object_id = c.object_id
          WHERE (c.object_id, c.part_index, c.stripe_index) IN (
            SELECT CAST(v.object_id AS UUID), CAST(v.part_index AS INT4), CAST(v.stripe_index AS INT4)
            FROM (VALUES ${q(batch)}) AS v (object_id, part_index, stripe_index))
          GROUP BY c.object_id, c.part_index, c.stripe_index`,
      )
      for (const row of rows) {
        const scheme = row.scheme === null ? null : parseScheme(row.scheme)
        if (!scheme) continue
        const lacking = Math.max(0, scheme.dataShards + scheme.parityShards - (toNumber(row.present) - toNumber(row.unavailable)))
        byLacking[lacking] = (byLacking[lacking] ?? 0) + 1
        counted++
      }
    }
    return { stripes: counted, byLacking, truncated: onDown.length >= scanMax || queued.length >= scanMax }
  }
}

function checkKey(key: StripeKey): StripeKey {
  return {
    objectId: checkUuid(key.objectId, 'object id'),
    partNumber: checkCount(key.partNumber, 'part number', 1, 10_000),
    stripeIndex: checkCount(key.stripeIndex, 'stripe index', 0, 2 ** 31 - 1),
  }
}

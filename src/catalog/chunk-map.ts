// Statements on the chunk map shared by every module that creates or retires an
// object version (commit, delete, rename over a target, multipart, repair). They
// run inside the caller's transaction: a version's rows and the deletion of the
// version it replaces commit together or not at all.
import { catalogRowsPerInsertMax } from '../limits.ts'
import type { TxSql } from './db.ts'
import { batches } from './rows.ts'
import type { CheckedChunkRow, CheckedParts } from './validate.ts'

// Pipelining: statements of one transaction are sent in the order their queries
// are executed. A postgres.js query is sent when first awaited, and Promise.all
// awaits through extra microtasks, so every statement below is started explicitly
// with .execute() at the point where it is created: creation order is send order.

export type DeletionReason = 'REPLACED' | 'DELETED' | 'PART_REPLACED' | 'UPLOAD_ABORTED' | 'PART_UNUSED' | 'REPAIRED' | 'ORPHANED' | 'DRAINED'

/** Inserts the chunk rows of a version (or of a multipart part) in bounded batches. */
export async function insertChunkRows(q: TxSql, objectId: string, rows: readonly CheckedChunkRow[]): Promise<void> {
  await Promise.all(
    batches(rows, catalogRowsPerInsertMax).map(
      (batch) => q`INSERT INTO object_chunks_allocation ${q(
        batch.map((r) => ({
          object_id: objectId,
          part_index: r.partNumber,
          stripe_index: r.stripeIndex,
          chunk_index: r.chunkIndex,
          chunk_id: r.chunkId,
          storage_node_id: r.nodeId,
          length_bytes: r.lengthBytes,
          checksum_crc32c: r.root,
          is_parity: r.isParity,
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
      )}`.execute(),
    ),
  )
}

/** Queues repair tasks for stripes stored with fewer than k+m chunks. */
export async function queueDegradedStripes(q: TxSql, objectId: string, degraded: CheckedParts['degraded']): Promise<number> {
  let queued = 0
  for (const batch of batches(degraded, catalogRowsPerInsertMax)) {
    const result = await q`INSERT INTO repair_tasks ${q(
      batch.map((d) => ({
        object_id: objectId,
        part_index: d.partNumber,
        stripe_index: d.stripeIndex,
        reason: 'DEGRADED_WRITE',
        detail: `missing chunk indexes ${d.missing.join(',')}`.slice(0, 1024),
      })),
      'object_id',
      'part_index',
      'stripe_index',
      'reason',
      'detail',
    )} ON CONFLICT (object_id, part_index, stripe_index) DO NOTHING`
    queued += result.count
  }
  return queued
}

function availableAfter(q: TxSql, delayMs: number) {
  return q`now() + CAST(${delayMs} AS FLOAT8) * INTERVAL '1 millisecond'`
}

/**
 * Moves chunk rows to the deletion queue: those of `objectId`, optionally only of
 * one part. The rows leave the chunk map; their chunks become deletion tasks that
 * are claimable after `delayMs` (readers of the old version finish first).
 */
export async function queueChunksOf(
  q: TxSql,
  objectId: string,
  reason: DeletionReason,
  delayMs: number,
  partNumber?: number,
): Promise<number> {
  const part = partNumber === undefined ? q`` : q`AND part_index = ${partNumber}`
  const [queued] = await Promise.all([
    q`INSERT INTO chunk_deletions (storage_node_id, chunk_id, object_id, reason, available_at)
      SELECT storage_node_id, chunk_id, object_id, ${reason}, ${availableAfter(q, delayMs)}
      FROM object_chunks_allocation WHERE object_id = ${objectId} ${part}
      ON CONFLICT (storage_node_id, chunk_id) DO NOTHING`.execute(),
    q`DELETE FROM object_chunks_allocation WHERE object_id = ${objectId} ${part}`.execute(),
    q`DELETE FROM repair_tasks WHERE object_id = ${objectId} ${partNumber === undefined ? q`` : q`AND part_index = ${partNumber}`}`.execute(),
  ])
  return queued!.count
}

/** Removes a committed version entirely: chunks queued for deletion, parts and row deleted. */
export async function retireObject(q: TxSql, objectId: string, reason: DeletionReason, delayMs: number): Promise<number> {
  const [queued] = await Promise.all([
    queueChunksOf(q, objectId, reason, delayMs),
    q`DELETE FROM object_parts WHERE object_id = ${objectId}`.execute(),
    q`DELETE FROM bucket_objects WHERE object_id = ${objectId}`.execute(),
  ])
  return queued
}

/** Queues explicit chunks for deletion (chunks a repair replaced, a part's leftovers). */
export async function queueChunks(
  q: TxSql,
  chunks: readonly { nodeId: string; chunkId: string; objectId: string | null }[],
  reason: DeletionReason,
  delayMs: number,
): Promise<number> {
  let queued = 0
  for (const batch of batches(chunks, catalogRowsPerInsertMax)) {
    const result = await q`INSERT INTO chunk_deletions (storage_node_id, chunk_id, object_id, reason, available_at)
      SELECT v.node_id, CAST(v.chunk_id AS UUID), CAST(NULLIF(v.object_id, '') AS UUID), ${reason}, ${availableAfter(q, delayMs)}
      FROM (VALUES ${q(batch.map((c) => [c.nodeId, c.chunkId, c.objectId ?? '']))}) AS v (node_id, chunk_id, object_id)
      ON CONFLICT (storage_node_id, chunk_id) DO NOTHING`
    queued += result.count
  }
  return queued
}

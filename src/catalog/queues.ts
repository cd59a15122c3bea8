// Work queues in the catalog: stripe repairs and chunk deletions, claimed by
// workers on every node with leases that expire.
//
// One column carries the schedule: `available_at`. A task is claimable when
// available_at <= now(). Claiming sets it to now() + lease and stamps a fresh
// lease token; if the worker dies, the lease simply runs out and the next claim
// takes the task with a new token, so the dead worker's late complete() finds its
// token gone and does nothing. Extending pushes available_at forward; releasing
// after a failure clears the lease and sets available_at to now() + a backoff.
// Claims run SERIALIZABLE and lock the rows they take (SELECT ... FOR UPDATE SKIP
// LOCKED, picked once in a materialized CTE), so two claimers never hold the same
// task and one never takes more than it asked for: the loser of a race retries on
// 40001 and picks other rows. All times are the database's clock.
//
// Every node polls both queues every few seconds and they are empty nearly always,
// so a claim first asks, in one read-only statement, whether any task is claimable
// at all, and opens its transaction only when one is. An empty answer is what the
// claim transaction would have found a moment earlier (a task queued after the
// read is taken at the next poll, as it would be after an empty claim); but a
// read is one round trip, while a transaction holds its connection from BEGIN to
// COMMIT — and the embedded catalog's single session with it, keeping everyone
// else waiting (docs/benchmarks.md, "Object layer").
//
// A repair task is keyed by its stripe, so a stripe is never queued twice: a new
// report for a queued stripe bumps its `generation`, and completing a task whose
// generation moved on (a new problem arrived while it was being repaired) puts it
// back in the queue instead of deleting it.
import type { Row } from 'postgres'
import { catalogRowsPerInsertMax, chunkDeletionDelayMsDefault, queueClaimBatchMax, queueLeaseMsMax } from '../limits.ts'
import { queueChunks, type DeletionReason } from './chunk-map.ts'
import { toNumber, type Db } from './db.ts'
import { batches } from './rows.ts'
import { checkCount, checkName, checkUuid, invalid } from './validate.ts'

export interface StripeKey {
  objectId: string
  partNumber: number
  stripeIndex: number
}

export type RepairReason = 'NODE_DOWN' | 'CORRUPT' | 'MISSING' | 'DEGRADED_WRITE' | 'DRAIN'

export interface Lease {
  owner: string
  token: string
  /** When the lease runs out (database clock). */
  expiresAt: Date
}

export interface RepairTask extends StripeKey {
  reason: string
  detail: string
  generation: number
  attempts: number
  lease: Lease
  lastError: string | null
  enqueuedAt: Date
}

export interface DeletionTask {
  nodeId: string
  chunkId: string
  /** The object version the chunk belonged to, when known. */
  objectId: string | null
  reason: string
  attempts: number
  lease: Lease
  lastError: string | null
  enqueuedAt: Date
}

export interface ClaimOptions {
  /** Who holds the lease (shown in status), e.g. "node-3:1234". */
  owner: string
  leaseMs: number
  limit: number
}

export interface QueueStats {
  /** Claimable now. */
  ready: number
  /** Held under an unexpired lease. */
  leased: number
  /** Waiting for a delay or a retry backoff. */
  delayed: number
}

function checkClaim(options: ClaimOptions): { owner: string; leaseMs: number; limit: number } {
  return {
    owner: checkName(options.owner, 'lease owner', 128),
    leaseMs: checkCount(options.leaseMs, 'leaseMs', 1, queueLeaseMsMax),
    limit: checkCount(options.limit, 'limit', 1, queueClaimBatchMax),
  }
}

function leaseOf(row: Row): Lease {
  return { owner: row.lease_owner, token: row.lease_token, expiresAt: row.available_at }
}

const errorText = (error: string) => String(error).slice(0, 1024)

const statsColumns = `CAST(coalesce(sum(CASE WHEN available_at <= now() THEN 1 ELSE 0 END), 0) AS INT8) AS ready,
  CAST(coalesce(sum(CASE WHEN available_at > now() AND lease_token IS NOT NULL THEN 1 ELSE 0 END), 0) AS INT8) AS leased,
  CAST(coalesce(sum(CASE WHEN available_at > now() AND lease_token IS NULL THEN 1 ELSE 0 END), 0) AS INT8) AS delayed`

function statsFromRow(row: Row): QueueStats {
  return { ready: toNumber(row.ready), leased: toNumber(row.leased), delayed: toNumber(row.delayed) }
}

const repairColumns = `object_id, part_index, stripe_index, reason, detail, generation, attempts, lease_owner, lease_token,
  last_error, enqueued_at, available_at`

function repairFromRow(row: Row): RepairTask {
  return {
    objectId: row.object_id,
    partNumber: row.part_index,
    stripeIndex: row.stripe_index,
    reason: row.reason,
    detail: row.detail,
    generation: toNumber(row.generation),
    attempts: row.attempts,
    lease: leaseOf(row),
    lastError: row.last_error,
    enqueuedAt: row.enqueued_at,
  }
}

function checkStripeKey(key: StripeKey): StripeKey {
  return {
    objectId: checkUuid(key.objectId, 'object id'),
    partNumber: checkCount(key.partNumber, 'part number', 1, 10_000),
    stripeIndex: checkCount(key.stripeIndex, 'stripe index', 0, 2 ** 31 - 1),
  }
}

/** Whether `table` holds a task claimable now (of one node, for chunk_deletions): one read, no transaction. */
async function anyClaimable(db: Db, table: 'repair_tasks' | 'chunk_deletions', nodeId?: string): Promise<boolean> {
  const rows = await db.read((q) =>
    table === 'repair_tasks'
      ? q`SELECT 1 AS ready FROM repair_tasks WHERE available_at <= now() LIMIT 1`
      : q`SELECT 1 AS ready FROM chunk_deletions WHERE available_at <= now() ${nodeId !== undefined ? q`AND storage_node_id = ${nodeId}` : q``} LIMIT 1`,
  )
  return rows.length > 0
}

export class RepairQueue {
  constructor(private readonly db: Db) {}

  /**
   * Queues stripes for repair. A stripe already queued is not duplicated: its
   * generation is bumped (and it becomes claimable now if it was waiting). Returns
   * the number of stripes queued or bumped.
   */
  async enqueue(tasks: readonly (StripeKey & { reason: RepairReason; detail?: string })[]): Promise<number> {
    const rows = tasks.map((t) => ({ ...checkStripeKey(t), reason: checkName(t.reason, 'reason', 32), detail: (t.detail ?? '').slice(0, 1024) }))
    if (rows.length === 0) return 0
    return this.db.tx(async (q) => {
      let queued = 0
      for (const batch of batches(rows, catalogRowsPerInsertMax)) {
        const result = await q`INSERT INTO repair_tasks ${q(
          batch.map((r) => ({ object_id: r.objectId, part_index: r.partNumber, stripe_index: r.stripeIndex, reason: r.reason, detail: r.detail })),
          'object_id',
          'part_index',
          'stripe_index',
          'reason',
          'detail',
        )}
          ON CONFLICT (object_id, part_index, stripe_index) DO UPDATE SET generation = repair_tasks.generation + 1,
            reason = excluded.reason, detail = excluded.detail,
            available_at = CASE WHEN repair_tasks.lease_token IS NULL AND repair_tasks.available_at > now() THEN now() ELSE repair_tasks.available_at END`
        queued += result.count
      }
      return queued
    })
  }

  /** Queues the stripes holding these chunks (the scrubber and readers report chunk ids). */
  async enqueueChunks(chunkIds: readonly string[], reason: RepairReason, detail = ''): Promise<number> {
    const ids = chunkIds.map((id) => checkUuid(id, 'chunk id'))
    if (ids.length === 0) return 0
    const text = detail.slice(0, 1024)
    return this.db.tx(async (q) => {
      const result = await q`INSERT INTO repair_tasks (object_id, part_index, stripe_index, reason, detail)
        SELECT DISTINCT object_id, part_index, stripe_index, ${reason}, ${text}
        FROM object_chunks_allocation WHERE chunk_id = ANY(${ids}::UUID[])
        ON CONFLICT (object_id, part_index, stripe_index) DO UPDATE SET generation = repair_tasks.generation + 1,
          reason = excluded.reason, detail = excluded.detail,
          available_at = CASE WHEN repair_tasks.lease_token IS NULL AND repair_tasks.available_at > now() THEN now() ELSE repair_tasks.available_at END`
      return result.count
    })
  }

  /**
   * Queues every stripe with a chunk on `nodeId` (a node declared dead), a batch at
   * a time in chunk-id order: call again with `afterChunkId` = the returned cursor
   * until it is null.
   */
  async enqueueNode(nodeId: string, options: { afterChunkId?: string; limit: number; reason?: RepairReason }): Promise<{ stripes: number; nextAfterChunkId: string | null }> {
    checkName(nodeId, 'node id', 64)
    const limit = checkCount(options.limit, 'limit', 1, catalogRowsPerInsertMax)
    const after = options.afterChunkId === undefined ? '00000000-0000-0000-0000-000000000000' : checkUuid(options.afterChunkId, 'afterChunkId')
    const reason = options.reason ?? 'NODE_DOWN'
    return this.db.tx(async (q) => {
      const chunks = await q`SELECT chunk_id, object_id, part_index, stripe_index FROM object_chunks_allocation
        WHERE storage_node_id = ${nodeId} AND chunk_id > ${after} ORDER BY chunk_id LIMIT ${limit}`
      if (chunks.length === 0) return { stripes: 0, nextAfterChunkId: null }
      const stripes = new Map<string, [string, number, number]>()
      for (const c of chunks) stripes.set(`${c.object_id}/${c.part_index}/${c.stripe_index}`, [c.object_id, c.part_index, c.stripe_index])
      const result = await q`INSERT INTO repair_tasks (object_id, part_index, stripe_index, reason, detail)
        SELECT CAST(v.object_id AS UUID), CAST(v.part_index AS INT4), CAST(v.stripe_index AS INT4), ${reason}, ${`chunks on node ${nodeId}`}
        FROM (VALUES ${q([...stripes.values()])}) AS v (object_id, part_index, stripe_index)
        ON CONFLICT (object_id, part_index, stripe_index) DO UPDATE SET generation = repair_tasks.generation + 1`
      return { stripes: result.count, nextAfterChunkId: chunks.length < limit ? null : (chunks[chunks.length - 1]!.chunk_id as string) }
    })
  }

  /**
   * Drops NODE_DOWN tasks that are no longer needed: not leased, and their stripe has
   * no chunk on a node that is DOWN or gone from the registry (the node came back
   * before repair reached it). At most `limit` per call; returns how many went.
   * Tasks of any other reason (corruption, a degraded write) stay: they do not
   * depend on a node's state.
   */
  async dropUnneeded(options: { limit: number }): Promise<number> {
    const limit = checkCount(options.limit, 'limit', 1, catalogRowsPerInsertMax)
    const rows = await this.db.tx(
      (q) => q`DELETE FROM repair_tasks WHERE (object_id, part_index, stripe_index) IN (
          SELECT t.object_id, t.part_index, t.stripe_index FROM repair_tasks t
          WHERE t.reason = 'NODE_DOWN' AND t.lease_token IS NULL AND NOT EXISTS (
            SELECT 1 FROM object_chunks_allocation c LEFT JOIN storage_nodes n ON n.node_id = c.storage_node_id
            WHERE c.object_id = t.object_id AND c.part_index = t.part_index AND c.stripe_index = t.stripe_index
              AND (n.node_id IS NULL OR n.state = 'DOWN'))
          LIMIT ${limit})
        AND reason = 'NODE_DOWN' AND lease_token IS NULL
        RETURNING object_id`,
    )
    return rows.length
  }

  /**
   * Takes up to `limit` claimable tasks under a lease of `leaseMs`, oldest first. The
   * rows are picked once, in a materialized CTE: as `WHERE ... IN (SELECT ... LIMIT n
   * FOR UPDATE)`, a planner that estimates the table empty (analyzed after the queue
   * drained) picks a nested loop that re-runs the subquery per row, each run skipping
   * the rows this statement already took — and one claim of 2 took every task.
   * SKIP LOCKED: concurrent claimers take other rows instead of waiting.
   */
  async claim(options: ClaimOptions): Promise<RepairTask[]> {
    const { owner, leaseMs, limit } = checkClaim(options)
    if (!(await anyClaimable(this.db, 'repair_tasks'))) return []
    const rows = await this.db.tx(
      (q) => q`WITH picked AS MATERIALIZED (
          SELECT object_id, part_index, stripe_index FROM repair_tasks WHERE available_at <= now()
          ORDER BY available_at LIMIT ${limit} FOR UPDATE SKIP LOCKED)
        UPDATE repair_tasks SET lease_owner = ${owner}, lease_token = gen_random_uuid(), attempts = attempts + 1,
          available_at = now() + CAST(${leaseMs} AS FLOAT8) * INTERVAL '1 millisecond'
        WHERE (object_id, part_index, stripe_index) IN (SELECT object_id, part_index, stripe_index FROM picked)
        RETURNING ${q.unsafe(repairColumns)}`,
    )
    return rows.map(repairFromRow).sort((a, b) => a.enqueuedAt.getTime() - b.enqueuedAt.getTime())
  }

  /** Pushes the lease out to now() + leaseMs; false if the lease was lost. */
  async extend(task: RepairTask, leaseMs: number): Promise<boolean> {
    const key = checkStripeKey(task)
    checkCount(leaseMs, 'leaseMs', 1, queueLeaseMsMax)
    const rows = await this.db.tx(
      (q) => q`UPDATE repair_tasks SET available_at = now() + CAST(${leaseMs} AS FLOAT8) * INTERVAL '1 millisecond'
        WHERE object_id = ${key.objectId} AND part_index = ${key.partNumber} AND stripe_index = ${key.stripeIndex}
          AND lease_token = ${task.lease.token} RETURNING available_at`,
    )
    if (rows.length === 1) task.lease.expiresAt = rows[0]!.available_at
    return rows.length === 1
  }

  /**
   * Finishes a repair. 'done': the task is gone. 'requeued': the stripe was
   * reported again meanwhile, so the task stays, claimable now. 'lost': the lease
   * had expired and another worker holds the task.
   */
  async complete(task: RepairTask): Promise<'done' | 'requeued' | 'lost'> {
    const key = checkStripeKey(task)
    return this.db.tx(async (q) => {
      const match = q`object_id = ${key.objectId} AND part_index = ${key.partNumber} AND stripe_index = ${key.stripeIndex} AND lease_token = ${task.lease.token}`
      const deleted = await q`DELETE FROM repair_tasks WHERE ${match} AND generation = ${task.generation} RETURNING object_id`
      if (deleted.length === 1) return 'done'
      const requeued = await q`UPDATE repair_tasks SET lease_owner = NULL, lease_token = NULL, available_at = now() WHERE ${match} RETURNING object_id`
      return requeued.length === 1 ? 'requeued' : 'lost'
    })
  }

  /** Gives a task back after a failure: claimable again after `retryAfterMs`. False if the lease was lost. */
  async release(task: RepairTask, options: { retryAfterMs: number; error: string }): Promise<boolean> {
    const key = checkStripeKey(task)
    const retryAfterMs = checkCount(options.retryAfterMs, 'retryAfterMs', 0, queueLeaseMsMax)
    const rows = await this.db.tx(
      (q) => q`UPDATE repair_tasks SET lease_owner = NULL, lease_token = NULL, last_error = ${errorText(options.error)},
          available_at = now() + CAST(${retryAfterMs} AS FLOAT8) * INTERVAL '1 millisecond'
        WHERE object_id = ${key.objectId} AND part_index = ${key.partNumber} AND stripe_index = ${key.stripeIndex}
          AND lease_token = ${task.lease.token} RETURNING object_id`,
    )
    return rows.length === 1
  }

  async stats(): Promise<QueueStats> {
    const rows = await this.db.read((q) => q`SELECT ${q.unsafe(statsColumns)} FROM repair_tasks`)
    return statsFromRow(rows[0]!)
  }

  /** Tasks that failed at least once, most tried first (why a backlog does not shrink). */
  async failing(options: { limit: number }): Promise<RepairTask[]> {
    const limit = checkCount(options.limit, 'limit', 1, queueClaimBatchMax)
    const rows = await this.db.read(
      (q) => q`SELECT ${q.unsafe(repairColumns)} FROM repair_tasks WHERE last_error IS NOT NULL ORDER BY attempts DESC, enqueued_at LIMIT ${limit}`,
    )
    return rows.map(repairFromRow)
  }
}

const deletionColumns = `storage_node_id, chunk_id, object_id, reason, attempts, lease_owner, lease_token, last_error, enqueued_at, available_at`

function deletionFromRow(row: Row): DeletionTask {
  return {
    nodeId: row.storage_node_id,
    chunkId: row.chunk_id,
    objectId: row.object_id,
    reason: row.reason,
    attempts: row.attempts,
    lease: leaseOf(row),
    lastError: row.last_error,
    enqueuedAt: row.enqueued_at,
  }
}

export class DeletionQueue {
  constructor(
    private readonly db: Db,
    private readonly config: { deletionDelayMs: number } = { deletionDelayMs: chunkDeletionDelayMsDefault },
  ) {}

  /**
   * Queues chunks for deletion from their nodes (e.g. unreferenced chunks found by
   * the inventory sweep). Claimable after `delayMs` (default: the catalog's
   * deletion delay). A chunk already queued is not queued twice.
   */
  async enqueue(
    chunks: readonly { nodeId: string; chunkId: string; objectId?: string | null }[],
    options: { reason?: DeletionReason; delayMs?: number } = {},
  ): Promise<number> {
    const rows = chunks.map((c) => ({
      nodeId: checkName(c.nodeId, 'node id', 64),
      chunkId: checkUuid(c.chunkId, 'chunk id'),
      objectId: c.objectId === undefined || c.objectId === null ? null : checkUuid(c.objectId, 'object id'),
    }))
    const delayMs = checkCount(options.delayMs ?? this.config.deletionDelayMs, 'delayMs', 0, Number.MAX_SAFE_INTEGER)
    if (rows.length === 0) return 0
    return this.db.tx((q) => queueChunks(q, rows, options.reason ?? 'ORPHANED', delayMs))
  }

  /** Takes up to `limit` claimable deletions (of one node's chunks when `nodeId` is given). */
  async claim(options: ClaimOptions & { nodeId?: string }): Promise<DeletionTask[]> {
    const { owner, leaseMs, limit } = checkClaim(options)
    const node = options.nodeId === undefined ? undefined : checkName(options.nodeId, 'node id', 64)
    if (!(await anyClaimable(this.db, 'chunk_deletions', node))) return []
    const rows = await this.db.tx(
      (q) => q`WITH picked AS MATERIALIZED (
          SELECT storage_node_id, chunk_id FROM chunk_deletions
          WHERE available_at <= now() ${node !== undefined ? q`AND storage_node_id = ${node}` : q``}
          ORDER BY available_at LIMIT ${limit} FOR UPDATE SKIP LOCKED)
        UPDATE chunk_deletions SET lease_owner = ${owner}, lease_token = gen_random_uuid(), attempts = attempts + 1,
          available_at = now() + CAST(${leaseMs} AS FLOAT8) * INTERVAL '1 millisecond'
        WHERE (storage_node_id, chunk_id) IN (SELECT storage_node_id, chunk_id FROM picked)
        RETURNING ${q.unsafe(deletionColumns)}`,
    )
    return rows.map(deletionFromRow)
  }

  async extend(task: DeletionTask, leaseMs: number): Promise<boolean> {
    checkCount(leaseMs, 'leaseMs', 1, queueLeaseMsMax)
    const rows = await this.db.tx(
      (q) => q`UPDATE chunk_deletions SET available_at = now() + CAST(${leaseMs} AS FLOAT8) * INTERVAL '1 millisecond'
        WHERE storage_node_id = ${task.nodeId} AND chunk_id = ${task.chunkId} AND lease_token = ${task.lease.token} RETURNING available_at`,
    )
    if (rows.length === 1) task.lease.expiresAt = rows[0]!.available_at
    return rows.length === 1
  }

  /** The node confirmed the tombstone: the task is gone. False if the lease was lost. */
  async complete(task: DeletionTask): Promise<boolean> {
    const rows = await this.db.tx(
      (q) => q`DELETE FROM chunk_deletions WHERE storage_node_id = ${task.nodeId} AND chunk_id = ${task.chunkId}
        AND lease_token = ${task.lease.token} RETURNING chunk_id`,
    )
    return rows.length === 1
  }

  /**
   * complete() for a batch in one transaction (the chunk GC confirms tombstones a
   * batch at a time). Returns the chunk ids whose lease was still held; the others
   * were taken by another worker and stay queued.
   */
  async completeMany(tasks: readonly DeletionTask[]): Promise<Set<string>> {
    if (tasks.length === 0) return new Set()
    if (tasks.length > queueClaimBatchMax) throw invalid(`at most ${queueClaimBatchMax} deletions per call`)
    const rows = tasks.map((t) => [checkName(t.nodeId, 'node id', 64), checkUuid(t.chunkId, 'chunk id'), checkUuid(t.lease.token, 'lease token')])
    const deleted = await this.db.tx(
      (q) => q`DELETE FROM chunk_deletions WHERE (storage_node_id, chunk_id, lease_token) IN (
          SELECT v.node_id, CAST(v.chunk_id AS UUID), CAST(v.token AS UUID) FROM (VALUES ${q(rows)}) AS v (node_id, chunk_id, token))
        RETURNING chunk_id`,
    )
    return new Set(deleted.map((r) => r.chunk_id as string))
  }

  async release(task: DeletionTask, options: { retryAfterMs: number; error: string }): Promise<boolean> {
    const retryAfterMs = checkCount(options.retryAfterMs, 'retryAfterMs', 0, queueLeaseMsMax)
    const rows = await this.db.tx(
      (q) => q`UPDATE chunk_deletions SET lease_owner = NULL, lease_token = NULL, last_error = ${errorText(options.error)},
          available_at = now() + CAST(${retryAfterMs} AS FLOAT8) * INTERVAL '1 millisecond'
        WHERE storage_node_id = ${task.nodeId} AND chunk_id = ${task.chunkId} AND lease_token = ${task.lease.token} RETURNING chunk_id`,
    )
    return rows.length === 1
  }

  async stats(options: { nodeId?: string } = {}): Promise<QueueStats> {
    const node = options.nodeId === undefined ? undefined : checkName(options.nodeId, 'node id', 64)
    const rows = await this.db.read(
      (q) => q`SELECT ${q.unsafe(statsColumns)} FROM chunk_deletions ${node !== undefined ? q`WHERE storage_node_id = ${node}` : q``}`,
    )
    return statsFromRow(rows[0]!)
  }
}


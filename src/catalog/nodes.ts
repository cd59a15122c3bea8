// The storage-node registry. Every node upserts its row every few seconds
// (address, rack, capacity, used); liveness is judged on the database's clock
// (heartbeat age is computed in SQL), so processes with skewed clocks agree on who
// is down. States: UP (placement candidate), READONLY (serves reads, takes no new
// chunks), DRAINING (being emptied by an operator), DOWN (heartbeat too old, or
// marked). A node that heartbeats again after being DOWN comes back UP; READONLY
// and DRAINING are operator decisions a heartbeat does not undo.
import { BlobfsError } from '../errors.ts'
import type { Row } from 'postgres'
import { toNumber, type Db } from './db.ts'
import { checkCount, checkName, invalid } from './validate.ts'

export type NodeState = 'UP' | 'DOWN' | 'READONLY' | 'DRAINING'
export const nodeStates: readonly NodeState[] = ['UP', 'DOWN', 'READONLY', 'DRAINING']

export interface NodeRecord {
  id: string
  address: string
  rack: string
  state: NodeState
  capacityBytes: number
  usedBytes: number
  lastHeartbeat: Date
  /** now() - last_heartbeat on the database's clock, when the row was read. */
  heartbeatAgeMs: number
  registeredAt: Date
}

export interface HeartbeatInput {
  id: string
  /** Base URL the node serves chunks on, e.g. http://10.0.0.5:9100 */
  address: string
  rack: string
  capacityBytes: number
  usedBytes: number
}

const nodeColumns = `node_id, address, rack, state, capacity_bytes, used_bytes, last_heartbeat, registered_at,
  CAST(EXTRACT(EPOCH FROM (now() - last_heartbeat)) * 1000 AS INT8) AS heartbeat_age_ms`

function nodeFromRow(row: Row): NodeRecord {
  return {
    id: row.node_id,
    address: row.address,
    rack: row.rack,
    state: row.state,
    capacityBytes: toNumber(row.capacity_bytes),
    usedBytes: toNumber(row.used_bytes),
    lastHeartbeat: row.last_heartbeat,
    heartbeatAgeMs: Math.max(0, toNumber(row.heartbeat_age_ms)),
    registeredAt: row.registered_at,
  }
}

function checkState(state: NodeState): NodeState {
  if (!nodeStates.includes(state)) throw invalid(`node state must be one of ${nodeStates.join(', ')}`)
  return state
}

export class Nodes {
  constructor(private readonly db: Db) {}

  /** Registers the node or refreshes its row; returns the row as stored (with its state). */
  async heartbeat(input: HeartbeatInput): Promise<NodeRecord> {
    const id = checkName(input.id, 'node id', 64)
    const address = checkName(input.address, 'node address', 256)
    const rack = checkName(input.rack, 'rack', 64)
    const capacity = checkCount(input.capacityBytes, 'capacityBytes', 0, Number.MAX_SAFE_INTEGER)
    const used = checkCount(input.usedBytes, 'usedBytes', 0, Number.MAX_SAFE_INTEGER)
    // One statement in its own (implicit) transaction, not BEGIN / INSERT / COMMIT:
    // every node sends this every few seconds, and an explicit transaction holds its
    // connection — and the embedded catalog's single session, with every GET's
    // lookup queued behind it — across two round trips to a node process that may
    // not be running at that moment (docs/benchmarks.md, "Object layer"). This is
    // the one write outside `tx`, and it needs no more: it touches one row, by its
    // key, with no read before it, and ON CONFLICT DO UPDATE locks that row and
    // applies the CASE to its latest committed state under any isolation level (a
    // concurrent setState or markStaleDown is ordered before or after it, as under
    // SERIALIZABLE). A 40001 (CockroachDB) leaves no effect and is retried by `read`.
    const rows = await this.db.read(
      (q) => q`INSERT INTO storage_nodes (node_id, address, rack, capacity_bytes, used_bytes, state, last_heartbeat)
        VALUES (${id}, ${address}, ${rack}, ${capacity}, ${used}, 'UP', now())
        ON CONFLICT (node_id) DO UPDATE SET address = excluded.address, rack = excluded.rack,
          capacity_bytes = excluded.capacity_bytes, used_bytes = excluded.used_bytes, last_heartbeat = now(),
          state = CASE WHEN storage_nodes.state = 'DOWN' THEN 'UP' ELSE storage_nodes.state END
        RETURNING ${q.unsafe(nodeColumns)}`,
    )
    return nodeFromRow(rows[0]!)
  }

  async get(id: string): Promise<NodeRecord | null> {
    checkName(id, 'node id', 64)
    const rows = await this.db.read((q) => q`SELECT ${q.unsafe(nodeColumns)} FROM storage_nodes WHERE node_id = ${id}`)
    return rows.length === 0 ? null : nodeFromRow(rows[0]!)
  }

  /** Every registered node, by id (for membership views and `blobfs status`). */
  async list(): Promise<NodeRecord[]> {
    const rows = await this.db.read((q) => q`SELECT ${q.unsafe(nodeColumns)} FROM storage_nodes ORDER BY node_id`)
    return rows.map(nodeFromRow)
  }

  /** Placement candidates: UP nodes whose heartbeat is younger than `heartbeatWithinMs`, with their racks and free space. */
  async listWritable(options: { heartbeatWithinMs: number }): Promise<(NodeRecord & { freeBytes: number })[]> {
    const within = checkCount(options.heartbeatWithinMs, 'heartbeatWithinMs', 0, Number.MAX_SAFE_INTEGER)
    const rows = await this.db.read(
      (q) => q`SELECT ${q.unsafe(nodeColumns)} FROM storage_nodes
        WHERE state = 'UP' AND last_heartbeat > now() - CAST(${within} AS FLOAT8) * INTERVAL '1 millisecond'
        ORDER BY node_id`,
    )
    return rows.map(nodeFromRow).map((n) => ({ ...n, freeBytes: Math.max(0, n.capacityBytes - n.usedBytes) }))
  }

  /** Marks DOWN every node not DOWN whose heartbeat is older than `heartbeatWithinMs`; returns their ids. */
  async markStaleDown(options: { heartbeatWithinMs: number }): Promise<string[]> {
    const within = checkCount(options.heartbeatWithinMs, 'heartbeatWithinMs', 0, Number.MAX_SAFE_INTEGER)
    // Every node's failure detector calls this every few seconds, and nearly always
    // nobody is stale: one read says so without opening a transaction (which would
    // hold the connection, and the embedded catalog's one session, from BEGIN to
    // COMMIT). A node that goes stale after the read is marked at the next call, as
    // it would be had the UPDATE run at the moment of the read.
    const stale = await this.db.read(
      (q) => q`SELECT node_id FROM storage_nodes
        WHERE state <> 'DOWN' AND last_heartbeat <= now() - CAST(${within} AS FLOAT8) * INTERVAL '1 millisecond' LIMIT 1`,
    )
    if (stale.length === 0) return []
    const rows = await this.db.tx(
      (q) => q`UPDATE storage_nodes SET state = 'DOWN'
        WHERE state <> 'DOWN' AND last_heartbeat <= now() - CAST(${within} AS FLOAT8) * INTERVAL '1 millisecond'
        RETURNING node_id`,
    )
    return rows.map((r) => r.node_id as string).sort()
  }

  /** Sets a node's state (operators: READONLY, DRAINING; the failure detector: DOWN). */
  async setState(id: string, state: NodeState): Promise<NodeRecord> {
    checkName(id, 'node id', 64)
    checkState(state)
    const rows = await this.db.tx(
      (q) => q`UPDATE storage_nodes SET state = ${state} WHERE node_id = ${id} RETURNING ${q.unsafe(nodeColumns)}`,
    )
    if (rows.length === 0) throw new BlobfsError('InvalidArgument', `node ${id} is not registered`)
    return nodeFromRow(rows[0]!)
  }

  /** Shorthand for setState(id, 'DOWN'). */
  markDown(id: string): Promise<NodeRecord> {
    return this.setState(id, 'DOWN')
  }
}

// What `blobfs status` shows, gathered once into a typed report (the command only
// formats it): the catalog's view — nodes by rack and state, capacity, degraded
// stripes by how many chunks they lack, the repair and deletion queues, multipart
// sessions — and each live node's own view from its /health: scrub progress, the
// background workers and their rates. Every catalog read is bounded (an index
// range or a LIMIT, never a scan of the chunk map on a healthy cluster), and every
// node is asked in parallel with a short timeout, so status answers fast even
// when parts of the cluster are down.
import { request } from 'undici'
import type { NodeRecord, NodeState } from '../catalog/nodes.ts'
import type { QueueStats } from '../catalog/queues.ts'
import type { DegradedSummary } from '../catalog/chunks.ts'
import { multipartIdleMsDefault, nodeHealthTimeoutMs } from '../limits.ts'
import type { WorkerStatus } from '../worker.ts'
import type { Cluster } from './cluster.ts'

/** Rows looked at per source when counting degraded stripes (a lower bound beyond). */
export const statusDegradedRowsMax = 20_000
/** Multipart sessions counted (a lower bound beyond). */
export const statusSessionsCountMax = 100_000

export interface NodeReport {
  id: string
  rack: string
  /** The registry's state; DRAINING with no chunk left shows as drained. */
  state: NodeState
  drained: boolean
  address: string
  capacityBytes: number
  usedBytes: number
  heartbeatAgeMs: number
  /** Chunks the catalog places here (asked for draining nodes only, null otherwise). */
  catalogChunks: number | null
  /** From the node's /health; null when it did not answer. */
  live: {
    chunks: number
    readOnly: boolean
    scrubProgressRatio: number | null
    scrubPasses: number | null
    workers: WorkerStatus[]
  } | null
  unreachableReason: string | null
}

export interface WorkerTotals {
  /** Nodes running a worker of this name. */
  nodes: number
  states: Record<string, number>
  errors: number
  /** Every numeric detail field, summed over the nodes. */
  totals: Record<string, number>
}

export interface StatusReport {
  nodes: NodeReport[]
  nodeStates: Record<string, number>
  racks: number
  capacityBytes: number
  usedBytes: number
  objects: number
  degraded: DegradedSummary
  repairBacklog: QueueStats
  deletionBacklog: QueueStats
  /** Stripes per second the repair workers report (sum of their *PerSec fields), null when none report one. */
  repairRatePerSec: number | null
  /** Chunk tombstones per second, over the chunk GC workers. */
  deletionRatePerSec: number | null
  scrub: { nodesReporting: number; progressRatioMin: number | null; progressRatioMean: number | null; passesMin: number | null }
  multipart: { open: number; idle: number; idleMs: number; capped: boolean }
  workers: Record<string, WorkerTotals>
}

interface HealthBody {
  chunks?: number
  readOnly?: boolean
  workers?: WorkerStatus[]
}

async function nodeHealth(node: NodeRecord): Promise<{ body: HealthBody } | { error: string }> {
  try {
    const response = await request(`${node.address.replace(/\/$/, '')}/health`, {
      signal: AbortSignal.timeout(nodeHealthTimeoutMs),
      headersTimeout: nodeHealthTimeoutMs,
      bodyTimeout: nodeHealthTimeoutMs,
    })
    if (response.statusCode !== 200) {
      await response.body.dump()
      return { error: `HTTP ${response.statusCode}` }
    }
    return { body: (await response.body.json()) as HealthBody }
  } catch (error) {
    return { error: (error as Error).message || String(error) }
  }
}

const numberOr = (value: unknown): number | null => (typeof value === 'number' && Number.isFinite(value) ? value : null)

export async function collectStatus(cluster: Pick<Cluster, 'catalog' | 'objects'>): Promise<StatusReport> {
  const { catalog, objects } = cluster
  const nodes = await catalog.nodes.list()
  const down = nodes.filter((n) => n.state === 'DOWN').map((n) => n.id)
  const [usage, repairs, deletions, degraded, healths, drainingCounts] = await Promise.all([
    objects.clusterUsage(),
    catalog.repairs.stats(),
    catalog.deletions.stats(),
    catalog.chunks.degradedSummary({ unavailableNodeIds: down, rowsScanMax: statusDegradedRowsMax }),
    Promise.all(nodes.map((n) => (n.state === 'DOWN' ? Promise.resolve({ error: 'node is DOWN' }) : nodeHealth(n)))),
    Promise.all(nodes.map((n) => (n.state === 'DRAINING' ? catalog.chunks.countOnNode(n.id) : Promise.resolve(null)))),
  ])

  const workers: Record<string, WorkerTotals> = {}
  const reports: NodeReport[] = nodes.map((node, i) => {
    const health = healths[i]!
    const live = 'body' in health ? health.body : null
    const nodeWorkers = live?.workers ?? []
    for (const w of nodeWorkers) {
      const totals = (workers[w.name] ??= { nodes: 0, states: {}, errors: 0, totals: {} })
      totals.nodes++
      totals.states[w.state] = (totals.states[w.state] ?? 0) + 1
      totals.errors += w.errors
      for (const [field, value] of Object.entries(w.detail)) {
        if (typeof value === 'number' && Number.isFinite(value)) totals.totals[field] = (totals.totals[field] ?? 0) + value
      }
    }
    const scrub = nodeWorkers.find((w) => w.name === 'scrub')
    const catalogChunks = drainingCounts[i] ?? null
    return {
      id: node.id,
      rack: node.rack,
      state: node.state,
      drained: node.state === 'DRAINING' && catalogChunks === 0,
      address: node.address,
      capacityBytes: node.capacityBytes,
      usedBytes: node.usedBytes,
      heartbeatAgeMs: node.heartbeatAgeMs,
      catalogChunks,
      live: live
        ? {
            chunks: numberOr(live.chunks) ?? 0,
            readOnly: live.readOnly === true,
            scrubProgressRatio: numberOr(scrub?.detail.progressRatio),
            scrubPasses: numberOr(scrub?.detail.passes),
            workers: nodeWorkers,
          }
        : null,
      unreachableReason: 'error' in health ? health.error : null,
    }
  })

  const nodeStates: Record<string, number> = {}
  for (const node of nodes) nodeStates[node.state] = (nodeStates[node.state] ?? 0) + 1
  const scrubRatios = reports.map((r) => r.live?.scrubProgressRatio).filter((v): v is number => typeof v === 'number')
  const scrubPasses = reports.map((r) => r.live?.scrubPasses).filter((v): v is number => typeof v === 'number')
  const rateOf = (match: (name: string) => boolean): number | null => {
    let sum: number | null = null
    for (const [name, w] of Object.entries(workers)) {
      if (!match(name)) continue
      for (const [field, value] of Object.entries(w.totals)) if (field.endsWith('PerSec')) sum = (sum ?? 0) + value
    }
    return sum
  }
  // The idle limit is each node's setting; status shows the one the nodes report (the default otherwise).
  const idleMs = numberOr(reports.flatMap((r) => r.live?.workers ?? []).find((w) => w.name === 'multipart-gc')?.detail.idleMs) ?? multipartIdleMsDefault
  const sessions = await catalog.multipart.sessionStats({ idleMs, countMax: statusSessionsCountMax })

  return {
    nodes: reports,
    nodeStates,
    racks: new Set(nodes.map((n) => n.rack)).size,
    capacityBytes: usage.capacityBytes,
    usedBytes: usage.usedBytes,
    objects: usage.objects,
    degraded,
    repairBacklog: repairs,
    deletionBacklog: deletions,
    repairRatePerSec: rateOf((name) => name.includes('repair')),
    deletionRatePerSec: rateOf((name) => name === 'chunk-gc'),
    scrub: {
      nodesReporting: scrubRatios.length,
      progressRatioMin: scrubRatios.length ? Math.min(...scrubRatios) : null,
      progressRatioMean: scrubRatios.length ? scrubRatios.reduce((a, b) => a + b, 0) / scrubRatios.length : null,
      passesMin: scrubPasses.length ? Math.min(...scrubPasses) : null,
    },
    multipart: { ...sessions, idleMs },
    workers,
  }
}

// Prometheus metrics of repair and failure detection, registered into the registry
// of the process that runs them (a storage node's /metrics). Events are counted by
// the repair worker; the queue backlog is read from the catalog at scrape time.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { QueueStats } from '../catalog/queues.ts'

export type TaskResult = 'repaired' | 'partial' | 'healthy' | 'gone' | 'conflict' | 'failed' | 'lost'

export interface RepairMetricSources {
  /** The cluster's repair queue (catalog.repairs.stats); errors leave the gauge as it was. */
  backlog(): Promise<QueueStats>
  inFlight(): number
  nodesDown(): number
}

const prefix = 'blobfs_repair_'

export class RepairMetrics {
  readonly tasks: Counter<'result'>
  readonly chunksRebuilt: Counter
  readonly bytesRebuilt: Counter
  readonly bytesRead: Counter
  readonly taskSeconds: Histogram

  constructor(registry: Registry, sources: RepairMetricSources) {
    const registers = [registry]
    this.tasks = new Counter({ name: `${prefix}tasks_total`, help: 'repair tasks finished, by result (repaired, partial, healthy: nothing to do, gone: object deleted, conflict, failed, lost: lease ran out)', labelNames: ['result'], registers })
    this.chunksRebuilt = new Counter({ name: `${prefix}chunks_rebuilt_total`, help: 'chunks decoded and written to a new node', registers })
    this.bytesRebuilt = new Counter({ name: `${prefix}bytes_rebuilt_total`, help: 'bytes of rebuilt chunks written', registers })
    this.bytesRead = new Counter({ name: `${prefix}bytes_read_total`, help: 'bytes of surviving chunks read to rebuild others', registers })
    this.taskSeconds = new Histogram({ name: `${prefix}task_seconds`, help: 'time to repair one stripe', buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers })
    new Gauge({
      name: `${prefix}tasks_in_flight`,
      help: 'stripes this process is repairing now',
      registers,
      collect() {
        this.set(sources.inFlight())
      },
    })
    new Gauge({
      name: `${prefix}backlog_tasks`,
      help: 'repair tasks in the cluster queue, by state (ready, leased, delayed)',
      labelNames: ['state'],
      registers,
      async collect() {
        const stats = await sources.backlog().catch(() => null)
        if (!stats) return
        for (const state of ['ready', 'leased', 'delayed'] as const) this.set({ state }, stats[state])
      },
    })
    new Gauge({
      name: 'blobfs_nodes_down',
      help: 'storage nodes the failure detector sees DOWN',
      registers,
      collect() {
        this.set(sources.nodesDown())
      },
    })
  }
}

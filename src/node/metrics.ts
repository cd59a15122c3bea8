// Prometheus metrics of one storage node (prom-client), in a registry of its own
// so several nodes can live in one process (tests, `blobfs up`). Event counts come
// from the store's observer and the HTTP server; levels (chunks, bytes, scrub and
// compaction progress) are read from their sources at scrape time.
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { WorkerStatus } from '../worker.ts'
import type { StoreStats } from './block-store.ts'

export interface MetricSources {
  store(): StoreStats
  workers(): WorkerStatus[]
}

const prefix = 'blobfs_node_'

export class NodeMetrics {
  readonly registry = new Registry()
  readonly fsyncSeconds: Histogram
  readonly groupCommitRecords: Histogram
  readonly appendedBytes: Counter
  readonly appendedRecords: Counter
  readonly snapshotSeconds: Histogram
  readonly requests: Counter<'method' | 'route' | 'status'>
  readonly requestSeconds: Histogram<'method' | 'route'>
  readonly errors: Counter<'code'>
  readonly corruptChunks: Counter

  constructor(sources: MetricSources) {
    const registers = [this.registry]
    this.fsyncSeconds = new Histogram({
      name: `${prefix}fsync_seconds`,
      help: 'fdatasync latency of a group commit',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2],
      registers,
    })
    this.groupCommitRecords = new Histogram({ name: `${prefix}group_commit_records`, help: 'records sharing one fdatasync', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers })
    this.appendedBytes = new Counter({ name: `${prefix}appended_bytes_total`, help: 'bytes appended to block logs (records, padding included)', registers })
    this.appendedRecords = new Counter({ name: `${prefix}appended_records_total`, help: 'records appended to block logs', registers })
    this.snapshotSeconds = new Histogram({ name: `${prefix}index_snapshot_seconds`, help: 'time to write an index snapshot', buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10], registers })
    this.requests = new Counter({ name: `${prefix}http_requests_total`, help: 'HTTP requests answered', labelNames: ['method', 'route', 'status'], registers })
    this.requestSeconds = new Histogram({
      name: `${prefix}http_request_seconds`,
      help: 'HTTP request latency',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    })
    this.errors = new Counter({ name: `${prefix}errors_total`, help: 'errors answered, by code', labelNames: ['code'], registers })
    this.corruptChunks = new Counter({ name: `${prefix}corrupt_chunks_total`, help: 'chunks found failing their checksum (reads, scrubber, compaction)', registers })

    const level = (name: string, help: string, read: (stats: StoreStats) => number): void => {
      new Gauge({
        name: `${prefix}${name}`,
        help,
        registers,
        collect() {
          this.set(read(sources.store()))
        },
      })
    }
    level('chunks', 'live chunks', (s) => s.chunks)
    level('live_bytes', 'bytes of live records', (s) => s.liveRecordBytes)
    level('block_files', 'block files', (s) => s.blockFiles)
    level('block_file_bytes', 'bytes of block files (pre-allocated)', (s) => s.blockFileBytes)
    level('read_only', '1 when the node refuses new chunks', (s) => (s.readOnly ? 1 : 0))

    // Worker details: every numeric field of every worker, as one gauge family.
    new Gauge({
      name: `${prefix}worker`,
      help: 'background worker progress and counters (scrub, compaction, heartbeat), by field',
      labelNames: ['worker', 'field'],
      registers,
      collect() {
        this.reset()
        for (const w of sources.workers()) {
          this.set({ worker: w.name, field: 'steps' }, w.steps)
          this.set({ worker: w.name, field: 'errors' }, w.errors)
          for (const [field, value] of Object.entries(w.detail)) {
            if (typeof value === 'number') this.set({ worker: w.name, field }, value)
            if (typeof value === 'boolean') this.set({ worker: w.name, field }, value ? 1 : 0)
          }
        }
      },
    })
    const workerField = (name: string, help: string, worker: string, field: string): void => {
      new Gauge({
        name: `${prefix}${name}`,
        help,
        registers,
        collect() {
          const value = sources.workers().find((w) => w.name === worker)?.detail[field]
          this.set(typeof value === 'number' ? value : 0)
        },
      })
    }
    workerField('scrub_progress_ratio', 'progress through the current scrub pass (1 between passes)', 'scrub', 'progressRatio')
    workerField('scrub_passes', 'scrub passes completed since start', 'scrub', 'passes')
    workerField('scrub_bytes', 'bytes verified by the scrubber since start', 'scrub', 'bytesScrubbed')
    workerField('scrub_corrupt_found', 'corrupt chunks the scrubber found since start', 'scrub', 'corruptFound')
    workerField('compaction_blocks', 'blocks compacted since start', 'compaction', 'blocksCompacted')
    workerField('compaction_bytes_moved', 'bytes copied by compaction since start', 'compaction', 'bytesMoved')
    workerField('compaction_file_bytes_removed', 'bytes of block files removed by compaction since start', 'compaction', 'fileBytesRemoved')
  }
}

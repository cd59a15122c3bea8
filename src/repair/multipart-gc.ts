// Multipart GC (DESIGN.md, "Durability: repair and GC"; the seed's orphan-multipart
// section): a session with no part recorded for longer than the idle limit (7 days
// by default) was abandoned by its client. It is aborted — its parts' chunk rows
// move to the deletion queue in the same transaction — and the chunk GC then
// tombstones the chunks on their nodes. Every node runs this worker; two nodes
// aborting the same session is harmless (abortIdle re-checks under the session's
// row lock, and the second finds it gone), and a part recorded after the scan saw
// the session keeps it alive.
import type { Catalog } from '../catalog/catalog.ts'
import { multipartGcBatchMax, multipartGcIntervalMsDefault, multipartIdleMsDefault } from '../limits.ts'
import type { Logger } from '../log.ts'
import type { StepResult, Worker, WorkerDetail } from '../worker.ts'

export interface MultipartGcOptions {
  catalog: Pick<Catalog, 'multipart'>
  log: Logger
  /** A session idle this long is aborted. */
  idleMs?: number
  /** How long to wait between scans once nothing is left to abort. */
  intervalMs?: number
  batchMax?: number
}

export class MultipartGc implements Worker {
  readonly name = 'multipart-gc'
  readonly idleMs: number
  private readonly intervalMs: number
  private readonly batchMax: number
  private scans = 0
  private aborted = 0
  private chunksQueued = 0
  private lastScanMs: number | null = null

  constructor(private readonly options: MultipartGcOptions) {
    this.idleMs = options.idleMs ?? multipartIdleMsDefault
    this.intervalMs = options.intervalMs ?? multipartGcIntervalMsDefault
    this.batchMax = Math.min(options.batchMax ?? multipartGcBatchMax, multipartGcBatchMax)
  }

  async step(signal: AbortSignal): Promise<StepResult> {
    const { catalog, log } = this.options
    const idle = await catalog.multipart.findIdle({ idleMs: this.idleMs, limit: this.batchMax })
    this.scans++
    this.lastScanMs = Date.now()
    for (const upload of idle) {
      if (signal.aborted) break
      const result = await catalog.multipart.abortIdle(upload.uploadId, this.idleMs)
      if (result === null) continue // gone (another node aborted it, or the client) or busy again
      this.aborted++
      this.chunksQueued += result.chunksQueued
      log.info({ uploadId: upload.uploadId, bucket: upload.bucket, key: upload.key, initiatedAt: upload.initiatedAt, chunksQueued: result.chunksQueued }, 'aborted an idle multipart upload')
    }
    return idle.length >= this.batchMax ? { state: 'busy' } : { state: 'idle', delayMs: this.intervalMs }
  }

  status(): WorkerDetail {
    return { idleMs: this.idleMs, scans: this.scans, aborted: this.aborted, chunksQueued: this.chunksQueued, lastScanMs: this.lastScanMs }
  }
}

// A storage node process, assembled: the block store over its directory, the HTTP
// server, the background workers (scrub, compaction, heartbeat) and the link to
// the control plane. Configuration is parsed once into a frozen object (STYLE.md
// item 8); everything here is started by `start` and undone by `stop`.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdir, readFile, statfs, unlink } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { BlobfsError } from '../errors.ts'
import {
  blockSizeBytesDefault,
  blockSizeBytesMax,
  blockSizeBytesMin,
  compactionDeadRatioDefault,
  compactionRateBytesPerSecDefault,
  heartbeatIntervalMsDefault,
  nodeBodyPoolBuffersMax,
  recordAlignmentBytes,
  scrubPassDaysDefault,
  scrubRateBytesPerSecMaxDefault,
  snapshotIntervalBytesDefault,
  snapshotIntervalRecordsDefault,
} from '../limits.ts'
import type { Logger } from '../log.ts'
import { WorkerRunner, type Worker, type WorkerStatus } from '../worker.ts'
import { BlockStore, type RecoveryReport, type SyncMode } from './block-store.ts'
import { Compactor } from './compactor.ts'
import type { NodeControlPlane, NodeHeartbeat, NodeRegistration } from './control-plane.ts'
import { writeFileAtomic } from './files.ts'
import { Heartbeat } from './heartbeat.ts'
import { BufferPool } from './buffer-pool.ts'
import { bodyBufferBytes, createNodeServer } from './http-server.ts'
import { NodeMetrics } from './metrics.ts'
import { Scrubber } from './scrubber.ts'

export interface NodeConfig {
  dataDir: string
  listenHost: string
  /** 0 picks a free port (tests); the chosen one is in `StorageNode.url`. */
  listenPort: number
  /** The base URL others reach this node at; default http://listenHost:port. */
  advertiseUrl: string | null
  rack: string
  sync: SyncMode
  blockSizeBytes: number
  snapshotIntervalRecords: number
  snapshotIntervalBytes: number
  compactionDeadRatio: number
  compactionRateBytesPerSec: number
  scrubRateBytesPerSecMax: number
  scrubPassMs: number
  heartbeatIntervalMs: number
}

const dayMs = 24 * 3600 * 1000

/** Free space, in block sizes, needed before a full node takes writes again. */
export const readOnlyExitFreeBlocks = 2

export function nodeConfig(input: Partial<NodeConfig> & { dataDir: string }): Readonly<NodeConfig> {
  const config: NodeConfig = {
    dataDir: input.dataDir,
    listenHost: '127.0.0.1',
    listenPort: 0,
    advertiseUrl: null,
    rack: 'default',
    sync: 'fdatasync',
    blockSizeBytes: blockSizeBytesDefault,
    snapshotIntervalRecords: snapshotIntervalRecordsDefault,
    snapshotIntervalBytes: snapshotIntervalBytesDefault,
    compactionDeadRatio: compactionDeadRatioDefault,
    compactionRateBytesPerSec: compactionRateBytesPerSecDefault,
    scrubRateBytesPerSecMax: scrubRateBytesPerSecMaxDefault,
    scrubPassMs: scrubPassDaysDefault * dayMs,
    heartbeatIntervalMs: heartbeatIntervalMsDefault,
    ...Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)),
  }
  const invalid = (what: string): never => {
    throw new BlobfsError('InvalidArgument', what)
  }
  if (config.dataDir === '') invalid('--data is required')
  if (!Number.isInteger(config.listenPort) || config.listenPort < 0 || config.listenPort > 65535) invalid(`port ${config.listenPort} is out of range`)
  if (config.rack.trim() === '') invalid('--rack must not be empty')
  if (config.sync !== 'fdatasync' && config.sync !== 'none') invalid(`--sync must be fdatasync or none, not ${String(config.sync)}`)
  if (config.blockSizeBytes < blockSizeBytesMin || config.blockSizeBytes > blockSizeBytesMax || config.blockSizeBytes % recordAlignmentBytes !== 0) {
    invalid(`--block-size must be a multiple of ${recordAlignmentBytes} between ${blockSizeBytesMin} and ${blockSizeBytesMax}`)
  }
  if (!(config.compactionDeadRatio > 0 && config.compactionDeadRatio <= 1)) invalid('--compaction-dead-ratio must be in (0, 1]')
  for (const key of ['snapshotIntervalRecords', 'snapshotIntervalBytes', 'compactionRateBytesPerSec', 'scrubRateBytesPerSecMax', 'scrubPassMs', 'heartbeatIntervalMs'] as const) {
    if (!(config[key] > 0)) invalid(`${key} must be positive`)
  }
  return Object.freeze(config)
}

interface Identity {
  nodeId: string
  createdMs: number
}

export interface StartOptions {
  controlPlane: NodeControlPlane
  log: Logger
  /** The block log failed (EIO on write or fdatasync): the process should exit and restart. */
  onFatal?(error: Error): void
}

export class StorageNode {
  readonly metrics: NodeMetrics
  readonly scrubber: Scrubber
  readonly compactor: Compactor
  readonly runners: WorkerRunner[]
  private readonly adopted: WorkerRunner[] = []
  private readonly heartbeat: Heartbeat
  url = ''
  private readonly corruptQueue = new Set<string>()
  private readOnlyReported: boolean | null = null
  private flushing: Promise<void> | null = null
  private server: ReturnType<typeof createNodeServer> | null = null
  /** PUT body buffers, reused across requests (buffer-pool.ts). */
  private readonly bodies = new BufferPool(bodyBufferBytes, nodeBodyPoolBuffersMax)
  private stopped = false

  private constructor(
    readonly config: Readonly<NodeConfig>,
    readonly identity: Identity,
    readonly store: BlockStore,
    readonly recovery: RecoveryReport,
    private readonly options: StartOptions,
    metrics: NodeMetrics,
  ) {
    this.metrics = metrics
    this.scrubber = new Scrubber(store, { passMs: config.scrubPassMs, rateBytesPerSecMax: config.scrubRateBytesPerSecMax, onCorrupt: (ids) => this.reportCorrupt(ids) })
    this.compactor = new Compactor(store, { deadRatioMin: config.compactionDeadRatio, rateBytesPerSecMax: config.compactionRateBytesPerSec })
    const heartbeat = new Heartbeat({
      controlPlane: options.controlPlane,
      intervalMs: config.heartbeatIntervalMs,
      registration: () => this.registration(),
      beat: () => this.beat(),
      flush: () => this.flush(),
    })
    this.heartbeat = heartbeat
    this.runners = [this.scrubber, this.compactor, heartbeat].map((w) => new WorkerRunner(w, options.log.child({ worker: w.name })))
  }

  get nodeId(): string {
    return this.identity.nodeId
  }

  static async start(config: Readonly<NodeConfig>, options: StartOptions): Promise<StorageNode> {
    const log = options.log
    await mkdir(config.dataDir, { recursive: true })
    await takeLock(config.dataDir, log)
    try {
      const identity = await loadIdentity(config.dataDir)
      if (config.sync === 'none') log.warn('--sync none: appends are acknowledged before they are durable; for benchmarks only')
      let node: StorageNode | null = null
      const holder: { metrics?: NodeMetrics } = {}
      const { store, recovery } = await BlockStore.open({
        dir: config.dataDir,
        blockSizeBytes: config.blockSizeBytes,
        sync: config.sync,
        log: log.child({ part: 'store' }),
        snapshotIntervalRecords: config.snapshotIntervalRecords,
        snapshotIntervalBytes: config.snapshotIntervalBytes,
        observer: {
          fsync: (s) => holder.metrics?.fsyncSeconds.observe(s),
          groupCommit: (records, bytes) => {
            holder.metrics?.groupCommitRecords.observe(records)
            holder.metrics?.appendedRecords.inc(records)
            holder.metrics?.appendedBytes.inc(bytes)
          },
          snapshot: (s) => holder.metrics?.snapshotSeconds.observe(s),
          corrupt: (ids) => node?.reportCorrupt(ids),
          readOnly: () => void node?.flush().catch(() => {}),
          fatal: (error) => options.onFatal?.(error),
        },
      })
      const metrics = new NodeMetrics({ store: () => store.stats(), workers: () => node?.workerStatus() ?? [] })
      holder.metrics = metrics
      node = new StorageNode(config, identity, store, recovery, options, metrics)
      try {
        await node.listen()
      } catch (error) {
        await store.close()
        throw error
      }
      // Register before serving background work; if the control plane is down the
      // heartbeat keeps trying.
      await node.heartbeat.register().catch((error: unknown) => log.warn({ err: error }, 'registration failed; the heartbeat will retry'))
      for (const runner of node.runners) runner.start()
      log.info({ nodeId: identity.nodeId, url: node.url, rack: config.rack, startupMs: recovery.durationMs, chunks: recovery.chunks }, 'storage node listening')
      return node
    } catch (error) {
      await releaseLock(config.dataDir)
      throw error
    }
  }

  private async listen(): Promise<void> {
    const server = createNodeServer({
      store: this.store,
      metrics: this.metrics,
      log: this.options.log.child({ part: 'http' }),
      health: () => this.health(),
      bodies: this.bodies,
      scrubNow: () => {
        this.scrubber.startPassNow()
        this.runners.find((r) => r.worker === this.scrubber)?.wake()
      },
    })
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.config.listenPort, this.config.listenHost, () => {
        server.off('error', reject)
        resolve()
      })
    })
    const port = (server.address() as AddressInfo).port
    const wildcard = ['0.0.0.0', '::', ''].includes(this.config.listenHost)
    const host = wildcard ? hostname() : this.config.listenHost.includes(':') ? `[${this.config.listenHost}]` : this.config.listenHost
    this.url = this.config.advertiseUrl ?? `http://${host}:${port}`
  }

  /**
   * Runs one more background worker in this process (repair, detection: assembled
   * above src/node, which knows them only as Workers). It shows in /health and
   * /metrics like the node's own, and stops with the node.
   */
  addWorker(worker: Worker): WorkerRunner {
    assert.ok(!this.stopped, 'the node is stopped')
    const runner = new WorkerRunner(worker, this.options.log.child({ worker: worker.name }))
    this.runners.push(runner)
    runner.start()
    return runner
  }

  workerStatus(): WorkerStatus[] {
    return [...this.runners, ...this.adopted].map((r) => r.status())
  }

  /**
   * Runs a worker assembled above this layer (chunk GC, repair: wired by the CLI)
   * in this node's process: started now, shown in /health and /metrics, and
   * stopped by stop() before the HTTP server closes, since such workers may call
   * this node's own chunk API.
   */
  adopt(worker: Worker): WorkerRunner {
    assert.ok(!this.stopped, 'a stopped node adopts no worker')
    const runner = new WorkerRunner(worker, this.options.log.child({ worker: worker.name }))
    this.adopted.push(runner)
    runner.start()
    return runner
  }

  health(): Record<string, unknown> {
    const stats = this.store.stats()
    return {
      status: stats.readOnly ? 'read-only' : 'ok',
      nodeId: this.nodeId,
      url: this.url,
      rack: this.config.rack,
      sync: this.config.sync,
      ...stats,
      startupMs: this.recovery.durationMs,
      bodyBuffers: this.bodies.stats(),
      workers: this.workerStatus(),
    }
  }

  /** Queues corrupt chunk ids for the control plane and tries to deliver now. */
  reportCorrupt(ids: string[]): void {
    this.metrics.corruptChunks.inc(ids.length)
    for (const id of ids) this.corruptQueue.add(id)
    this.options.log.warn({ chunkIds: ids }, 'corrupt chunks reported for repair')
    this.flush().catch(() => {}) // the heartbeat retries
  }

  /** Delivers queued reports and the read-only flag; one delivery at a time. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing.catch(() => {})
    const run = (async () => {
      if (this.corruptQueue.size > 0) {
        const ids = [...this.corruptQueue]
        await this.options.controlPlane.reportCorrupt(this.nodeId, ids)
        for (const id of ids) this.corruptQueue.delete(id)
      }
      const readOnly = this.store.readOnly
      if (this.readOnlyReported !== readOnly) {
        await this.options.controlPlane.setReadOnly(this.nodeId, readOnly)
        this.readOnlyReported = readOnly
      }
    })()
    this.flushing = run
    try {
      await run
    } finally {
      if (this.flushing === run) this.flushing = null
    }
  }

  private async space(): Promise<{ capacityBytes: number; freeBytes: number }> {
    const fs = await statfs(this.config.dataDir)
    return { capacityBytes: fs.blocks * fs.bsize, freeBytes: fs.bavail * fs.bsize }
  }

  private async registration(): Promise<NodeRegistration> {
    const { capacityBytes } = await this.space()
    const stats = this.store.stats()
    return { nodeId: this.nodeId, address: this.url, rack: this.config.rack, capacityBytes, usedBytes: stats.blockFileBytes, readOnly: stats.readOnly }
  }

  private async beat(): Promise<NodeHeartbeat> {
    const { capacityBytes, freeBytes } = await this.space()
    if (this.store.stats().readOnlyReason === 'disk full' && freeBytes >= readOnlyExitFreeBlocks * this.config.blockSizeBytes) {
      await this.store.clearReadOnly()
      await this.flush()
    }
    const stats = this.store.stats()
    const scrub = this.scrubber.status()
    return {
      nodeId: this.nodeId,
      capacityBytes,
      usedBytes: stats.blockFileBytes,
      freeBytes,
      chunks: stats.chunks,
      readOnly: stats.readOnly,
      scrub: {
        passes: Number(scrub.passes),
        progressRatio: Number(scrub.progressRatio),
        lastPassCompletedMs: scrub.lastPassCompletedMs === null ? null : Number(scrub.lastPassCompletedMs),
        corruptChunksLastPass: Number(scrub.corruptLastPass),
      },
    }
  }

  /** Stops taking requests, stops the workers, writes a final snapshot, releases the directory. */
  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    await Promise.all(this.adopted.map((r) => r.stop()))
    const server = this.server
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeIdleConnections()
      await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 2_000).unref())])
      server.closeAllConnections()
      await closed
    }
    await Promise.all(this.runners.map((r) => r.stop()))
    await this.store.close()
    await releaseLock(this.config.dataDir)
    this.options.log.info({ nodeId: this.nodeId }, 'storage node stopped')
  }
}

const identityFileName = 'node.json'
const lockFileName = 'LOCK'

async function loadIdentity(dir: string): Promise<Identity> {
  const path = join(dir, identityFileName)
  try {
    const identity = JSON.parse(await readFile(path, 'utf8')) as Identity
    assert.match(identity.nodeId, /^[0-9a-f-]{36}$/, `${path} holds a node id`)
    return identity
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  const identity: Identity = { nodeId: randomUUID(), createdMs: Date.now() }
  await writeFileAtomic(dir, path, Buffer.from(JSON.stringify(identity) + '\n'))
  return identity
}

/**
 * One process per directory. The lock names the holder's pid; a lock left by a
 * process that is gone (kill -9) is taken over.
 */
async function takeLock(dir: string, log: Logger): Promise<void> {
  const path = join(dir, lockFileName)
  try {
    const pid = Number((await readFile(path, 'utf8')).trim())
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
      throw new BlobfsError('InvalidArgument', `${dir} is in use by process ${pid}`)
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  try {
    await writeFileAtomic(dir, path, Buffer.from(`${process.pid}\n`))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error
    // A full disk must not keep stored chunks from being served.
    log.warn({ dir }, 'disk full: cannot write the LOCK file; starting without it')
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function releaseLock(dir: string): Promise<void> {
  await unlink(join(dir, lockFileName)).catch(() => {})
}

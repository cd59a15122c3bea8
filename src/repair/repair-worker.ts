// The repair worker every storage node runs (DESIGN.md, "Durability: repair and
// GC"): repair is decentralized, so rebuild capacity grows with the cluster.
//
// One task is one stripe. The worker claims it under a lease (extended while it
// works; if this process dies the lease runs out and another worker takes the
// task), reads the stripe's chunk rows, and decides which chunks must be rebuilt:
// rows that are missing, chunks on nodes DOWN past the repair grace or gone from
// the registry, chunks on DRAINING nodes (moved away), and chunks that fail their
// checksum or are not found when read. It then reads only what it needs — k
// surviving chunks; every surviving chunk when the task came from a read or the
// scrubber, because the report does not say which chunk was bad — decodes the lost
// chunks, checks each against the checksum root the catalog holds for it, writes
// them to nodes that hold no other chunk of the stripe under the rack cap, and
// swaps the rows in one transaction that applies only if no other repair changed
// them meanwhile and no new chunk lands on a node that keeps another chunk of the
// stripe (the catalog refuses that; the task is retried with a fresh placement).
// The chunks replaced are queued for deletion. Bytes read and
// written are paced to a per-node rate, and at most `concurrency` stripes are
// repaired at once.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ReplaceResult, StripeState } from '../catalog/chunks.ts'
import type { RepairTask } from '../catalog/queues.ts'
import type { ChunkRecord } from '../catalog/types.ts'
import type { ChunkStore, NodeId } from '../cluster/chunk-store.ts'
import type { NodeView } from '../cluster/membership.ts'
import { ReplacementPlacement, type NodeCandidate } from '../cluster/placement.ts'
import { checksumTree } from '../codec/checksum.ts'
import { BlobfsError, isBlobfsError } from '../errors.ts'
import {
  downTimeoutMsDefault,
  queueLeaseMsMax,
  repairConcurrencyDefault,
  repairConcurrencyMax,
  repairGraceMsDefault,
  repairIdleMsDefault,
  repairLeaseMsDefault,
  repairLeaseMsMin,
  repairRateBytesPerSecDefault,
  repairRetryMsMax,
  repairRetryMsMin,
} from '../limits.ts'
import type { Logger } from '../log.ts'
import { stripeCodec, type StripeCodec } from '../objects/stripe-io.ts'
import { Throttle, type StepResult, type Worker, type WorkerDetail } from '../worker.ts'
import type { RepairMetrics, TaskResult } from './metrics.ts'

export interface RepairConfig {
  leaseMs: number
  /** Stripes repaired at once by this worker. */
  concurrency: number
  /** Bytes read plus bytes written per second, all tasks together. */
  rateBytesPerSec: number
  /** As the failure detector's: a node DOWN past downTimeout + grace has lost its chunks. */
  downTimeoutMs: number
  repairGraceMs: number
  idleMs: number
  getTimeoutMs: number
  putTimeoutMs: number
  retryMsMin: number
  retryMsMax: number
}

export function repairConfig(overrides: Partial<RepairConfig> = {}): Readonly<RepairConfig> {
  const config: RepairConfig = {
    leaseMs: repairLeaseMsDefault,
    concurrency: repairConcurrencyDefault,
    rateBytesPerSec: repairRateBytesPerSecDefault,
    downTimeoutMs: downTimeoutMsDefault,
    repairGraceMs: repairGraceMsDefault,
    idleMs: repairIdleMsDefault,
    getTimeoutMs: 30_000,
    putTimeoutMs: 30_000,
    retryMsMin: repairRetryMsMin,
    retryMsMax: repairRetryMsMax,
    ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)),
  }
  const invalid = (what: string): never => {
    throw new BlobfsError('InvalidArgument', what)
  }
  if (!(config.leaseMs >= repairLeaseMsMin && config.leaseMs <= queueLeaseMsMax)) invalid(`the repair lease must be between ${repairLeaseMsMin} ms and ${queueLeaseMsMax} ms`)
  if (!(Number.isInteger(config.concurrency) && config.concurrency >= 0 && config.concurrency <= repairConcurrencyMax)) {
    invalid(`repair concurrency must be an integer from 0 (no repair on this node) to ${repairConcurrencyMax}`)
  }
  if (!(config.rateBytesPerSec > 0)) invalid('the repair rate must be positive')
  if (!(config.downTimeoutMs > 0)) invalid('the down-timeout must be positive')
  if (!(config.repairGraceMs >= 0)) invalid('the repair grace must not be negative')
  for (const key of ['idleMs', 'getTimeoutMs', 'putTimeoutMs', 'retryMsMin', 'retryMsMax'] as const) if (!(config[key] > 0)) invalid(`${key} must be positive`)
  if (config.retryMsMin > config.retryMsMax) invalid('retryMsMin must not exceed retryMsMax')
  return Object.freeze(config)
}

/** The slice of the catalog repair uses (Catalog.repairs and Catalog.chunks fit). */
export interface RepairCatalog {
  repairs: {
    claim(options: { owner: string; leaseMs: number; limit: number }): Promise<RepairTask[]>
    extend(task: RepairTask, leaseMs: number): Promise<boolean>
    complete(task: RepairTask): Promise<'done' | 'requeued' | 'lost'>
    release(task: RepairTask, options: { retryAfterMs: number; error: string }): Promise<boolean>
  }
  chunks: {
    stripe(key: RepairTask): Promise<StripeState | null>
    replace(
      key: RepairTask,
      chunks: readonly ChunkRecord[],
      options?: { ifChunkIds?: ReadonlyMap<number, string | null> },
    ): Promise<ReplaceResult>
  }
}

export interface RepairWorkerOptions {
  catalog: RepairCatalog
  store: ChunkStore
  /** Every registered node as last seen (Membership.all). */
  nodes(): readonly NodeView[]
  /** Nodes that take new chunks (Membership.candidates). */
  candidates(): readonly NodeCandidate[]
  /** Reloads the node view (a chunk names a node it does not know yet). */
  refreshNodes?(): Promise<void>
  /** Who holds the leases, e.g. "<node id>/<pid>" (shown in the queue). */
  owner: string
  config: Readonly<RepairConfig>
  log: Logger
  metrics?: RepairMetrics
}

/** What a node's state means for the chunks on it. */
type Standing = 'healthy' | 'draining' | 'suspect' | 'lost'

export function standingOf(view: NodeView | undefined, config: Pick<RepairConfig, 'downTimeoutMs' | 'repairGraceMs'>): Standing {
  if (!view) return 'lost'
  if (view.state === 'DOWN') return view.heartbeatAgeMs >= config.downTimeoutMs + config.repairGraceMs ? 'lost' : 'suspect'
  if (view.state === 'DRAINING') return 'draining'
  if (view.heartbeatAgeMs >= config.downTimeoutMs) return 'suspect' // silent, not marked yet
  return 'healthy'
}

interface Outcome {
  result: Exclude<TaskResult, 'failed' | 'lost'>
  chunksRebuilt: number
  /** Chunks that had to be rebuilt but found no node: the task is tried again later. */
  unplaced: number
  /** Why the task must be tried again later although nothing failed (the swap was refused). */
  retry?: string
}

/** A task given up because its lease was lost (extension refused): not an error of the stripe. */
class LeaseLost extends Error {}

export class RepairWorker implements Worker {
  readonly name = 'repair'
  private readonly throttle: Throttle
  private readonly codecs = new Map<string, StripeCodec>()
  private inFlight = 0
  private readonly counts: Record<TaskResult, number> = { repaired: 0, partial: 0, healthy: 0, gone: 0, conflict: 0, failed: 0, lost: 0 }
  private chunksRebuilt = 0
  private bytesRebuilt = 0
  private bytesRead = 0
  private lastTaskAtMs: number | null = null

  constructor(private readonly options: RepairWorkerOptions) {
    this.throttle = new Throttle(options.config.rateBytesPerSec)
  }

  async step(signal: AbortSignal): Promise<StepResult> {
    const { config, catalog } = this.options
    if (config.concurrency === 0) return { state: 'idle', delayMs: 60_000 }
    const claimed = await catalog.repairs.claim({ owner: this.options.owner, leaseMs: config.leaseMs, limit: config.concurrency })
    if (claimed.length === 0) return { state: 'idle', delayMs: config.idleMs }
    // Never more than `concurrency` at once, whatever the queue handed out: a worker holding many
    // tasks repairs them all at its one node's rate while its peers idle, and rebuild time stops
    // falling as nodes are added. Extra tasks go straight back, claimable by any worker.
    const tasks = claimed.slice(0, config.concurrency)
    if (claimed.length > tasks.length) {
      this.options.log.warn({ asked: config.concurrency, got: claimed.length }, 'the repair queue handed out more tasks than asked for; releasing the rest')
      await Promise.all(claimed.slice(tasks.length).map((task) => catalog.repairs.release(task, { retryAfterMs: 0, error: 'claimed past the worker\'s concurrency; released' }).catch(() => false)))
    }
    // Judge nodes on a view at least as new as the tasks: a view from before a node's grace ran out
    // would call its chunks healthy and drop the very tasks queued for them.
    await this.options.refreshNodes?.().catch((error: unknown) => this.options.log.warn({ err: error }, 'could not reload the node registry; using the last view'))
    await Promise.all(tasks.map((task) => this.run(task, signal)))
    return { state: 'busy' }
  }

  /** Repairs one claimed task and settles it in the queue; never throws. */
  async run(task: RepairTask, workerSignal: AbortSignal): Promise<TaskResult> {
    const { catalog, config, log } = this.options
    const started = performance.now()
    const taskAbort = new AbortController()
    const signal = AbortSignal.any([workerSignal, taskAbort.signal])
    let leaseLost = false
    const keepAlive = setInterval(() => {
      catalog.repairs.extend(task, config.leaseMs).then(
        (held) => {
          if (!held && !leaseLost) {
            leaseLost = true
            taskAbort.abort(new LeaseLost('the lease ran out and another worker holds the task'))
          }
        },
        (error: unknown) => log.warn({ err: error, task: keyOf(task) }, 'could not extend a repair lease'),
      )
    }, Math.max(100, Math.floor(config.leaseMs / 3)))
    this.inFlight++
    let result: TaskResult
    try {
      const outcome = await this.repairStripe(task, signal)
      if (outcome.retry !== undefined) {
        result = outcome.result
        await catalog.repairs.release(task, { retryAfterMs: this.retryMs(task), error: outcome.retry })
        log.warn({ task: keyOf(task), attempts: task.attempts }, outcome.retry)
      } else if (outcome.unplaced > 0) {
        result = outcome.result
        await catalog.repairs.release(task, { retryAfterMs: this.retryMs(task), error: `${outcome.unplaced} chunks found no node that keeps the rack rule; waiting for nodes` })
        log.warn({ task: keyOf(task), rebuilt: outcome.chunksRebuilt, unplaced: outcome.unplaced }, 'stripe only partly repaired: too few nodes to place every chunk')
      } else {
        const settled = await catalog.repairs.complete(task)
        result = settled === 'lost' ? 'lost' : outcome.result
      }
    } catch (error) {
      if (leaseLost || error instanceof LeaseLost) {
        result = 'lost'
        log.warn({ task: keyOf(task) }, 'repair lease lost mid-task; another worker repairs the stripe')
      } else if (workerSignal.aborted) {
        result = 'failed'
        await catalog.repairs.release(task, { retryAfterMs: 0, error: 'the worker stopped' }).catch(() => {})
      } else {
        result = 'failed'
        const retryAfterMs = this.retryMs(task)
        const level = isBlobfsError(error, 'TooManyErasures') ? 'error' : 'warn'
        log[level]({ err: error, task: keyOf(task), attempts: task.attempts, retryAfterMs }, 'stripe repair failed; it will be tried again')
        await catalog.repairs.release(task, { retryAfterMs, error: (error as Error).message ?? String(error) }).catch((e: unknown) => {
          log.warn({ err: e, task: keyOf(task) }, 'could not release a failed repair task; its lease will run out')
        })
      }
    } finally {
      clearInterval(keepAlive)
      this.inFlight--
    }
    this.counts[result]++
    this.lastTaskAtMs = Date.now()
    this.options.metrics?.tasks.inc({ result })
    this.options.metrics?.taskSeconds.observe((performance.now() - started) / 1000)
    return result
  }

  private retryMs(task: RepairTask): number {
    const { retryMsMin, retryMsMax } = this.options.config
    return Math.min(retryMsMax, retryMsMin * 2 ** Math.min(20, Math.max(0, task.attempts - 1)))
  }

  private codec(k: number, m: number): StripeCodec {
    const key = `${k}+${m}`
    let codec = this.codecs.get(key)
    if (!codec) {
      codec = stripeCodec(k, m)
      this.codecs.set(key, codec)
    }
    return codec
  }

  private async pace(bytes: number, signal: AbortSignal): Promise<void> {
    const delayMs = this.throttle.delayFor(bytes)
    if (delayMs >= 1) await sleep(delayMs, undefined, { signal })
  }

  private async standings(chunks: readonly ChunkRecord[]): Promise<Map<NodeId, { standing: Standing; view: NodeView | undefined }>> {
    const lookup = () => new Map(this.options.nodes().map((v) => [v.id, v]))
    let views = lookup()
    if (chunks.some((c) => !views.has(c.nodeId)) && this.options.refreshNodes) {
      await this.options.refreshNodes() // a node registered after the last refresh is not lost
      views = lookup()
    }
    const out = new Map<NodeId, { standing: Standing; view: NodeView | undefined }>()
    for (const chunk of chunks) {
      const view = views.get(chunk.nodeId)
      out.set(chunk.nodeId, { standing: standingOf(view, this.options.config), view })
    }
    return out
  }

  /** Rebuilds what the stripe lacks. Throws when it cannot (the task is retried). */
  private async repairStripe(task: RepairTask, signal: AbortSignal): Promise<Outcome> {
    const { catalog, store, config, log } = this.options
    const state = await catalog.chunks.stripe(task)
    if (state === null) return { result: 'gone', chunksRebuilt: 0, unplaced: 0 }
    const k = state.dataShards
    const m = state.parityShards
    const total = k + m
    const shardSize = state.shardSizeBytes
    const byIndex = new Map(state.chunks.map((c) => [c.chunkIndex, c]))
    const nodes = await this.standings(state.chunks)
    const standing = (chunk: ChunkRecord) => nodes.get(chunk.nodeId)!.standing

    const rebuild = new Set<number>()
    const holders = new Set<NodeId>()
    for (let i = 0; i < total; i++) {
      const chunk = byIndex.get(i)
      if (!chunk || standing(chunk) === 'lost' || standing(chunk) === 'draining') rebuild.add(i)
      else if (holders.has(chunk.nodeId)) rebuild.add(i) // two chunks on one node: one node's loss would cost two; move one
      else holders.add(chunk.nodeId)
    }
    // Sources, best first: healthy data chunks (a plain copy of the object's bytes), healthy parity, then
    // chunks being drained, then chunks on silent nodes (they may still answer).
    const rank: Record<Standing, number> = { healthy: 0, draining: 1, suspect: 2, lost: 3 }
    const candidates = state.chunks.filter((c) => standing(c) !== 'lost').sort((a, b) => rank[standing(a)] - rank[standing(b)] || a.chunkIndex - b.chunkIndex)
    const good = new Map<number, Buffer>()
    let next = 0
    const read = async (chunk: ChunkRecord): Promise<void> => {
      await this.pace(chunk.lengthBytes, signal)
      try {
        const bytes = await store.get(chunk.nodeId, chunk.chunkId, undefined, withTimeout(signal, config.getTimeoutMs))
        this.bytesRead += bytes.length
        this.options.metrics?.bytesRead.inc(bytes.length)
        if (bytes.length !== shardSize) {
          log.error({ task: keyOf(task), chunkId: chunk.chunkId, lengthBytes: bytes.length, shardSize }, 'a chunk has the wrong length for its stripe; rebuilding it')
          rebuild.add(chunk.chunkIndex)
          return
        }
        good.set(chunk.chunkIndex, bytes)
      } catch (error) {
        if (signal.aborted) throw signal.reason ?? error
        if (isBlobfsError(error, 'ChunkCorrupt') || isBlobfsError(error, 'ChunkNotFound')) {
          log.warn({ task: keyOf(task), chunkId: chunk.chunkId, nodeId: chunk.nodeId, code: (error as BlobfsError).code }, 'chunk is bad; rebuilding it')
          rebuild.add(chunk.chunkIndex)
        }
        // Anything else (node unreachable, timeout): not a source this time, not rebuilt either.
      }
    }
    const verifyAll = task.reason === 'CORRUPT' || task.reason === 'MISSING'
    // A node that came back (or a task queued twice): nothing is lost, nothing to read.
    if (!verifyAll && rebuild.size === 0) return { result: 'healthy', chunksRebuilt: 0, unplaced: 0 }
    if (verifyAll) {
      // The report names no chunk: read every one that can answer, to find the bad ones.
      await Promise.all(candidates.map(read))
    } else {
      while (good.size < k && next < candidates.length) {
        const batch = candidates.slice(next, next + (k - good.size))
        next += batch.length
        await Promise.all(batch.map(read))
      }
      // A read that turned up a bad chunk wants it rebuilt: enough sources are still k.
    }
    if (rebuild.size === 0) return { result: 'healthy', chunksRebuilt: 0, unplaced: 0 }
    // A chunk being drained that was read whole moves as it is; everything else to rebuild is decoded.
    const decode = [...rebuild].filter((i) => !good.has(i))
    if (decode.length > 0 && good.size < k) {
      throw new BlobfsError('TooManyErasures', `stripe ${keyOf(task)}: only ${good.size} of the ${k} chunks needed could be read (${rebuild.size} to rebuild)`)
    }
    if (decode.length > 0) {
      const shards: Buffer[] = []
      for (let i = 0; i < total; i++) shards.push(good.get(i) ?? Buffer.alloc(shardSize))
      const present = shards.map((_, i) => good.has(i))
      const wanted = shards.map((_, i) => decode.includes(i))
      await this.codec(k, m).reconstruct(shards, present, wanted)
      for (const i of decode) good.set(i, shards[i]!)
    }
    const rebuilt = [...rebuild].sort((a, b) => a - b).map((index) => {
      const bytes = good.get(index)!
      const tree = checksumTree(bytes)
      const row = byIndex.get(index)
      // The pair of the check made when the chunk was first written: a rebuilt chunk must be the
      // very bytes the catalog recorded, or nothing is written.
      if (row && row.root !== tree.root) {
        throw new BlobfsError('Internal', `stripe ${keyOf(task)}: rebuilt chunk ${index} does not match its catalog checksum (${row.root} != ${tree.root})`)
      }
      return { index, bytes, tree }
    })

    // Place and write.
    const kept = state.chunks.filter((c) => !rebuild.has(c.chunkIndex)).map((c) => ({ id: c.nodeId, rack: nodes.get(c.nodeId)!.view?.rack ?? `unknown:${c.nodeId}` }))
    // The old node of a chunk being rebuilt may take that chunk back, never another one (see ReplacementPlacement).
    const reserved = new Map<string, number>()
    for (const c of state.chunks.filter((c) => rebuild.has(c.chunkIndex))) reserved.set(c.nodeId, reserved.has(c.nodeId) ? NaN : c.chunkIndex)
    const placement = new ReplacementPlacement(keyOf(task), this.options.candidates(), kept, total, m, reserved)
    const written: ChunkRecord[] = []
    await Promise.all(
      rebuilt.map(async ({ index, bytes, tree }) => {
        const chunkId = randomUUID()
        for (let node = placement.next(index); node; node = placement.next(index)) {
          await this.pace(bytes.length, signal)
          try {
            await store.put(node.id, chunkId, bytes, tree, withTimeout(signal, config.putTimeoutMs))
            written.push({ chunkIndex: index, chunkId, nodeId: node.id, lengthBytes: bytes.length, root: tree.root })
            return
          } catch (error) {
            if (signal.aborted) throw signal.reason ?? error
            placement.failed(node)
            log.warn({ err: error, task: keyOf(task), nodeId: node.id }, 'writing a rebuilt chunk failed; trying another node')
          }
        }
      }),
    ).catch(async (error: unknown) => {
      await deleteQuietly(store, written)
      throw error
    })
    const unplaced = rebuilt.length - written.length
    if (written.length === 0) {
      throw new BlobfsError('NotEnoughNodes', `stripe ${keyOf(task)}: no node that keeps the rack rule took any of ${rebuilt.length} rebuilt chunks`)
    }

    // Swap the rows, only over what was planned on, and only while the lease is ours.
    if (!(await catalog.repairs.extend(task, config.leaseMs))) {
      await deleteQuietly(store, written)
      throw new LeaseLost('the lease ran out before the rows were swapped')
    }
    // Planned on the whole stripe as read (placement excluded the nodes of every kept chunk), so the
    // swap applies only if no row of the stripe changed meanwhile — not just the rows replaced.
    const expected = new Map(Array.from({ length: total }, (_, i) => [i, byIndex.get(i)?.chunkId ?? null] as const))
    const swapped = await catalog.chunks.replace(task, written, { ifChunkIds: expected })
    if (!swapped.applied) {
      // The new chunks are queued for deletion by the catalog. A stripe changed meanwhile was
      // repaired by someone else: the task is done. A node that would have held two chunks of the
      // stripe (not expected — placement skips every kept chunk's node and reserves a rebuilt
      // chunk's old node for it — so a defence in depth against a writer on a stale view): nothing
      // is recorded and the task is tried again, with the usual backoff, on a fresh read and placement.
      if (swapped.conflict === 'node-taken') {
        return {
          result: 'conflict',
          chunksRebuilt: 0,
          unplaced: 0,
          retry: `the catalog refused the rebuilt chunks: a target node keeps another chunk of the stripe (placed on ${written.map((c) => `${c.chunkIndex}@${c.nodeId}`).join(', ')}); retrying with a fresh placement`,
        }
      }
      return { result: swapped.conflict === 'changed' ? 'conflict' : 'gone', chunksRebuilt: 0, unplaced: 0 }
    }
    for (const chunk of written) {
      this.chunksRebuilt++
      this.bytesRebuilt += chunk.lengthBytes
      this.options.metrics?.chunksRebuilt.inc()
      this.options.metrics?.bytesRebuilt.inc(chunk.lengthBytes)
    }
    log.debug({ task: keyOf(task), reason: task.reason, rebuilt: written.map((c) => [c.chunkIndex, c.nodeId]) }, 'stripe repaired')
    assert.ok(written.length + unplaced === rebuild.size)
    return { result: unplaced > 0 ? 'partial' : 'repaired', chunksRebuilt: written.length, unplaced }
  }

  status(): WorkerDetail {
    return {
      inFlight: this.inFlight,
      concurrency: this.options.config.concurrency,
      rateBytesPerSec: this.options.config.rateBytesPerSec,
      tasksRepaired: this.counts.repaired,
      tasksPartial: this.counts.partial,
      tasksHealthy: this.counts.healthy,
      tasksGone: this.counts.gone,
      tasksConflict: this.counts.conflict,
      tasksFailed: this.counts.failed,
      tasksLost: this.counts.lost,
      chunksRebuilt: this.chunksRebuilt,
      bytesRebuilt: this.bytesRebuilt,
      bytesRead: this.bytesRead,
      lastTaskAtMs: this.lastTaskAtMs,
    }
  }

  /** Stripes being repaired now (for metrics). */
  get tasksInFlight(): number {
    return this.inFlight
  }
}

function keyOf(task: { objectId: string; partNumber: number; stripeIndex: number }): string {
  return `${task.objectId}/${task.partNumber}/${task.stripeIndex}`
}

function withTimeout(signal: AbortSignal, timeoutMs: number): AbortSignal {
  return AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
}

async function deleteQuietly(store: ChunkStore, chunks: readonly ChunkRecord[]): Promise<void> {
  // Best effort: what stays behind is referenced by nothing, and the GC sweep removes it.
  await Promise.allSettled(chunks.map((c) => store.delete(c.nodeId, c.chunkId)))
}

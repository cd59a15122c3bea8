// The cluster's view of its storage nodes, refreshed from the catalog's registry
// every few seconds: who is healthy and writable (placement candidates), and where
// every node listens (reads still go to a node that is read-only or draining).
// One refresh loop per process, shared by every request.
import type { NodeId } from './chunk-store.ts'
import type { NodeCandidate } from './placement.ts'
import { BlobfsError } from '../errors.ts'

export type NodeState = 'UP' | 'DOWN' | 'READONLY' | 'DRAINING'

export interface NodeView {
  id: NodeId
  address: string
  rack: string
  state: NodeState
  capacityBytes: number
  usedBytes: number
  /** Age of the node's last heartbeat when the view was loaded. */
  heartbeatAgeMs: number
}

export interface MembershipOptions {
  load: () => Promise<NodeView[]>
  refreshIntervalMs: number
  /** A node whose heartbeat is older is not offered for placement, even before it is marked DOWN (but see placementNodesWanted). */
  heartbeatStaleMs: number
  /**
   * Nodes a stripe needs (k+m). When fewer UP nodes than this have a fresh
   * heartbeat, the UP nodes with older ones are offered too: see candidates().
   * Unset: never (only fresh nodes are offered).
   */
  placementNodesWanted?: number
  onError?: (error: unknown) => void
}

export class Membership {
  private nodes = new Map<NodeId, NodeView>()
  private timer: NodeJS.Timeout | undefined
  private refreshing: Promise<void> | undefined

  constructor(private readonly options: MembershipOptions) {}

  async start(): Promise<void> {
    await this.refresh()
    this.timer = setInterval(() => {
      this.refresh().catch((error) => this.options.onError?.(error))
    }, this.options.refreshIntervalMs)
    this.timer.unref()
  }

  stop(): void {
    clearInterval(this.timer)
  }

  refresh(): Promise<void> {
    this.refreshing ??= this.options
      .load()
      .then((views) => {
        this.nodes = new Map(views.map((v) => [v.id, v]))
      })
      .finally(() => {
        this.refreshing = undefined
      })
    return this.refreshing
  }

  /**
   * Placement candidates: nodes that are UP with a recent heartbeat, weighted by
   * free space. When those are fewer than a stripe needs (placementNodesWanted),
   * every UP node: a catalog
   * that stalls (a long commit in the single-threaded embedded catalog, a loaded
   * machine) makes all heartbeats look old at once, and a node is only known to be
   * gone once the failure detector marks it DOWN. A write to a node that really is
   * gone fails over to an alternate; refusing the write would be worse.
   */
  candidates(): NodeCandidate[] {
    const up = [...this.nodes.values()].filter((node) => node.state === 'UP')
    const fresh = up.filter((node) => node.heartbeatAgeMs <= this.options.heartbeatStaleMs)
    const wanted = this.options.placementNodesWanted ?? 0
    return (fresh.length >= wanted ? fresh : up).map((node) => ({ id: node.id, rack: node.rack, freeBytes: Math.max(0, node.capacityBytes - node.usedBytes) }))
  }

  all(): NodeView[] {
    return [...this.nodes.values()]
  }

  get(id: NodeId): NodeView | undefined {
    return this.nodes.get(id)
  }

  /** Base URL of a node, for the HTTP chunk store. */
  address(id: NodeId): string {
    const node = this.nodes.get(id)
    if (!node) throw new BlobfsError('NodeUnavailable', `node ${id} is not in the registry`)
    return node.address
  }
}

// The catalog behind a storage node's NodeControlPlane: registration and heartbeats
// upsert its registry row, corrupt chunks become repair tasks, a full disk flips
// the node to READONLY (placement skips it) and back. Lives at the composition root
// so that src/node depends on nothing above it.
import type { Catalog } from '../catalog/catalog.ts'
import type { NodeControlPlane, NodeHeartbeat, NodeRegistration } from '../node/control-plane.ts'

export class CatalogControlPlane implements NodeControlPlane {
  private registration: NodeRegistration | undefined

  constructor(private readonly catalog: Catalog) {}

  async register(node: NodeRegistration): Promise<void> {
    this.registration = { ...node }
    await this.catalog.nodes.heartbeat({
      id: node.nodeId,
      address: node.address,
      rack: node.rack,
      capacityBytes: node.capacityBytes,
      usedBytes: node.usedBytes,
    })
    await this.setReadOnly(node.nodeId, node.readOnly)
  }

  async heartbeat(beat: NodeHeartbeat): Promise<void> {
    const registration = this.registration
    if (!registration) throw new Error('heartbeat before register')
    const row = await this.catalog.nodes.heartbeat({
      id: beat.nodeId,
      address: registration.address,
      rack: registration.rack,
      capacityBytes: beat.capacityBytes,
      usedBytes: beat.usedBytes,
    })
    // A node that filled up while the catalog was unreachable says so again here.
    if (beat.readOnly !== (row.state === 'READONLY') && (row.state === 'UP' || row.state === 'READONLY')) {
      await this.setReadOnly(beat.nodeId, beat.readOnly)
    }
  }

  async reportCorrupt(_nodeId: string, chunkIds: string[]): Promise<void> {
    await this.catalog.repairs.enqueueChunks(chunkIds, 'CORRUPT', `checksum failure reported by node ${_nodeId}`)
  }

  async setReadOnly(nodeId: string, readOnly: boolean): Promise<void> {
    const row = await this.catalog.nodes.get(nodeId)
    if (!row) return
    // DRAINING is an operator's decision; a disk that frees up does not undo it.
    if (readOnly && row.state === 'UP') await this.catalog.nodes.setState(nodeId, 'READONLY')
    if (!readOnly && row.state === 'READONLY') await this.catalog.nodes.setState(nodeId, 'UP')
  }
}

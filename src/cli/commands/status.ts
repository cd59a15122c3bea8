// `blobfs status`: the cluster at a glance — nodes by rack and state, capacity,
// objects, and the repair and deletion backlogs. --json for scripts.
import type { Argv, CommandModule } from 'yargs'
import { clusterOptions, withCluster, type ClusterArgs } from '../options.ts'
import { humanBytes } from '../progress.ts'

interface StatusArgs extends ClusterArgs {
  json: boolean
}

export const statusCommand: CommandModule<object, StatusArgs> = {
  command: 'status',
  describe: 'show nodes by rack and state, capacity, and the repair and GC backlogs',
  builder: (yargs) =>
    clusterOptions(yargs)
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON object' })
      .example('$0 status', 'the cluster started by `blobfs up` in ./blobfs-data')
      .example('$0 status --catalog postgres://db:5432/blobfs --json', 'for monitoring scripts') as unknown as Argv<StatusArgs>,
  handler: (argv) =>
    withCluster(argv, async ({ catalog, objects }) => {
      const [nodes, usage, repairs, deletions] = await Promise.all([
        catalog.nodes.list(),
        objects.clusterUsage(),
        catalog.repairs.stats(),
        catalog.deletions.stats(),
      ])
      const racks = new Map<string, typeof nodes>()
      for (const node of nodes) racks.set(node.rack, [...(racks.get(node.rack) ?? []), node])
      const states: Record<string, number> = {}
      for (const node of nodes) states[node.state] = (states[node.state] ?? 0) + 1
      const status = {
        nodes: nodes.map((n) => ({ id: n.id, rack: n.rack, state: n.state, address: n.address, capacityBytes: n.capacityBytes, usedBytes: n.usedBytes, heartbeatAgeMs: n.heartbeatAgeMs })),
        nodeStates: states,
        racks: racks.size,
        capacityBytes: usage.capacityBytes,
        usedBytes: usage.usedBytes,
        objects: usage.objects,
        repairBacklog: repairs,
        deletionBacklog: deletions,
      }
      if (argv.json) {
        console.log(JSON.stringify(status))
        return
      }
      console.log(`nodes: ${nodes.length} in ${racks.size} racks (${Object.entries(states).map(([s, n]) => `${n} ${s}`).join(', ') || 'none'})`)
      console.log(`capacity: ${humanBytes(usage.usedBytes)} used of ${humanBytes(usage.capacityBytes)}; ${usage.objects} objects`)
      console.log(`repair backlog: ${repairs.ready} ready, ${repairs.leased} in progress, ${repairs.delayed} waiting`)
      console.log(`deletion backlog: ${deletions.ready} ready, ${deletions.leased} in progress, ${deletions.delayed} waiting`)
      for (const [rack, members] of [...racks].sort(([a], [b]) => a.localeCompare(b))) {
        console.log(`\nrack ${rack}`)
        for (const n of members) {
          console.log(`  ${n.id}  ${n.state.padEnd(9)} ${humanBytes(n.usedBytes).padStart(10)} / ${humanBytes(n.capacityBytes).padEnd(10)} ${n.address}  heartbeat ${Math.round(n.heartbeatAgeMs / 1000)}s ago`)
        }
      }
    }),
}

// `blobfs status`: the cluster at a glance — nodes by rack and state, capacity,
// degraded stripes by how many chunks they lack, the repair backlog and rate,
// scrub progress, and the GC backlog (deletions, idle multipart uploads).
// --json prints the whole report (src/cli/status-report.ts) as one object.
import type { Argv, CommandModule } from 'yargs'
import { formatDuration } from '../duration.ts'
import { clusterOptions, withCluster, type ClusterArgs } from '../options.ts'
import { humanBytes } from '../progress.ts'
import { collectStatus, type StatusReport } from '../status-report.ts'

interface StatusArgs extends ClusterArgs {
  json: boolean
}

export const statusCommand: CommandModule<object, StatusArgs> = {
  command: 'status',
  describe: 'show nodes by rack and state, capacity, degraded stripes, the repair, scrub and GC backlogs',
  builder: (yargs) =>
    clusterOptions(yargs)
      .option('json', { type: 'boolean', default: false, describe: 'print one JSON object (every figure, for scripts)' })
      .example('$0 status', 'the cluster started by `blobfs up` in ./blobfs-data')
      .example('$0 status --catalog postgres://db:5432/blobfs --json', 'for monitoring scripts')
      .example("$0 status --json | jq '.degraded.byLacking'", 'stripes by how many chunks they lack') as unknown as Argv<StatusArgs>,
  handler: (argv) =>
    withCluster(argv, async (cluster) => {
      const report = await collectStatus(cluster)
      console.log(argv.json ? JSON.stringify(report) : formatStatus(report))
    }),
}

const percent = (ratio: number | null) => (ratio === null ? 'n/a' : `${Math.floor(ratio * 100)}%`)
const rate = (perSec: number | null, unit: string) => (perSec === null ? 'n/a' : `${perSec.toFixed(perSec < 10 ? 1 : 0)} ${unit}/s`)
const queue = (q: { ready: number; leased: number; delayed: number }) => `${q.ready} ready, ${q.leased} in progress, ${q.delayed} waiting`
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`

export function formatStatus(report: StatusReport): string {
  const lines: string[] = []
  const states = Object.entries(report.nodeStates).map(([s, n]) => `${n} ${s}`).join(', ') || 'none'
  lines.push(`nodes:     ${report.nodes.length} in ${report.racks} racks (${states})`)
  lines.push(`capacity:  ${humanBytes(report.usedBytes)} used of ${humanBytes(report.capacityBytes)}; ${report.objects} objects`)
  const lacking = Object.entries(report.degraded.byLacking)
    .map(([n, count]) => [Number(n), count] as const)
    .sort((a, b) => b[0] - a[0])
  const degradedText =
    lacking.length === 0
      ? 'none'
      : lacking.map(([n, count]) => (n === 0 ? `${count} queued with no chunk known lost` : `${count} lacking ${plural(n, 'chunk')}`)).join(', ') +
        (report.degraded.truncated ? ' (at least: counted from a bounded sample)' : '')
  lines.push(`degraded:  ${degradedText}`)
  lines.push(`repair:    ${queue(report.repairBacklog)}; rate ${rate(report.repairRatePerSec, 'stripes')}`)
  lines.push(`scrub:     slowest node ${percent(report.scrub.progressRatioMin)} through its pass, mean ${percent(report.scrub.progressRatioMean)}; passes completed by every node: ${report.scrub.passesMin ?? 0} (${report.scrub.nodesReporting} nodes reporting)`)
  lines.push(`gc:        deletions ${queue(report.deletionBacklog)}; rate ${rate(report.deletionRatePerSec, 'chunks')}`)
  const capped = report.multipart.capped ? ' (at least)' : ''
  lines.push(`multipart: ${report.multipart.open} open, ${report.multipart.idle} idle longer than ${formatDuration(report.multipart.idleMs)} (aborted by the GC)${capped}`)
  const racks = new Map<string, StatusReport['nodes']>()
  for (const node of report.nodes) racks.set(node.rack, [...(racks.get(node.rack) ?? []), node])
  for (const [rack, members] of [...racks].sort(([a], [b]) => a.localeCompare(b))) {
    lines.push('', `rack ${rack}`)
    for (const n of members) {
      const state = n.drained ? 'DRAINED' : n.live?.readOnly && n.state === 'UP' ? 'READONLY' : n.state
      const chunks = n.catalogChunks !== null ? `${n.catalogChunks} chunks to move` : n.live ? `${n.live.chunks} chunks` : ''
      const scrub = n.live?.scrubProgressRatio !== null && n.live?.scrubProgressRatio !== undefined ? `scrub ${percent(n.live.scrubProgressRatio)}` : ''
      const reach = n.live ? '' : `unreachable (${n.unreachableReason})`
      lines.push(
        `  ${n.id}  ${state.padEnd(9)} ${humanBytes(n.usedBytes).padStart(10)} / ${humanBytes(n.capacityBytes).padEnd(10)} ${n.address}  heartbeat ${Math.round(n.heartbeatAgeMs / 1000)}s ago  ${[chunks, scrub, reach].filter(Boolean).join('  ')}`.trimEnd(),
      )
    }
  }
  return lines.join('\n')
}

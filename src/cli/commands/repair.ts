// `blobfs repair`: the repair backlog of the cluster, and with --wait a progress
// bar until it is empty (every stripe back to full redundancy, as far as the queue
// knows). Repair itself runs on the storage nodes; this command only watches the
// catalog's queue, so it can run anywhere the catalog is reachable.
import { setTimeout as sleep } from 'node:timers/promises'
import type { Argv, CommandModule } from 'yargs'
import type { QueueStats, RepairTask } from '../../catalog/queues.ts'
import { BlobfsError } from '../../errors.ts'
import { clusterOptions, withCluster, type ClusterArgs } from '../options.ts'
import { countBar } from '../progress.ts'
import { parseDuration } from './node.ts'

interface RepairArgs extends ClusterArgs {
  wait: boolean
  json: boolean
  timeout?: string
  interval: string
}

const failingShownMax = 5

function backlogOf(stats: QueueStats): number {
  return stats.ready + stats.leased + stats.delayed
}

function describeFailing(tasks: readonly RepairTask[]): string[] {
  return tasks.map((t) => `  ${t.objectId}/${t.partNumber}/${t.stripeIndex} (${t.reason}, ${t.attempts} attempts): ${t.lastError}`)
}

export const repairCommand: CommandModule<object, RepairArgs> = {
  command: 'repair',
  describe: 'show the repair backlog; with --wait, follow it until every queued stripe is repaired',
  builder: (yargs) =>
    clusterOptions(yargs)
      .option('wait', { type: 'boolean', default: false, describe: 'show a progress bar and return once the backlog is empty' })
      .option('timeout', { type: 'string', describe: 'with --wait: give up after this long (e.g. 30m), exit status 5' })
      .option('interval', { type: 'string', default: '1s', describe: 'with --wait: how often to look at the queue' })
      .option('json', { type: 'boolean', default: false, describe: 'print JSON (with --wait: one line when done)' })
      .example('$0 repair', 'the backlog of the cluster in ./blobfs-data: ready, in progress, waiting, and tasks that keep failing')
      .example('$0 repair --wait --timeout 2h --catalog postgres://db:5432/blobfs', 'after replacing a node: wait until full redundancy is back')
      .example('$0 repair --json', 'for monitoring scripts') as unknown as Argv<RepairArgs>,
  handler: (argv) =>
    withCluster(argv, async ({ catalog }) => {
      const intervalMs = parseDuration(argv.interval, '--interval')
      const timeoutMs = argv.timeout === undefined ? null : parseDuration(argv.timeout, '--timeout')
      const nodesDown = async () => (await catalog.nodes.list()).filter((n) => n.state === 'DOWN').map((n) => n.id)
      if (!argv.wait) {
        const [stats, down, failing] = await Promise.all([catalog.repairs.stats(), nodesDown(), catalog.repairs.failing({ limit: failingShownMax })])
        if (argv.json) {
          console.log(JSON.stringify({ backlog: backlogOf(stats), ...stats, nodesDown: down, failing: failing.map((t) => ({ objectId: t.objectId, partNumber: t.partNumber, stripeIndex: t.stripeIndex, reason: t.reason, attempts: t.attempts, lastError: t.lastError })) }))
          return
        }
        console.log(`repair backlog: ${backlogOf(stats)} stripes (${stats.ready} ready, ${stats.leased} being repaired, ${stats.delayed} waiting to retry)`)
        console.log(`nodes DOWN: ${down.length === 0 ? 'none' : down.join(', ')}`)
        if (failing.length > 0) console.log(['stripes that failed at least once:', ...describeFailing(failing)].join('\n'))
        return
      }
      const startedMs = Date.now()
      const bar = countBar('repair', 'stripes')
      let total = 0
      let repaired = 0
      try {
        for (;;) {
          const stats = await catalog.repairs.stats()
          const backlog = backlogOf(stats)
          total = Math.max(total, backlog + repaired)
          repaired = total - backlog
          const seconds = (Date.now() - startedMs) / 1000
          bar.update(repaired, total, `${stats.leased} in progress, ${stats.delayed} waiting | ${seconds.toFixed(0)} s`)
          if (backlog === 0) break
          if (timeoutMs !== null && Date.now() - startedMs > timeoutMs) {
            bar.stop()
            const failing = await catalog.repairs.failing({ limit: failingShownMax })
            if (failing.length > 0) process.stderr.write(['stripes that keep failing:', ...describeFailing(failing)].join('\n') + '\n')
            throw new BlobfsError('Timeout', `${backlog} stripes still queued for repair after ${argv.timeout}`)
          }
          await sleep(intervalMs)
        }
      } finally {
        bar.stop()
      }
      const seconds = (Date.now() - startedMs) / 1000
      if (argv.json) console.log(JSON.stringify({ backlog: 0, repaired, seconds }))
      else console.log(`repair backlog empty: ${repaired} stripes repaired while waiting (${seconds.toFixed(1)} s)`)
    }),
}

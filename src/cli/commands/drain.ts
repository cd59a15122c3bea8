// `blobfs node drain NODE`: empties a storage node before it is removed or
// replaced (src/repair/drain.ts does the work; this is the operator's side:
// finding the node, the progress bar, the summary and the exit status).
// `--cancel` gives a node back to placement.
import type { Argv, CommandModule } from 'yargs'
import type { NodeRecord } from '../../catalog/nodes.ts'
import { BlobfsError } from '../../errors.ts'
import { drainConcurrencyDefault } from '../../limits.ts'
import { logger } from '../../log.ts'
import { drainNode } from '../../repair/drain.ts'
import type { Cluster } from '../cluster.ts'
import { exitStatus } from '../exit.ts'
import { clusterOptions, withCluster, type ClusterArgs } from '../options.ts'
import { countBar, humanBytes } from '../progress.ts'

interface DrainArgs extends ClusterArgs {
  node: string
  concurrency: number
  cancel: boolean
  json: boolean
}

/** A node by id, unique id prefix (at least 4 characters) or address. */
export async function findNode(cluster: Pick<Cluster, 'catalog'>, text: string): Promise<NodeRecord> {
  const nodes = await cluster.catalog.nodes.list()
  const exact = nodes.find((n) => n.id === text || n.address === text || n.address === text.replace(/\/$/, ''))
  if (exact) return exact
  const byPrefix = text.length >= 4 ? nodes.filter((n) => n.id.startsWith(text)) : []
  if (byPrefix.length === 1) return byPrefix[0]!
  if (byPrefix.length > 1) throw new BlobfsError('InvalidArgument', `'${text}' names ${byPrefix.length} nodes; give more of the id`)
  throw new BlobfsError('InvalidArgument', `no registered node has the id or address '${text}' (see \`blobfs status\`)`)
}

export const nodeDrainCommand: CommandModule<object, DrainArgs> = {
  command: 'drain <node>',
  describe: 'move every chunk off a storage node so it can be removed; placement skips it from now on',
  builder: (yargs) =>
    clusterOptions(yargs)
      .positional('node', { type: 'string', demandOption: true, describe: 'node id (or a unique prefix of it, or its address)' })
      .option('concurrency', { type: 'number', default: drainConcurrencyDefault, describe: 'stripes moved at once' })
      .option('cancel', { type: 'boolean', default: false, describe: 'stop draining: the node takes new chunks again (chunks already moved stay moved)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as one JSON object' })
      .example('$0 node drain 3f2a9c1e', 'empty the node whose id starts with 3f2a9c1e (run again any time: it resumes)')
      .example('$0 node drain http://10.0.0.7:9101 --catalog postgres://db/blobfs', 'name the node by address')
      .example('$0 node drain 3f2a9c1e --cancel', 'give the node back to placement') as unknown as Argv<DrainArgs>,
  handler: (argv) =>
    withCluster(argv, async (cluster) => {
      if (!(Number.isInteger(argv.concurrency) && argv.concurrency >= 1 && argv.concurrency <= 64)) {
        throw new BlobfsError('InvalidArgument', '--concurrency must be an integer from 1 to 64')
      }
      const node = await findNode(cluster, argv.node)
      if (argv.cancel) {
        if (node.state !== 'DRAINING') throw new BlobfsError('InvalidArgument', `node ${node.id} is ${node.state}, not DRAINING`)
        await cluster.catalog.nodes.setState(node.id, 'UP')
        console.log(argv.json ? JSON.stringify({ node: node.id, state: 'UP' }) : `node ${node.id} is UP again: placement may choose it`)
        return
      }
      const bar = countBar(`draining ${node.id.slice(0, 8)}`, 'chunks', !argv.json && process.stderr.isTTY === true)
      const startedMs = Date.now()
      const result = await drainNode({
        catalog: cluster.catalog,
        store: cluster.store,
        candidates: () => cluster.membership.candidates(),
        rackOf: (id) => cluster.membership.get(id)?.rack,
        refresh: () => cluster.membership.refresh(),
        nodeId: node.id,
        log: logger('drain'),
        concurrency: argv.concurrency,
        onProgress: (p) => bar.update(p.moved + p.skipped + p.failed, p.total, p.failed > 0 ? `(${p.failed} failed)` : ''),
      })
      bar.stop()
      const seconds = (Date.now() - startedMs) / 1000
      if (argv.json) {
        console.log(JSON.stringify({ node: node.id, ...result, seconds }))
      } else {
        console.log(
          `node ${node.id}: ${result.moved} chunks moved (${humanBytes(result.bytesCopied)}, ${result.rebuilt} rebuilt from their stripes), ` +
            `${result.skipped} no longer needed moving, ${result.failed} failed, in ${seconds.toFixed(1)} s over ${result.pass} pass(es)`,
        )
        if (result.drained) {
          console.log(`node ${node.id} is drained: it stays DRAINING (placement skips it); its old copies are deleted by its GC after the deletion delay. Stop it once \`blobfs status\` shows it DRAINED and its deletions are done.`)
        } else {
          console.log(`${result.remaining} chunks are still on node ${node.id}; run the drain again. Last errors:`)
          for (const error of result.errors) console.log(`  ${error}`)
        }
      }
      if (!result.drained) process.exitCode = exitStatus.failure
    }),
}

// Options shared by the commands that reach a cluster: where it is (--catalog or
// --data) and output for scripts (--json).
import type { Argv } from 'yargs'
import { openCluster, resolveCatalogUrl, type Cluster } from './cluster.ts'
import { failAndExit } from './exit.ts'

export interface ClusterArgs {
  catalog?: string
  data?: string
}

export function clusterOptions<T>(yargs: Argv<T>): Argv<T & ClusterArgs> {
  return yargs
    .option('catalog', { type: 'string', describe: 'catalog URL (postgres://...), e.g. the one `blobfs up` prints' })
    .option('data', { type: 'string', describe: 'directory of a `blobfs up` cluster (default ./blobfs-data)' }) as Argv<T & ClusterArgs>
}

/** Opens the cluster, runs `body`, closes it; any error exits with its mapped status. */
export async function withCluster<R>(args: ClusterArgs, body: (cluster: Cluster) => Promise<R>): Promise<R> {
  let cluster: Cluster | undefined
  let result: R
  try {
    cluster = await openCluster(await resolveCatalogUrl(args))
    result = await body(cluster)
  } catch (error) {
    await cluster?.close().catch(() => {})
    return failAndExit(error)
  }
  await cluster.close().catch(() => {})
  return result
}

/** "blobfs://bucket/key/path" -> { bucket, key }; null for a local path. */
export function parseRemote(text: string): { bucket: string; key: string } | null {
  const match = /^blobfs:\/\/([^/]+)\/?(.*)$/.exec(text)
  return match ? { bucket: match[1]!, key: match[2]! } : null
}

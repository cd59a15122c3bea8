// A real cluster for integration and fault tests: a throwaway PostgreSQL catalog
// and N `blobfs node` child processes (the same executable operators run) spread
// over racks, registered through the catalog. Tests kill, restart and corrupt the
// nodes; stop() removes every process and directory, also after a failure.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { CatalogOptions } from '../../src/catalog/catalog.ts'
import { openCluster, type Cluster } from '../../src/cli/cluster.ts'
import type { ObjectStoreConfig } from '../../src/objects/config.ts'
import { startPostgres, type PostgresServer } from './postgres-server.ts'

export const blobfsBin = join(import.meta.dirname, '..', '..', 'src', 'cli', 'bin.mjs')

export interface TestNode {
  index: number
  rack: string
  dataDir: string
  /** Set once the node has started (from its "storage node listening" log line). */
  id: string
  url: string
  process: ChildProcess | null
  /** Stops the process with `signal` (default SIGKILL) and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>
  /** Starts the node again on its directory (new port); resolves when it listens. */
  start(): Promise<void>
  /** Flags of this node only, added after the cluster's (set before start). */
  extraArgs: string[]
}

export interface TestClusterOptions {
  nodes?: number
  racks?: number
  blockSize?: string
  /** Extra `blobfs node` flags. */
  nodeArgs?: string[]
  /** Called with each node's (empty) data directory before it first starts, e.g. to mount a small file system there. */
  prepareDataDir?: (index: number, dir: string) => void
  /** Called for each node's data directory once every node has stopped (undo prepareDataDir); errors are ignored. */
  cleanupDataDir?: (index: number, dir: string) => void
  /** How long one node may take to start (default 120 s). */
  startTimeoutMs?: number
}

export interface TestCluster {
  catalogUrl: string
  postgres: PostgresServer
  nodes: TestNode[]
  root: string
  /** A client view of the cluster (catalog + membership + HTTP chunk store + object layer). */
  open(config?: Partial<ObjectStoreConfig>, catalogOptions?: CatalogOptions): Promise<Cluster>
  /** Starts one more node (an empty directory) in `rack`; it joins `nodes`. */
  addNode(rack: string, extraArgs?: string[]): Promise<TestNode>
  stop(): Promise<void>
}

// Generous: a node process loads its TypeScript through tsx, and a dozen starting at once on a
// busy 2-core machine have taken over a minute before their first log line.
const nodeStartTimeoutMs = 120_000
const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

export async function startTestCluster(options: TestClusterOptions = {}): Promise<TestCluster> {
  const count = options.nodes ?? 12
  const racks = options.racks ?? 4
  const root = mkdtempSync(join(tmpdir(), 'blobfs-cluster-'))
  let postgres: PostgresServer | undefined
  const nodes: TestNode[] = []
  const clients: Cluster[] = []
  const stop = async () => {
    await Promise.allSettled(clients.map((c) => c.close()))
    await Promise.allSettled(nodes.map((n) => n.kill('SIGTERM')))
    for (const node of nodes) {
      try {
        options.cleanupDataDir?.(node.index, node.dataDir)
      } catch {
        // best effort: the directory is removed below either way
      }
    }
    await postgres?.stop()
    rmSync(root, { recursive: true, force: true })
  }
  try {
    postgres = await startPostgres()
    const catalogUrl = await postgres.createDatabase()
    for (let index = 0; index < count; index++) {
      const dir = join(root, `node-${index}`)
      if (options.prepareDataDir) {
        mkdirSync(dir, { recursive: true })
        options.prepareDataDir(index, dir)
      }
      nodes.push(testNode(index, `rack-${index % racks}`, dir, catalogUrl, options))
    }
    // Start one node first so the schema migration is not raced by all of them.
    await nodes[0]!.start()
    await Promise.all(nodes.slice(1).map((n) => n.start()))
    return {
      catalogUrl,
      postgres,
      nodes,
      root,
      open: async (config = {}, catalogOptions = {}) => {
        const cluster = await openCluster(catalogUrl, config, catalogOptions)
        clients.push(cluster)
        return cluster
      },
      addNode: async (rack, extraArgs = []) => {
        const index = nodes.length
        const node = testNode(index, rack, join(root, `node-${index}`), catalogUrl, options)
        node.extraArgs = extraArgs
        nodes.push(node)
        await node.start()
        return node
      },
      stop,
    }
  } catch (error) {
    await stop()
    throw error
  }
}

function testNode(index: number, rack: string, dataDir: string, catalogUrl: string, options: TestClusterOptions): TestNode {
  const node: TestNode = {
    index,
    rack,
    dataDir,
    id: '',
    url: '',
    process: null,
    extraArgs: [],
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      const child = node.process
      if (!child || child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.kill(signal)
      await exited
      node.process = null
    },
    async start() {
      const child = spawn(
        process.execPath,
        [
          blobfsBin,
          'node',
          '--data', dataDir,
          '--listen', '127.0.0.1:0',
          '--rack', rack,
          '--catalog', catalogUrl,
          '--block-size', options.blockSize ?? '64MiB',
          '--heartbeat-interval-ms', '500',
          ...(options.nodeArgs ?? []),
          ...node.extraArgs,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      )
      live.add(child)
      child.once('exit', () => live.delete(child))
      node.process = child
      const log: string[] = []
      await new Promise<void>((resolve, reject) => {
        const timeoutMs = options.startTimeoutMs ?? nodeStartTimeoutMs
        const timer = setTimeout(() => reject(new Error(`node ${index} did not start in ${timeoutMs} ms:\n${log.join('\n')}`)), timeoutMs)
        child.once('exit', (code, signal) => {
          clearTimeout(timer)
          reject(new Error(`node ${index} exited (${code ?? signal}) while starting:\n${log.join('\n')}`))
        })
        createInterface({ input: child.stderr! }).on('line', (line) => {
          if (log.length < 200) log.push(line)
          try {
            const entry = JSON.parse(line) as { msg?: string; nodeId?: string; url?: string }
            if (entry.msg === 'storage node listening' && entry.nodeId && entry.url) {
              node.id = entry.nodeId
              node.url = entry.url
              clearTimeout(timer)
              child.removeAllListeners('exit')
              child.once('exit', () => live.delete(child))
              resolve()
            }
          } catch {
            // not a JSON log line
          }
        })
      })
    },
  }
  return node
}

// `blobfs up` as a child process for tests and benchmarks: started on a directory,
// ready when it prints `blobfs ready`, stopped with SIGINT (its clean path).
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { ClusterFile } from '../../src/cli/cluster.ts'
import { blobfsBin } from './cluster.ts'

export interface RunningUp {
  child: ChildProcess
  output: string[]
  cluster: ClusterFile
  credentials: { accessKeyId: string; secretAccessKey: string }
  /** SIGINT and wait; resolves with the exit code. */
  stop(): Promise<number | null>
  /** SIGKILL to `blobfs up` and everything it started (its process group): when stop() does not end it. */
  kill(): void
}

const readyTimeoutMsDefault = 180_000

export function startUp(dataDir: string, args: string[] = [], readyTimeoutMs = readyTimeoutMsDefault): Promise<RunningUp> {
  // A process group of its own, so a timeout can end the nodes, gateway and mount with it.
  const child = spawn(process.execPath, [blobfsBin, 'up', '--data', dataDir, '--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  const kill = () => {
    try {
      process.kill(-child.pid!, 'SIGKILL')
    } catch {
      // the group is gone already
    }
  }
  const output: string[] = []
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    child.kill('SIGINT')
    return exited
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      kill()
      reject(new Error(`blobfs up not ready in ${readyTimeoutMs} ms:\n${output.join('\n')}`))
    }, readyTimeoutMs)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`blobfs up exited (${code}):\n${output.join('\n')}`))
    })
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        if (output.length < 500) output.push(line)
        if (line !== 'blobfs ready') return
        clearTimeout(timer)
        child.removeAllListeners('exit')
        resolve({
          child,
          output,
          cluster: JSON.parse(readFileSync(join(dataDir, 'cluster.json'), 'utf8')) as ClusterFile,
          credentials: JSON.parse(readFileSync(join(dataDir, 'credentials.json'), 'utf8')),
          stop,
          kill,
        })
      })
    }
  })
}

// Starts `blobfs node` as a real child process (the CLI, through tsx) and learns
// its URL from the "storage node listening" log line.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const cliPath = join(repo, 'src', 'cli', 'bin.mjs')

/** Bound on a child node coming up; a hang guard, not a performance check. */
export const nodeStartTimeoutMs = 60_000

export interface NodeProcess {
  url: string
  child: ChildProcess
  logs: string[]
  /** SIGKILL (a crash) or SIGTERM (a clean stop); resolves when the process is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>
}

export async function startNodeProcess(dir: string, args: string[] = []): Promise<NodeProcess> {
  const child = spawn(process.execPath, [cliPath, 'node', '--data', dir, '--listen', '127.0.0.1:0', '--rack', 'r1', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  const logs: string[] = []
  const exited = once(child, 'exit')
  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    await exited
  }
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node did not start within ${nodeStartTimeoutMs} ms:\n${logs.join('\n')}`)), nodeStartTimeoutMs)
    const lines = createInterface({ input: child.stderr! })
    lines.on('line', (line) => {
      logs.push(line)
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string }
        if (entry.msg === 'storage node listening' && entry.url) {
          clearTimeout(timer)
          resolve(entry.url)
        }
      } catch {
        // not JSON: keep it in the logs
      }
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`node exited (${code ?? signal}) before listening:\n${logs.join('\n')}`))
    })
  }).catch(async (error) => {
    await kill()
    throw error
  })
  return { url, child, logs, kill }
}

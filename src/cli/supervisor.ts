// Child processes of `blobfs up`: each part of the cluster runs as its own
// `blobfs ...` process (operators see them in ps), its output goes to a log file
// under the data directory, and it counts as started when it prints its ready line.
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { BlobfsError } from '../errors.ts'
import { packageRoot } from '../paths.ts'

/** The `blobfs` executable the children run (it picks the compiled build or the sources). */
export const blobfsExecutable = join(packageRoot, 'src', 'cli', 'bin.mjs')

export interface ChildOptions {
  name: string
  args: string[]
  logFile: string
  /** A line (stdout or stderr) that says the child is ready; its match is returned. */
  ready: RegExp
  readyTimeoutMs: number
}

export interface Child {
  readonly name: string
  readonly process: ChildProcess
  /** Resolves with the ready line's match; rejects if the child exits or times out first. */
  readonly ready: Promise<RegExpMatchArray>
  /** Resolves when the child has exited, with its code or signal. */
  readonly exited: Promise<number | string>
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs: number): Promise<void>
}

export function startChild(options: ChildOptions): Child {
  const log: WriteStream = createWriteStream(options.logFile, { flags: 'a' })
  const child = spawn(process.execPath, [blobfsExecutable, ...options.args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let settled = false
  let resolveReady!: (match: RegExpMatchArray) => void
  let rejectReady!: (error: Error) => void
  const ready = new Promise<RegExpMatchArray>((resolve, reject) => {
    resolveReady = resolve
    rejectReady = reject
  })
  ready.catch(() => {})
  const timer = setTimeout(() => {
    if (settled) return
    settled = true
    rejectReady(new BlobfsError('Timeout', `${options.name} did not start within ${options.readyTimeoutMs} ms; see ${options.logFile}`))
  }, options.readyTimeoutMs)
  const watch = (stream: NodeJS.ReadableStream) => {
    createInterface({ input: stream }).on('line', (line) => {
      log.write(line + '\n')
      if (settled) return
      const match = options.ready.exec(line)
      if (match) {
        settled = true
        clearTimeout(timer)
        resolveReady(match)
      }
    })
  }
  watch(child.stdout!)
  watch(child.stderr!)
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      if (!settled) {
        settled = true
        rejectReady(new BlobfsError('Internal', `${options.name} exited (${code ?? signal}) before it was ready; see ${options.logFile}`))
      }
      log.end()
      resolve(code ?? signal ?? 'unknown')
    })
  })
  return {
    name: options.name,
    process: child,
    ready,
    exited,
    async stop(graceMs: number) {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const killer = setTimeout(() => child.kill('SIGKILL'), graceMs)
      await exited
      clearTimeout(killer)
    },
  }
}

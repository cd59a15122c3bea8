// Real mounts for tests: the daemon runs in a child process (mount-daemon.ts), every
// file operation runs in another child (sh -c ...), so the test process never makes
// a call on the mount it could hang in. Every mount is unmounted, every child killed
// and every temp dir removed in `finally`, and every command has a time bound.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { access, constants as fsConstants, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { DaemonRequest } from './mount-daemon.ts'

const daemonScript = fileURLToPath(new URL('./mount-daemon.ts', import.meta.url))
const blobfsBin = fileURLToPath(new URL('../../../src/cli/bin.mjs', import.meta.url))
const installHint = 'FUSE is needed for the mount tests: install the Debian packages "fuse" and "libfuse2" (.ci/install-deps), run as root or a user allowed to use /dev/fuse, then `npm ci`'

/** Fails (never skips) with an install hint when this machine cannot mount FUSE. */
export async function requireFuse(): Promise<void> {
  for (const path of ['/dev/fuse', '/usr/bin/fusermount']) {
    try {
      await access(path, path === '/dev/fuse' ? fsConstants.R_OK | fsConstants.W_OK : fsConstants.X_OK)
    } catch {
      assert.fail(`${path} is missing or not usable. ${installHint}`)
    }
  }
}

export interface ShResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs `sh -c script` in a child process; killed after `timeoutMs`. */
export function sh(script: string, options: { cwd?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<ShResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', script], { cwd: options.cwd, env: { ...process.env, LC_ALL: 'C.UTF-8', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`timed out after ${options.timeoutMs ?? 60_000} ms: ${script}\n${stderr}`))
    }, options.timeoutMs ?? 60_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

/** Like sh, but the command must succeed. */
export async function ok(script: string, options: { cwd?: string; timeoutMs?: number } = {}): Promise<string> {
  const result = await sh(script, options)
  assert.equal(result.code, 0, `failed: ${script}\n${result.stderr}${result.stdout}`)
  return result.stdout
}

export interface Mount {
  mountpoint: string
  dataDir: string
  child: ChildProcess
  log(): string
  request<T = unknown>(request: DaemonRequest): Promise<T>
  /** SIGTERM (or another signal); resolves with the exit status. */
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

export async function isMounted(mountpoint: string): Promise<boolean> {
  const table = await readFile('/proc/mounts', 'utf8')
  return table.split('\n').some((line) => line.split(' ')[1] === mountpoint)
}

/** Starts `blobfs mount b MOUNTPOINT --foreground --data DATA` (over the in-memory layer) in a child; resolves once it is ready. */
export async function startMount(mountpoint: string, dataDir: string, extraArgs: string[] = [], target = 'b'): Promise<Mount> {
  const child = spawn(process.execPath, ['--import', 'tsx', daemonScript, 'mount', target, mountpoint, '--foreground', ...(dataDir ? ['--data', dataDir] : []), '--log-level', 'warn', ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  })
  return readyMount(child, mountpoint, dataDir)
}

/**
 * Starts the real `blobfs mount TARGET MOUNTPOINT --foreground --catalog URL` (the
 * shipped executable over the catalog-backed object layer of a real cluster) in a
 * child; resolves once it is ready. `request` is not available on it.
 */
export async function startClusterMount(mountpoint: string, catalogUrl: string, extraArgs: string[] = [], target = 'b'): Promise<Mount> {
  const child = spawn(process.execPath, [blobfsBin, 'mount', target, mountpoint, '--foreground', '--catalog', catalogUrl, '--log-level', 'warn', ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  return readyMount(child, mountpoint, '')
}

const mountReadyTimeoutMs = 60_000

async function readyMount(child: ChildProcess, mountpoint: string, dataDir: string): Promise<Mount> {
  let stdout = ''
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mount not ready after ${mountReadyTimeoutMs} ms\n${stderr}`)), mountReadyTimeoutMs)
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString()
      if (stdout.includes('blobfs mount ready')) {
        clearTimeout(timer)
        resolve()
      }
    })
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`mount daemon exited with ${code} before it was ready\n${stderr}`))
    })
  })
  try {
    await ready
  } catch (error) {
    child.kill('SIGKILL')
    if (await isMounted(mountpoint)) await sh(`fusermount -uz '${mountpoint}'`)
    throw error
  }
  let nextId = 1
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  child.on('message', (message: { id: number; result?: unknown; error?: string }) => {
    const pending = waiting.get(message.id)
    waiting.delete(message.id)
    if (message.error !== undefined) pending?.reject(new Error(message.error))
    else pending?.resolve(message.result)
  })
  return {
    mountpoint,
    dataDir,
    child,
    log: () => stderr,
    request<T>(request: DaemonRequest): Promise<T> {
      const id = nextId++
      return new Promise<T>((resolve, reject) => {
        if (!child.send) return reject(new Error('this mount runs the real blobfs executable: it takes no test requests'))
        waiting.set(id, { resolve: resolve as (v: unknown) => void, reject })
        child.send({ id, request })
      })
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      child.kill(signal)
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
      const code = await exited
      clearTimeout(timer)
      return code
    },
  }
}

/** A temp directory with `mnt/`, `data/` and `work/` inside, removed afterwards (after unmounting). */
export async function withTempDirs<T>(fn: (dirs: { root: string; mnt: string; data: string; work: string }) => Promise<T>): Promise<T> {
  const root = await mkdtemp(join(tmpdir(), 'blobfs-fuse-test-'))
  const dirs = { root, mnt: join(root, 'mnt'), data: join(root, 'data'), work: join(root, 'work') }
  await Promise.all([mkdir(dirs.mnt), mkdir(dirs.data), mkdir(dirs.work)])
  try {
    return await fn(dirs)
  } finally {
    if (await isMounted(dirs.mnt)) await sh(`fusermount -uz '${dirs.mnt}'`)
    await rm(root, { recursive: true, force: true })
  }
}

/** Mounts, runs `fn`, and always stops the daemon and unmounts. */
export async function withMount<T>(fn: (mount: Mount, dirs: { root: string; mnt: string; data: string; work: string }) => Promise<T>, extraArgs: string[] = []): Promise<T> {
  await requireFuse()
  return withTempDirs(async (dirs) => {
    const mount = await startMount(dirs.mnt, dirs.data, extraArgs)
    try {
      return await fn(mount, dirs)
    } finally {
      await mount.stop('SIGTERM')
      if (await isMounted(dirs.mnt)) await sh(`fusermount -uz '${dirs.mnt}'`)
    }
  })
}

/** The daemon's `blobfs_fuse_ops_total` by operation, from its --metrics endpoint on 127.0.0.1:port. */
export async function fuseOpsCounts(port: number): Promise<Record<string, number>> {
  return countsByOp(port, 'blobfs_fuse_ops_total')
}

/** A counter labelled by `op` from the daemon's metrics on `port`, by operation. */
export async function countsByOp(port: number, metric: string): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  const out: Record<string, number> = {}
  for (const line of text.split('\n')) {
    const match = /^(\w+)\{op="(\w+)"\} (\d+)$/.exec(line)
    if (match && match[1] === metric) out[match[2]!] = Number(match[3])
  }
  return out
}

// A throwaway PostgreSQL server for tests and benchmarks: initdb into a temporary
// directory, started with pg_ctl on a free loopback port, stopped and removed
// afterwards — also when the test process fails or is interrupted.
//
// initdb refuses to run as root, so as root the server runs as the unprivileged
// user `nobody` and owns its temporary directory. Missing PostgreSQL binaries are
// an error (never a skip): the message says how to install them.
import { spawn, spawnSync, execFileSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { freePort } from './ports.ts'

export interface PostgresServer {
  /** URL of a database on this server (the default `postgres` database unless named). */
  url(database?: string): string
  /** Creates an empty database and returns its URL. */
  createDatabase(): Promise<string>
  /**
   * Stops the server cleanly (pg_ctl -m fast: sessions are cut, committed work is
   * flushed), stays down `downMs`, and starts it again on the same port.
   */
  restart(options?: { downMs?: number }): Promise<void>
  stop(): Promise<void>
}

const installHint =
  'PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH or in /usr/lib/postgresql/*/bin. ' +
  'The catalog tests need a real PostgreSQL: install it with `apt-get install postgresql` (or run `.ci/install-deps`).'

export function findPostgresBin(): string {
  const onPath = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' }).stdout.trim()
  if (onPath && existsSync(join(onPath, '..', 'pg_ctl'))) return join(onPath, '..')
  const root = '/usr/lib/postgresql'
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a))
    if (versions.length > 0) return join(root, versions[0]!, 'bin')
  }
  throw new Error(installHint)
}

function unprivilegedIds(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null
  const uid = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim())
  const gid = Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).trim())
  return { uid, gid }
}


function run(command: string, args: string[], options: { ids: { uid: number; gid: number } | null; cwd: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C' },
      ...(options.ids ?? {}),
    })
    let output = ''
    child.stdout.on('data', (d) => (output += d))
    child.stderr.on('data', (d) => (output += d))
    child.once('error', reject)
    child.once('exit', (code) => (code === 0 ? resolve(output) : reject(new Error(`${command} ${args.join(' ')} exited with ${code}:\n${output}`))))
  })
}

const live = new Set<{ stopSync(): void }>()
let exitHooked = false
function hookExit(): void {
  if (exitHooked) return
  exitHooked = true
  process.once('exit', () => {
    for (const server of live) server.stopSync()
  })
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const server of live) server.stopSync()
      process.exit(130)
    })
  }
}

export async function startPostgres(): Promise<PostgresServer> {
  const bin = findPostgresBin()
  const ids = unprivilegedIds()
  const dir = mkdtempSync(join(tmpdir(), 'blobfs-pg-'))
  if (ids) chownSync(dir, ids.uid, ids.gid)
  const data = join(dir, 'data')
  const log = join(dir, 'server.log')
  const pgCtl = join(bin, 'pg_ctl')
  let stopped = false

  const handle = {
    stopSync(): void {
      if (stopped) return
      stopped = true
      live.delete(handle)
      if (existsSync(join(data, 'postmaster.pid'))) {
        spawnSync(pgCtl, ['stop', '-D', data, '-m', 'immediate', '-w', '-t', '20'], { stdio: 'ignore', cwd: dir, ...(ids ?? {}) })
      }
      killLeftover(data)
      rmSync(dir, { recursive: true, force: true })
    },
  }
  live.add(handle)
  hookExit()

  try {
    await run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'], { ids, cwd: dir })
    let port = 0
    let serverOptions = ''
    for (let attempt = 1; ; attempt++) {
      port = await freePort()
      const options = [
        `-p ${port}`,
        `-h 127.0.0.1`,
        `-k ${dir}`,
        '-F', // no fsync: a test server's data is thrown away
        '-c max_connections=300',
        '-c shared_buffers=128MB',
        '-c synchronous_commit=off',
        '-c full_page_writes=off',
      ].join(' ')
      try {
        await run(pgCtl, ['start', '-D', data, '-w', '-t', '60', '-l', log, '-o', options], { ids, cwd: dir })
        serverOptions = options
        break
      } catch (error) {
        // Another process may have taken the port between our probe and the start.
        if (attempt >= 3) throw new Error(`${(error as Error).message}\n${existsSync(log) ? readFileSync(log, 'utf8') : ''}`)
      }
    }
    const url = (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`
    let databases = 0
    return {
      url,
      async createDatabase() {
        const name = `blobfs_test_${process.pid}_${++databases}`
        const admin = postgres(url(), { max: 1, onnotice: () => {} })
        try {
          await admin.unsafe(`CREATE DATABASE ${name}`)
        } finally {
          await admin.end()
        }
        return url(name)
      },
      async restart(options = {}) {
        await run(pgCtl, ['stop', '-D', data, '-m', 'fast', '-w', '-t', '60'], { ids, cwd: dir })
        await new Promise((resolve) => setTimeout(resolve, options.downMs ?? 0))
        await run(pgCtl, ['start', '-D', data, '-w', '-t', '60', '-l', log, '-o', serverOptions], { ids, cwd: dir })
      },
      async stop() {
        handle.stopSync()
      },
    }
  } catch (error) {
    handle.stopSync()
    throw error
  }
}

/** If pg_ctl could not stop the server, kill the postmaster named in its pid file. */
function killLeftover(data: string): void {
  const pidFile = join(data, 'postmaster.pid')
  if (!existsSync(pidFile)) return
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0])
  if (Number.isInteger(pid) && pid > 0) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
}

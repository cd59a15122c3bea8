// The three file systems the FUSE benchmark compares, each behind one factory:
// a plain local directory (the ceiling), blobfs mounted, and s3fs mounted over an S3
// endpoint. By default one `blobfs up --mount` cluster serves both blobfs columns:
// its mount for blobfs, its S3 gateway for s3fs. The in-memory layer and s3rver
// factories stay for developing the harness without a cluster.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isMounted, sh, startMount } from '../../fuse/helpers/mount.ts'
import { allProcesses, blobfsUpGroups, type ProcessGroups } from './cpu.ts'
import { blobfsBin } from '../../support/cluster.ts'
import { startUp, type RunningUp } from '../../support/up.ts'

export interface Target {
  /** Column title; says what really ran. */
  label: string
  /** The directory the workloads run in. */
  dir: string
  /** The processes doing this column's work, for CPU accounting (none for a local dir). */
  cpuGroups?(): Promise<ProcessGroups>
  stop(): Promise<void>
}

/** Starts blobfs mounted at `mountpoint`. */
export type BlobfsFactory = (mountpoint: string, workDir: string) => Promise<Target>

/** Starts an S3 endpoint serving `bucket`; s3fs is mounted over it. */
export type S3PortFactory = (workDir: string) => Promise<{
  label: string
  endpoint: string
  accessKey: string
  secretKey: string
  bucket: string
  cpuGroups?(): Promise<ProcessGroups>
  stop(): Promise<void>
}>

export async function localTarget(workDir: string): Promise<Target> {
  const dir = join(workDir, 'local')
  await mkdir(dir, { recursive: true })
  return { label: 'local dir', dir, stop: async () => {} }
}

/** blobfs over the in-memory object layer: the real daemon and command, no cluster behind it. */
export const blobfsOverMemory: BlobfsFactory = async (mountpoint, workDir) => {
  await mkdir(mountpoint, { recursive: true })
  const mount = await startMount(mountpoint, '', ['--cache-mib', '256'])
  return {
    label: 'blobfs (in-memory layer)',
    dir: mountpoint,
    stop: async () => {
      await mount.stop('SIGTERM')
      if (await isMounted(mountpoint)) await sh(`fusermount -uz '${mountpoint}'`)
      void workDir
    },
  }
}

/**
 * s3rver (a devDependency) as a stand-in S3 endpoint, to develop and debug the s3fs
 * column before blobfs's own S3 gateway exists. Its figures say nothing about blobfs.
 */
export const s3rverStandIn: S3PortFactory = async (workDir) => {
  const dir = join(workDir, 's3rver')
  await mkdir(dir, { recursive: true })
  const script = join(workDir, 's3rver.cjs')
  await writeFile(
    script,
    `const S3rver = require(${JSON.stringify(fileURLToPath(new URL('../../../node_modules/s3rver', import.meta.url)))});
     new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: ${JSON.stringify(dir)}, configureBuckets: [{ name: 'bench' }] })
       .run().then(({ port }) => console.log('PORT ' + port))`,
  )
  const child: ChildProcess = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] })
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      const match = /PORT (\d+)/.exec(d.toString())
      if (match) resolve(Number(match[1]))
    })
    child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}`)))
  })
  return {
    label: 's3fs over s3rver (stand-in, not blobfs)',
    endpoint: `http://127.0.0.1:${port}`,
    accessKey: 'S3RVER',
    secretKey: 'S3RVER',
    bucket: 'bench',
    stop: async () => {
      child.kill('SIGTERM')
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** s3fs (Debian) mounted over an S3 endpoint. */
export async function s3fsTarget(s3: S3PortFactory, mountpoint: string, workDir: string): Promise<Target> {
  const port = await s3(workDir)
  await mkdir(mountpoint, { recursive: true })
  const passwd = join(workDir, 's3fs.passwd')
  await writeFile(passwd, `${port.accessKey}:${port.secretKey}\n`, { mode: 0o600 })
  const result = await sh(
    `s3fs ${port.bucket} '${mountpoint}' -o passwd_file='${passwd}',url=${port.endpoint},use_path_request_style,nomultipart,stat_cache_expire=1,use_cache=''`,
    { timeoutMs: 30_000 },
  )
  if (result.code !== 0) {
    await port.stop()
    throw new Error(`s3fs did not mount: ${result.stderr}`)
  }
  for (let i = 0; i < 50 && !(await isMounted(mountpoint)); i++) await new Promise((r) => setTimeout(r, 100))
  return {
    label: port.label,
    dir: mountpoint,
    cpuGroups: async () => {
      const s3fs = (await allProcesses()).filter((p) => p.cmdline.startsWith('s3fs ') && p.cmdline.includes(mountpoint)).map((p) => p.pid)
      return { s3fs, ...(await port.cpuGroups?.()) }
    },
    stop: async () => {
      await sh(`fusermount -u '${mountpoint}' || fusermount -uz '${mountpoint}'`)
      await port.stop()
    },
  }
}

/**
 * One real cluster for both columns: `blobfs up` (embedded catalog, 12 node
 * processes in 4 racks, fdatasync) with bucket `default` mounted for blobfs, and
 * its S3 gateway serving bucket `bench` to s3fs. Started when the first column
 * needs it, stopped when the last one is done.
 */
let shared: { up: Promise<RunningUp>; users: number; mountpoint: string } | null = null
/** A loaded 2-core machine can take minutes to start 12 nodes. */
const upReadyTimeoutMs = 10 * 60_000
/** SIGINT lets `blobfs up` unmount and upload what is open; past this its whole process group is killed. */
const upStopTimeoutMs = 3 * 60_000

async function stopUp(up: RunningUp): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const stopped = await Promise.race([up.stop().then(() => true), new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), upStopTimeoutMs)))])
  clearTimeout(timer)
  if (!stopped) console.error(`blobfs up did not stop within ${upStopTimeoutMs} ms after SIGINT: killing its process group`)
  up.kill() // also ends anything of it still running after a clean exit
}

async function acquireCluster(workDir: string, mountpoint: string): Promise<RunningUp> {
  if (!shared) {
    await mkdir(mountpoint, { recursive: true })
    shared = { up: startUp(join(workDir, 'blobfs-data'), ['--mount', mountpoint, '--block-size', '1GiB'], upReadyTimeoutMs), users: 0, mountpoint }
  }
  shared.users++
  return shared.up
}

async function releaseCluster(): Promise<void> {
  if (!shared || --shared.users > 0) return
  const { up, mountpoint } = shared
  shared = null
  await stopUp(await up)
  if (await isMounted(mountpoint)) await sh(`fusermount -uz '${mountpoint}' || umount -l '${mountpoint}'`)
}

/** Stops the cluster whoever still uses it (a failed or interrupted run). */
export async function stopSharedCluster(): Promise<void> {
  if (!shared) return
  const { up, mountpoint } = shared
  shared = null
  const running = await up.catch(() => null)
  if (running) await stopUp(running)
  if (await isMounted(mountpoint)) await sh(`fusermount -uz '${mountpoint}' || umount -l '${mountpoint}'`)
}

export const blobfsCluster: BlobfsFactory = async (mountpoint, workDir) => {
  const up = await acquireCluster(workDir, mountpoint)
  return { label: 'blobfs (blobfs up, 12 nodes)', dir: mountpoint, cpuGroups: () => blobfsUpGroups(up.child.pid!), stop: releaseCluster }
}

export const blobfsGateway: S3PortFactory = async (workDir) => {
  const up = await acquireCluster(workDir, shared?.mountpoint ?? join(workDir, 'mnt-blobfs'))
  const created = await sh(`${process.execPath} ${blobfsBin} bucket create bench --catalog '${up.cluster.catalogUrl}'`)
  if (created.code !== 0) {
    await releaseCluster()
    throw new Error(`could not create bucket bench: ${created.stderr}`)
  }
  return {
    label: "s3fs over blobfs's S3 port",
    endpoint: up.cluster.gatewayUrl!,
    accessKey: up.credentials.accessKeyId,
    secretKey: up.credentials.secretAccessKey,
    bucket: 'bench',
    cpuGroups: () => blobfsUpGroups(up.child.pid!),
    stop: releaseCluster,
  }
}

export const blobfsTarget: BlobfsFactory = blobfsCluster
export const s3PortTarget: S3PortFactory | null = blobfsGateway

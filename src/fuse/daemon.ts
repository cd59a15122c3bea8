// The FUSE daemon as a library: give it an object layer, a bucket (and prefix) and
// a mountpoint; it mounts, serves, and unmounts cleanly. The `blobfs mount` command
// (src/cli/commands/mount.ts) is one caller; `blobfs up --mount` is meant to be
// another. Kernel-side options are chosen here, with the reasons beside them.
import assert from 'node:assert/strict'
import { readFile, stat } from 'node:fs/promises'
import { resolve, sep } from 'node:path'
import { Gauge, Registry } from 'prom-client'
import { fuseBindingTimeoutMarginMs, fuseMountWatchIntervalMs, fuseMaxReadBytes, fuseMaxWriteBytes, fuseOpTimeoutMsDefault, fuseTransferTimeoutMsDefault } from '../limits.ts'
import { logger, type Logger } from '../log.ts'
import { registerObjectLayerMetrics } from '../objects/metrics.ts'
import type { ObjectLayer } from '../objects/types.ts'
import { fuseOperations, transferOps } from './adapter.ts'
import { bindingAnswersFollowUpGetattr, bindingTakesDirectIo, bindingTakesKeepCache, loadFuse, type FuseInstance } from './binding.ts'
import { BlobFs, fsConfig, type FsConfig } from './fs.ts'

export interface FuseDaemonOptions {
  objects: ObjectLayer
  bucket: string
  /** Key prefix shown as the mount's root ('' for the whole bucket). */
  prefix?: string
  mountpoint: string
  /** Cache TTLs, cache and spool sizes, default owner and modes (fs.ts, FsConfig). */
  fs?: Partial<Omit<FsConfig, 'objects' | 'bucket' | 'prefix' | 'log'>>
  /** Let other users than the mounting one in (needs user_allow_other in /etc/fuse.conf for non-root). */
  allowOther?: boolean
  /** libfuse's own request trace on stderr. */
  debug?: boolean
  opTimeoutMs?: number
  transferTimeoutMs?: number
  log?: Logger
  registry?: Registry
}

export interface FuseDaemon {
  readonly fs: BlobFs
  readonly registry: Registry
  readonly mountpoint: string
  /** Resolves once the mountpoint answers. */
  mount(): Promise<void>
  /** Detaches the mount (lazily, like `fusermount -uz`), then uploads files still open with changes. */
  unmount(): Promise<void>
  /** Resolves once the mount is gone: by unmount(), or by `blobfs umount` / fusermount from outside. */
  readonly unmounted: Promise<void>
}

/** /proc/mounts writes space, tab, newline and backslash in octal. */
function procMountsPath(path: string): string {
  return path.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`)
}

export async function isMountedAt(mountpoint: string): Promise<boolean> {
  const table = await readFile('/proc/mounts', 'utf8')
  const wanted = procMountsPath(mountpoint)
  return table.split('\n').some((line) => line.split(' ')[1] === wanted)
}

/** fsname= and subtype= end up in /proc/mounts: no commas, spaces or backslashes there. */
function mountTableSafe(text: string): string {
  return text.replace(/[,\s\\]/g, '_')
}

export function createFuseDaemon(options: FuseDaemonOptions): FuseDaemon {
  const log = options.log ?? logger('fuse')
  const mountpoint = resolve(options.mountpoint)
  const registry = options.registry ?? new Registry()
  const config = fsConfig({ ...options.fs, objects: options.objects, bucket: options.bucket, prefix: options.prefix ?? '', log })
  const spoolDir = resolve(config.spoolDir)
  // A spool inside the mount would make the daemon wait on itself.
  assert.ok(spoolDir !== mountpoint && !spoolDir.startsWith(mountpoint + sep), `the spool directory ${spoolDir} must be outside the mountpoint`)
  const fs = new BlobFs(config)
  const opTimeoutMs = options.opTimeoutMs ?? fuseOpTimeoutMsDefault
  const transferTimeoutMs = options.transferTimeoutMs ?? fuseTransferTimeoutMsDefault
  assert.ok(opTimeoutMs > 0 && transferTimeoutMs >= opTimeoutMs)

  registerObjectLayerMetrics(registry, options.objects)
  new Gauge({
    name: 'blobfs_fuse_open_files',
    help: 'files open for writing',
    registers: [registry],
    collect() {
      this.set(fs.gauges.openFiles)
    },
  })
  new Gauge({
    name: 'blobfs_fuse_spool_memory_bytes',
    help: 'bytes of write spools held in memory',
    registers: [registry],
    collect() {
      this.set(fs.gauges.spoolMemoryBytes)
    },
  })
  new Gauge({
    name: 'blobfs_fuse_block_cache_bytes',
    help: 'bytes in the read block cache',
    registers: [registry],
    collect() {
      this.set(fs.gauges.blockCacheBytes)
    },
  })

  new Gauge({
    name: 'blobfs_fuse_readahead_in_flight_bytes',
    help: 'bytes of readahead fetches not yet in (all sequential readers)',
    registers: [registry],
    collect() {
      this.set(fs.reader.readaheadBytesInFlight)
    },
  })
  new Gauge({
    name: 'blobfs_fuse_block_reads',
    help: 'blocks asked for by reads, by where they were: hit (cached), wait (being fetched), miss (fetched for the read)',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      const { hits, waits, misses } = fs.reader.stats
      this.set({ result: 'hit' }, hits)
      this.set({ result: 'wait' }, waits)
      this.set({ result: 'miss' }, misses)
    },
  })

  // Attributes are cached in the kernel only when an open can ask for direct I/O (close-to-open).
  const directIo = bindingTakesDirectIo()
  if (!directIo) log.warn('the FUSE binding predates direct I/O opens: attributes are not cached in the kernel (run `npm run build:fuse`)')
  // An open of the version whose pages the kernel holds keeps them (fs.ts, kernelVersions).
  const keepCache = bindingTakesKeepCache()
  if (!keepCache) log.warn('the FUSE binding predates keep_cache opens: the kernel drops a file\'s pages at every open (run `npm run build:fuse`)')
  const followUpAttrs = bindingAnswersFollowUpGetattr()
  if (!followUpAttrs) log.warn('the FUSE binding predates answered attributes: every create, mkdir, chmod, chown, truncate and utimens costs a second call for its getattr (run `npm run build:fuse`)')
  const ops = fuseOperations({ fs, log, registry, opTimeoutMs, transferTimeoutMs, directIo, keepCache, followUpAttrs })

  // fuse-native gives up on an op after its own timeout; ours must always fire first.
  const bindingTimeouts: Record<string, number> = { default: opTimeoutMs + fuseBindingTimeoutMarginMs }
  for (const op of transferOps) bindingTimeouts[op] = transferTimeoutMs + fuseBindingTimeoutMarginMs

  const ttlSeconds = (config.attrTtlMs / 1000).toFixed(3)
  const kernelOptions = [
    // Requests up to 128 KiB both ways (libfuse 2 sends 4 KiB writes without big_writes).
    'big_writes',
    `max_write=${fuseMaxWriteBytes}`,
    `max_readahead=${8 * fuseMaxReadBytes}`,
    // open(O_TRUNC) arrives as such, instead of open + truncate (which would load the old bytes first).
    'atomic_o_trunc',
    // Names and attributes are cached by the kernel for the TTL: tar x, ls -lR and rsync
    // stat every path they touch, and with default_permissions every directory of a path
    // is checked; without this each of those is a round trip to the daemon. open() still
    // revalidates (close-to-open): an open that finds another size than the kernel holds
    // reads with direct I/O (fs.ts, kernelSizes). Missing names are not cached.
    `entry_timeout=${ttlSeconds}`,
    `attr_timeout=${directIo ? ttlSeconds : '0'}`,
    'negative_timeout=0',
  ]

  let fuse: FuseInstance | null = null
  let watch: NodeJS.Timeout | null = null
  let markUnmounted!: () => void
  const unmounted = new Promise<void>((resolvePromise) => (markUnmounted = resolvePromise))

  async function detach(instance: FuseInstance, external: boolean): Promise<void> {
    if (watch) clearInterval(watch)
    watch = null
    if (!external) await new Promise<void>((resolvePromise, reject) => instance.unmount((error) => (error ? reject(error) : resolvePromise())))
    await fs.shutdown()
    log.info({ mountpoint, external }, 'unmounted')
    markUnmounted()
  }

  return {
    fs,
    registry,
    mountpoint,
    unmounted,
    async mount() {
      assert.equal(fuse, null, 'already mounted')
      const Fuse = loadFuse()
      const fsname = mountTableSafe(`blobfs:${options.bucket}${config.prefix ? `/${config.prefix.slice(0, -1)}` : ''}`)
      class BlobfsFuse extends (Fuse as unknown as new (m: string, o: Record<string, unknown>, p: Record<string, unknown>) => FuseInstance) {
        override _fuseOptions(): string {
          const base = super._fuseOptions().replace(/^-o/, '')
          return `-o${[base, ...kernelOptions].filter(Boolean).join(',')}`
        }
      }
      const instance = new BlobfsFuse(mountpoint, ops, {
        force: true, // a mount left by a killed daemon is unmounted first
        mkdir: false,
        debug: options.debug ?? false,
        allowOther: options.allowOther ?? false,
        defaultPermissions: true, // the kernel checks modes against what getattr answers
        maxRead: fuseMaxReadBytes,
        fsname,
        subtype: 'blobfs',
        timeout: bindingTimeouts,
      })
      await new Promise<void>((resolvePromise, reject) => instance.mount((error) => (error ? reject(error) : resolvePromise())))
      fuse = instance
      // Asynchronous on purpose: a synchronous call on our own mount would deadlock.
      await stat(mountpoint)
      log.info({ mountpoint, bucket: options.bucket, prefix: config.prefix }, 'mounted')
      // fuse-native says nothing when fusermount -u comes from outside: look for ourselves.
      watch = setInterval(() => {
        isMountedAt(mountpoint).then(
          (mounted) => {
            if (mounted || fuse !== instance) return
            fuse = null
            void detach(instance, true)
          },
          (error: unknown) => log.warn({ err: error }, 'could not read /proc/mounts'),
        )
      }, fuseMountWatchIntervalMs)
      watch.unref()
    },
    async unmount() {
      const instance = fuse
      if (!instance) return
      fuse = null
      await detach(instance, false)
    },
  }
}

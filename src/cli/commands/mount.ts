// `blobfs mount BUCKET[/PREFIX] MOUNTPOINT` and `blobfs umount MOUNTPOINT`: the FUSE
// daemon as a command. The command is built around an object-layer factory (how to
// reach the catalog and the nodes is not the daemon's business), so `blobfs up`, the
// tests and the real catalog-backed layer all plug in the same way. Without
// --foreground it starts itself again in the background and returns once the mount
// answers (what mount(8) and fstab need). SIGINT/SIGTERM unmount cleanly.
import { spawn, spawnSync } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Argv, CommandModule } from 'yargs'
import { BlobfsError } from '../../errors.ts'
import { createFuseDaemon } from '../../fuse/daemon.ts'
import { normalizePrefix } from '../../fuse/fs.ts'
import { fuseAttrTtlMsDefault, fuseBlockCacheBytesDefault, fuseSpoolMemoryBytesPerFileDefault, fuseSpoolMemoryBytesTotalDefault, units } from '../../limits.ts'
import { configureLogging, logger } from '../../log.ts'
import type { ObjectLayer } from '../../objects/types.ts'
import { openObjectLayer } from '../cluster.ts'

/** Opens the object layer named by --catalog / --data; `close` releases it at unmount. */
export type ObjectLayerFactory = (where: { catalog?: string; data?: string }) => Promise<{ objects: ObjectLayer; close(): Promise<void> }>

export interface MountArgs {
  target: string
  mountpoint: string
  catalog?: string
  data?: string
  foreground: boolean
  'allow-other': boolean
  'cache-ttl-ms': number
  'cache-mib': number
  'spool-dir'?: string
  'spool-memory-mib': number
  'spool-memory-total-mib': number
  uid?: number
  gid?: number
  'file-mode': string
  'dir-mode': string
  metrics?: string
  'log-level': string
  'log-file'?: string
  debug: boolean
}

/** BUCKET[/PREFIX] as given on the command line or in fstab's first field. */
export function parseMountTarget(target: string): { bucket: string; prefix: string } {
  const trimmed = target.replace(/^\/+/, '')
  const cut = trimmed.indexOf('/')
  const bucket = cut < 0 ? trimmed : trimmed.slice(0, cut)
  if (bucket === '') throw new BlobfsError('InvalidArgument', `no bucket in "${target}" (expected BUCKET or BUCKET/PREFIX)`)
  return { bucket, prefix: normalizePrefix(cut < 0 ? '' : trimmed.slice(cut + 1)) }
}

function parseMode(text: string, name: string): number {
  if (!/^[0-7]{3,4}$/.test(text)) throw new BlobfsError('InvalidArgument', `--${name} takes an octal mode such as 644, not "${text}"`)
  return parseInt(text, 8)
}

/**
 * Starts the same command with --foreground in the background, its stderr (the log)
 * in a file, so nothing the caller waits on stays open; resolves once the child
 * printed its ready line, or fails with the child's log if it exits first.
 */
async function daemonize(logFile: string): Promise<void> {
  const logFd = openSync(logFile, 'a', 0o600)
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1), '--foreground'], {
    detached: true,
    stdio: ['ignore', 'pipe', logFd],
  })
  closeSync(logFd)
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = ''
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString()
        const newline = out.indexOf('\n')
        if (newline >= 0) resolve(out.slice(0, newline))
      })
      child.once('exit', (code, signal) => reject(new Error(`the mount daemon exited (${signal ?? `status ${code}`}) before the mount answered`)))
    })
    console.log(`${line} (log: ${logFile})`)
  } catch (error) {
    process.stderr.write(await readFile(logFile, 'utf8').catch(() => ''))
    throw error
  } finally {
    child.stdout!.destroy()
    child.unref()
  }
}

function serveMetrics(address: string, registry: { metrics(): Promise<string>; contentType: string }): Server {
  const cut = address.lastIndexOf(':')
  const host = cut > 0 ? address.slice(0, cut) : '127.0.0.1'
  const port = Number(cut >= 0 ? address.slice(cut + 1) : address)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new BlobfsError('InvalidArgument', `--metrics takes HOST:PORT, not "${address}"`)
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end()
      return
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      () => res.writeHead(500).end(),
    )
  })
  server.listen(port, host)
  return server
}

export function createMountCommand(openObjects: ObjectLayerFactory): CommandModule<object, MountArgs> {
  return {
    command: 'mount <target> <mountpoint>',
    describe: 'mount a bucket (or a prefix of it) as a directory through FUSE',
    builder: (yargs: Argv<object>) =>
      yargs
        .positional('target', { type: 'string', demandOption: true, describe: 'BUCKET or BUCKET/PREFIX' })
        .positional('mountpoint', { type: 'string', demandOption: true, describe: 'an existing empty directory' })
        .option('catalog', { type: 'string', describe: 'catalog URL (postgres://...), as printed by `blobfs up`' })
        .option('data', { type: 'string', describe: 'data directory of a `blobfs up` cluster, to find its catalog' })
        .option('foreground', { alias: 'f', type: 'boolean', default: false, describe: 'stay in the foreground (systemd, debugging)' })
        .option('allow-other', { type: 'boolean', default: false, describe: 'let other users in (non-root needs user_allow_other in /etc/fuse.conf)' })
        .option('cache-ttl-ms', { type: 'number', default: fuseAttrTtlMsDefault, describe: 'how long attributes and listings are trusted; open() always asks again' })
        .option('cache-mib', { type: 'number', default: fuseBlockCacheBytesDefault / units.MiB, describe: 'read cache size, MiB' })
        .option('spool-dir', { type: 'string', describe: 'local directory for write spools past the memory bound (default: the temp dir)' })
        .option('spool-memory-mib', { type: 'number', default: fuseSpoolMemoryBytesPerFileDefault / units.MiB, describe: 'per-file write spool kept in memory, MiB' })
        .option('spool-memory-total-mib', { type: 'number', default: fuseSpoolMemoryBytesTotalDefault / units.MiB, describe: 'all write spools in memory together, MiB' })
        .option('uid', { type: 'number', describe: 'owner shown for objects without POSIX attributes (default: yours)' })
        .option('gid', { type: 'number', describe: 'group shown for objects without POSIX attributes (default: yours)' })
        .option('file-mode', { type: 'string', default: '644', describe: 'mode shown for files without POSIX attributes' })
        .option('dir-mode', { type: 'string', default: '755', describe: 'mode shown for directories without markers' })
        .option('metrics', { type: 'string', describe: 'serve Prometheus metrics on HOST:PORT/metrics' })
        .option('log-level', { type: 'string', default: 'info', choices: ['debug', 'info', 'warn', 'error', 'silent'] })
        .option('log-file', { type: 'string', describe: 'where a background mount logs (default: blobfs-mount-MOUNTPOINT.log in the temp dir)' })
        .option('debug', { type: 'boolean', default: false, describe: "libfuse's request trace on stderr" })
        .example('$0 mount photos /mnt/photos --catalog postgres://root@db:26257/blobfs', 'the whole bucket "photos", in the background')
        .example('$0 mount photos/2024 /mnt/2024 --data ./blobfs-data -f', 'one prefix of it, from a local `blobfs up`, in the foreground')
        .example('$0 umount /mnt/photos', 'unmount it again')
        .example('mount -t fuse.blobfs photos /mnt/photos -o catalog=postgres://...', 'through mount(8) and mount/mount.fuse.blobfs (fstab too)'),
    handler: async (args) => {
      if (!args.foreground) {
        const name = args.mountpoint.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+/, '')
        return daemonize(args['log-file'] ?? join(tmpdir(), `blobfs-mount-${name}.log`))
      }
      configureLogging({ level: args['log-level'], name: 'blobfs-mount' })
      const log = logger('fuse')
      const { bucket, prefix } = parseMountTarget(args.target)
      const layer = await openObjects({ catalog: args.catalog, data: args.data })
      await layer.objects.getBucket(bucket) // NoSuchBucket now rather than at the first ls
      const daemon = createFuseDaemon({
        objects: layer.objects,
        bucket,
        prefix,
        mountpoint: args.mountpoint,
        allowOther: args['allow-other'],
        debug: args.debug,
        log,
        fs: {
          attrTtlMs: args['cache-ttl-ms'],
          dirTtlMs: args['cache-ttl-ms'],
          blockCacheBytes: Math.round(args['cache-mib'] * units.MiB),
          spoolMemoryBytesPerFile: Math.round(args['spool-memory-mib'] * units.MiB),
          spoolMemoryBytesTotal: Math.round(args['spool-memory-total-mib'] * units.MiB),
          ...(args['spool-dir'] ? { spoolDir: args['spool-dir'] } : {}),
          ...(args.uid !== undefined ? { uid: args.uid } : {}),
          ...(args.gid !== undefined ? { gid: args.gid } : {}),
          fileMode: parseMode(args['file-mode'], 'file-mode'),
          dirMode: parseMode(args['dir-mode'], 'dir-mode'),
        },
      })
      const metrics = args.metrics ? serveMetrics(args.metrics, daemon.registry) : null
      let stopping: Promise<void> | null = null
      const stop = (signal: string): void => {
        if (stopping) {
          log.warn({ signal }, 'second signal: exiting without waiting for uploads')
          process.exit(1)
        }
        log.info({ signal }, 'unmounting')
        stopping = (async () => {
          let status = 0
          try {
            await daemon.unmount()
          } catch (error) {
            log.error({ err: error }, 'unmount failed')
            status = 1
          }
          metrics?.close()
          await layer.close().catch((error: unknown) => log.error({ err: error }, 'closing the object layer failed'))
          process.exit(status)
        })()
      }
      process.on('SIGINT', () => stop('SIGINT'))
      process.on('SIGTERM', () => stop('SIGTERM'))
      await daemon.mount()
      void daemon.unmounted.then(() => {
        if (stopping) return
        log.info('unmounted from outside (blobfs umount / fusermount -u): exiting')
        metrics?.close()
        void layer.close().finally(() => process.exit(0))
      })
      console.log(`blobfs mount ready: ${bucket}${prefix ? `/${prefix.slice(0, -1)}` : ''} on ${daemon.mountpoint}`)
    },
  }
}

interface UmountArgs {
  mountpoint: string
  lazy: boolean
}

export const umountCommand: CommandModule<object, UmountArgs> = {
  command: 'umount <mountpoint>',
  describe: 'unmount a blobfs mount (the daemon uploads what is still open, then exits)',
  builder: (yargs) =>
    yargs
      .positional('mountpoint', { type: 'string', demandOption: true })
      .option('lazy', { alias: 'z', type: 'boolean', default: false, describe: 'detach now even if files are open (fusermount -z)' })
      .example('$0 umount /mnt/photos', 'unmount; fails while files are open there')
      .example('$0 umount -z /mnt/photos', 'detach at once; open files keep working until closed'),
  handler: (args) => {
    const result = spawnSync('fusermount', ['-u', ...(args.lazy ? ['-z'] : []), args.mountpoint], { stdio: 'inherit' })
    if (result.error) {
      console.error(`blobfs umount: could not run fusermount (${result.error.message}); install the Debian package "fuse"`)
      process.exitCode = 1
      return
    }
    process.exitCode = result.status ?? 1
  },
}

export const mountCommand = createMountCommand(openObjectLayer)

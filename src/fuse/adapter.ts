// The thin adapter between fuse-native's callbacks and the semantics in fs.ts
// (mountpoint-s3's fuse.rs). Each handler replies exactly once, never throws into
// the binding, and answers before fuse-native's own per-op timeout: a deadline of
// ours, shorter than the binding's, replies ETIMEDOUT itself (STYLE.md item 10).
// Every failure goes through `fail`: one place that maps, logs, counts and replies.
import { constants } from 'node:fs'
import { Counter, Histogram, type Registry } from 'prom-client'
import { fuseMaxWriteBytes } from '../limits.ts'
import type { Logger } from '../log.ts'
import { errno, fsError, toFsError, type FsError } from './errno.ts'
import type { BlobFs, Stat } from './fs.ts'

/** UTIME_OMIT and UTIME_NOW as the patched binding passes them (src/fuse/binding/build.mjs). */
export const utimeOmitMs = 2 ** 52 + 1
export const utimeNowMs = 2 ** 52 + 2
/** Set in the handle an open answers: the binding opens that file with direct I/O (src/fuse/binding/build.mjs). */
export const directIoFlag = 0x40000000
/** Set in the handle an open answers: the kernel keeps the file's page cache (keep_cache; src/fuse/binding/build.mjs). */
export const keepCacheFlag = 0x20000000

/** fuse-native's reply: a status (0, a byte count, or -errno) then values. */
type Reply = (status: number, ...values: unknown[]) => void

export interface AdapterOptions {
  fs: BlobFs
  log: Logger
  registry: Registry
  /** Deadline of metadata operations and reads. */
  opTimeoutMs: number
  /** Deadline of operations that may upload or load a whole file. */
  transferTimeoutMs: number
  /** The binding takes directIoFlag in an open's handle (binding.ts, bindingTakesDirectIo). */
  directIo?: boolean
  /** The binding takes keepCacheFlag in an open's handle (binding.ts, bindingTakesKeepCache). */
  keepCache?: boolean
  /**
   * The binding takes a stat with the reply of create, mkdir, chmod, chown,
   * truncate, ftruncate and utimens, and answers libfuse's getattr that follows from it
   * (binding.ts, bindingAnswersFollowUpGetattr).
   */
  followUpAttrs?: boolean
}

/** Operations that may move a whole file's bytes (upload on close, load before a change). */
export const transferOps = ['flush', 'fsync', 'release', 'write', 'truncate', 'ftruncate', 'rename', 'open', 'create'] as const

/** Errors that are answers, not failures: logged at debug. */
const expectedErrnos = new Set([errno.ENOENT, errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR, errno.EINVAL, errno.ENAMETOOLONG, errno.EXDEV, errno.EPERM, errno.EACCES, errno.ELOOP])

export interface AdapterMetrics {
  ops: Counter<'op'>
  errors: Counter<'op' | 'errno'>
  seconds: Histogram<'op'>
  /** getattrs answered with the operation libfuse makes them after (no call of their own). */
  followUpAttrs: Counter<'op'>
}

export function adapterMetrics(registry: Registry): AdapterMetrics {
  return {
    ops: new Counter({ name: 'blobfs_fuse_ops_total', help: 'FUSE operations answered', labelNames: ['op'], registers: [registry] }),
    errors: new Counter({ name: 'blobfs_fuse_errors_total', help: 'FUSE operations answered with an error', labelNames: ['op', 'errno'], registers: [registry] }),
    seconds: new Histogram({
      name: 'blobfs_fuse_op_seconds',
      help: 'time to answer a FUSE operation',
      labelNames: ['op'],
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers: [registry],
    }),
    followUpAttrs: new Counter({
      name: 'blobfs_fuse_followup_getattr_answered_total',
      help: 'getattrs libfuse makes right after an operation, answered with that operation\'s reply instead of a call of their own',
      labelNames: ['op'],
      registers: [registry],
    }),
  }
}

function statOf(stat: Stat): Record<string, number> {
  // The binding carries whole milliseconds to the kernel (it would drop a fraction
  // itself): floored here, the one place, so a stored time always reads the same.
  const mtimeMs = Math.floor(stat.mtimeMs)
  return {
    mode: stat.mode,
    size: stat.sizeBytes,
    uid: stat.uid,
    gid: stat.gid,
    mtime: mtimeMs,
    atime: mtimeMs,
    ctime: Math.floor(stat.ctimeMs),
    nlink: stat.nlink,
    blocks: Math.ceil(stat.sizeBytes / 512),
    blksize: fuseMaxWriteBytes,
  }
}

/** The handler table for fuse-native. */
export function fuseOperations(options: AdapterOptions): Record<string, unknown> {
  const { fs, log } = options
  const metrics = adapterMetrics(options.registry)
  const transfer = new Set<string>(transferOps)
  const directIo = options.directIo ?? false
  const keepCache = options.keepCache ?? false
  const followUpAttrs = options.followUpAttrs ?? false

  /**
   * After a successful `op` on `path`, the attributes libfuse's next getattr of it
   * would answer, sent with the op's reply: the binding answers that getattr from
   * them without a call here (src/fuse/binding/build.mjs, attrMemoPatches). Same
   * fs.getattr as that call, so the same answer and the same bookkeeping
   * (kernelSizes). If it fails the reply carries none, and libfuse's getattr comes
   * here and answers (or fails) on its own: the op itself did succeed.
   */
  async function attrsAfter(op: string, path: string): Promise<Record<string, number> | undefined> {
    if (!followUpAttrs) return undefined
    try {
      const stat = statOf(await fs.getattr(path))
      metrics.followUpAttrs.inc({ op })
      return stat
    } catch {
      return undefined
    }
  }
  /**
   * serve for an operation libfuse follows with a getattr of `path`: its success carries
   * the attributes after it when there are some (a reply exactly as before the patch otherwise).
   */
  function serveWithAttrs(op: string, path: string, reply: Reply, work: () => Promise<unknown>): void {
    serve(
      op,
      path,
      reply,
      async () => {
        await work()
        return attrsAfter(op, path)
      },
      (stat) => (stat ? [0, stat] : [0]),
    )
  }

  function fail(op: string, path: string, error: unknown, reply: Reply): void {
    const fsErr: FsError & { unmapped?: true } = toFsError(error, `${op} ${path}`)
    metrics.errors.inc({ op, errno: fsErr.errnoName })
    const fields = { op, path, errno: fsErr.errnoName, code: fsErr.code ?? undefined, err: fsErr.cause ?? fsErr }
    if (fsErr.unmapped) log.error(fields, `${fsErr.message} (unmapped error, answered EIO)`)
    else if (expectedErrnos.has(fsErr.errno)) log.debug(fields, fsErr.message)
    else log.warn(fields, fsErr.message)
    reply(-fsErr.errno)
  }

  /** Runs `work` and replies once: with `ok(value)`, with its error, or with ETIMEDOUT at the deadline. */
  function serve<T>(op: string, path: string, reply: Reply, work: () => Promise<T>, ok: (value: T) => unknown[] = () => [0]): void {
    let replied = false
    const started = process.hrtime.bigint()
    const finish = (error: unknown, value?: T): void => {
      if (replied) return
      replied = true
      clearTimeout(deadline)
      metrics.ops.inc({ op })
      metrics.seconds.observe({ op }, Number(process.hrtime.bigint() - started) / 1e9)
      if (error !== null) return fail(op, path, error, reply)
      let answer: unknown[]
      try {
        answer = ok(value as T)
      } catch (caught) {
        return fail(op, path, caught, reply)
      }
      const [status, ...values] = answer as [number, ...unknown[]]
      reply(status, ...values)
    }
    const timeoutMs = transfer.has(op) ? options.transferTimeoutMs : options.opTimeoutMs
    const deadline = setTimeout(() => finish(fsError(errno.ETIMEDOUT, `${op} ${path}: no answer within ${timeoutMs} ms`)), timeoutMs)
    try {
      work().then(
        (value) => finish(null, value),
        (error: unknown) => finish(error ?? new Error('rejected without a reason')),
      )
    } catch (error) {
      finish(error)
    }
  }

  return {
    init(reply: Reply) {
      reply(0)
    },
    getattr(path: string, reply: Reply) {
      serve('getattr', path, reply, () => fs.getattr(path), (stat) => [0, statOf(stat)])
    },
    access(path: string, mode: number, reply: Reply) {
      serve('access', path, reply, () => fs.access(path, mode))
    },
    statfs(path: string, reply: Reply) {
      serve('statfs', path, reply, () => fs.statfs(), (s) => [
        0,
        {
          bsize: s.blockSizeBytes,
          frsize: s.blockSizeBytes,
          blocks: s.blocks,
          bfree: s.blocksFree,
          bavail: s.blocksFree,
          files: s.files,
          ffree: s.filesFree,
          favail: s.filesFree,
          fsid: 0,
          flag: 0,
          namemax: s.nameBytesMax,
        },
      ])
    },
    readdir(path: string, reply: Reply) {
      // fuse-native takes the whole list at once (libfuse 2's readdir without offsets):
      // only names are held, pages of object records are dropped as they are read.
      serve('readdir', path, reply, async () => {
        const names = ['.', '..']
        for await (const page of fs.readdir(path)) names.push(...page)
        return names
      }, (names) => [0, names])
    },
    readlink(path: string, reply: Reply) {
      serve('readlink', path, reply, () => fs.readlink(path), (target) => [0, target])
    },
    mkdir(path: string, mode: number, reply: Reply) {
      serveWithAttrs('mkdir', path, reply, () => fs.mkdir(path, mode))
    },
    rmdir(path: string, reply: Reply) {
      serve('rmdir', path, reply, () => fs.rmdir(path))
    },
    unlink(path: string, reply: Reply) {
      serve('unlink', path, reply, () => fs.unlink(path))
    },
    rename(from: string, to: string, reply: Reply) {
      serve('rename', `${from} -> ${to}`, reply, () => fs.rename(from, to))
    },
    link(from: string, to: string, reply: Reply) {
      serve('link', `${from} -> ${to}`, reply, () => fs.link(from, to))
    },
    // fuse-native passes (target, linkPath), as libfuse's symlink(from, to).
    symlink(target: string, path: string, reply: Reply) {
      serve('symlink', path, reply, () => fs.symlink(target, path))
    },
    mknod(path: string, mode: number, _dev: number, reply: Reply) {
      serve('mknod', path, reply, async () => {
        if ((mode & constants.S_IFMT) !== constants.S_IFREG) throw fsError(errno.EPERM, `${path}: only regular files can be created (no devices, FIFOs or sockets)`)
        const fh = await fs.create(path, mode)
        await fs.release(fh)
      })
    },
    chmod(path: string, mode: number, reply: Reply) {
      serveWithAttrs('chmod', path, reply, () => fs.chmod(path, mode))
    },
    chown(path: string, uid: number, gid: number, reply: Reply) {
      serveWithAttrs('chown', path, reply, () => fs.chown(path, uid, gid))
    },
    utimens(path: string, atimeMs: number, mtimeMs: number, reply: Reply) {
      serveWithAttrs('utimens', path, reply, async () => {
        // Only atime, which is not kept: nothing changes, but libfuse still asks getattr.
        if (mtimeMs !== utimeOmitMs) await fs.utimens(path, atimeMs, mtimeMs === utimeNowMs ? Date.now() : mtimeMs)
      })
    },
    truncate(path: string, size: number, reply: Reply) {
      serveWithAttrs('truncate', path, reply, () => fs.truncate(path, size))
    },
    ftruncate(path: string, fh: number, size: number, reply: Reply) {
      serveWithAttrs('ftruncate', path, reply, () => fs.ftruncate(fh, size))
    },
    open(path: string, flags: number, reply: Reply) {
      serve('open', path, reply, () => fs.open(path, flags), (fh) => {
        let answer = fh
        if (directIo && fs.directIo(fh)) answer |= directIoFlag
        if (keepCache && fs.keepCache(fh)) answer |= keepCacheFlag
        return [0, answer]
      })
    },
    create(path: string, mode: number, reply: Reply) {
      serve('create', path, reply, async () => {
        const fh = await fs.create(path, mode)
        return { fh, stat: await attrsAfter('create', path) }
      }, ({ fh, stat }) => (stat ? [0, fh, stat] : [0, fh]))
    },
    read(path: string, fh: number, buffer: Buffer, length: number, position: number, reply: Reply) {
      // The buffer is the kernel's: it is written only here, at the reply, never after.
      serve('read', path, reply, () => fs.read(fh, length, position), (data) => [data.copy(buffer, 0, 0, Math.min(length, data.length))])
    },
    write(path: string, fh: number, buffer: Buffer, length: number, position: number, reply: Reply) {
      // Copied before anything waits: the binding's buffer is not ours once we reply.
      const data = Buffer.from(buffer.subarray(0, length))
      serve('write', path, reply, () => fs.write(fh, data, position), (written) => [written])
    },
    flush(path: string, fh: number, reply: Reply) {
      serve('flush', path, reply, () => fs.flush(fh))
    },
    // fuse-native passes (path, datasync, fh), not the README's order.
    fsync(path: string, _datasync: number, fh: number, reply: Reply) {
      serve('fsync', path, reply, () => fs.fsync(fh))
    },
    release(path: string, fh: number, reply: Reply) {
      serve('release', path, reply, () => fs.release(fh))
    },
  }
}

// The file semantics of a blobfs mount, written against the ObjectLayer contract and
// knowing nothing of the FUSE binding (mountpoint-s3's fs.rs; adapter.ts is the thin
// fuse.rs). Paths map to keys with '/' as the separator under the mount's prefix;
// directories are implied by key prefixes, and mkdir writes a `dir/` marker so an
// empty directory persists. Files are read through range reads (block-reader.ts) and
// written through a spool uploaded whole on flush/fsync/release (spool.ts). Every
// POSIX behaviour, and where it departs from POSIX, is in docs/posix-semantics.md.
//
// Every public method resolves, or rejects with an FsError carrying the errno.
import assert from 'node:assert/strict'
import { constants } from 'node:fs'
import { tmpdir } from 'node:os'
import { LRUCache } from 'lru-cache'
import { isBlobfsError } from '../errors.ts'
import {
  fuseAttrCacheEntriesMax,
  fuseAttrTtlMsDefault,
  fuseBlockCacheBytesDefault,
  fuseBlockSizeBytesDefault,
  fuseDirCacheDirsMax,
  fuseDirCacheNamesMax,
  fuseNameBytesMax,
  fuseReadaheadBytesDefault,
  fuseReadaheadInFlightBytesMax,
  fuseSpoolMemoryBytesPerFileDefault,
  fuseSpoolMemoryBytesTotalDefault,
  fuseStreamUploadStartBytesDefault,
  fuseUploadPieceBytes,
  keyLengthBytesMax,
  listPageKeysMax,
  stripeSizeBytesDefault,
} from '../limits.ts'
import { logger, type Logger } from '../log.ts'
import type { ListedObjectInfo, ObjectInfo, ObjectLayer, PosixAttributes, WriteOptions } from '../objects/types.ts'
import { BlockReader, type ObjectVersion, type ReadStream } from './block-reader.ts'
import { errno, fsError, toFsError, type FsError } from './errno.ts'
import { Spool, SpoolBudget } from './spool.ts'

const { S_IFREG, S_IFDIR, S_IFLNK, O_RDONLY, O_TRUNC } = constants
/** Linux only; elsewhere no open carries it. */
const O_DIRECT = constants.O_DIRECT ?? 0
const O_ACCMODE = 3 // not in node's fs.constants; the same on every Linux architecture

export interface FsConfig {
  objects: ObjectLayer
  bucket: string
  /** Key prefix the mount shows as its root: '' or ending in '/'. */
  prefix: string
  attrTtlMs: number
  dirTtlMs: number
  blockSizeBytes: number
  blockCacheBytes: number
  stripeSizeBytes: number
  readaheadBytes: number
  spoolMemoryBytesPerFile: number
  spoolMemoryBytesTotal: number
  spoolDir: string
  /** A file written front to back starts uploading once it holds this many bytes (see StreamingUpload). */
  streamUploadStartBytes: number
  /** Owner and modes of entries that carry no POSIX attributes (written over S3). */
  uid: number
  gid: number
  fileMode: number
  dirMode: number
  /** Milliseconds since the epoch; tests pass their own clock to step TTLs without waiting. */
  now: () => number
  log: Logger
}

export function fsConfig(options: Partial<FsConfig> & Pick<FsConfig, 'objects' | 'bucket'>): Readonly<FsConfig> {
  const prefix = normalizePrefix(options.prefix ?? '')
  const config: FsConfig = {
    attrTtlMs: fuseAttrTtlMsDefault,
    dirTtlMs: fuseAttrTtlMsDefault,
    blockSizeBytes: fuseBlockSizeBytesDefault,
    blockCacheBytes: fuseBlockCacheBytesDefault,
    stripeSizeBytes: stripeSizeBytesDefault,
    readaheadBytes: fuseReadaheadBytesDefault,
    spoolMemoryBytesPerFile: fuseSpoolMemoryBytesPerFileDefault,
    spoolMemoryBytesTotal: fuseSpoolMemoryBytesTotalDefault,
    spoolDir: tmpdir(),
    streamUploadStartBytes: fuseStreamUploadStartBytesDefault,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    fileMode: 0o644,
    dirMode: 0o755,
    now: Date.now,
    log: logger('fuse'),
    ...options,
    prefix,
  }
  assert.ok(config.attrTtlMs >= 0 && config.dirTtlMs >= 0)
  assert.ok(config.stripeSizeBytes % config.blockSizeBytes === 0, 'block size must divide the stripe size')
  assert.ok(config.spoolMemoryBytesPerFile <= config.spoolMemoryBytesTotal)
  assert.ok(config.streamUploadStartBytes > 0)
  return Object.freeze(config)
}

export function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+|\/+$/g, '')
  return trimmed === '' ? '' : `${trimmed}/`
}

export type EntryKind = 'file' | 'dir' | 'symlink'

/** What getattr answers: a neutral stat, converted to the binding's shape by the adapter. */
export interface Stat {
  kind: EntryKind
  /** st_mode: type bits and permission bits. */
  mode: number
  sizeBytes: number
  uid: number
  gid: number
  /** As the object layer stores them, fractions of a millisecond included (adapter.ts hands the binding whole milliseconds). */
  mtimeMs: number
  ctimeMs: number
  nlink: number
}

interface Entry {
  kind: EntryKind
  sizeBytes: number
  perm: number
  uid: number
  gid: number
  mtimeMs: number
  ctimeMs: number
  /** Files and symlinks: the stored version (null while only in a spool). */
  objectId: string | null
  symlinkTarget: string | null
  /** Directories: a `dir/` marker object exists. */
  marker: boolean
}

export interface StatFs {
  blockSizeBytes: number
  blocks: number
  blocksFree: number
  files: number
  filesFree: number
  nameBytesMax: number
}

interface Attrs {
  perm: number
  uid: number
  gid: number
  mtimeMs: number
  ctimeMs: number
}

/** A serial queue: one file's writes, truncates and uploads never interleave. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve()

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn)
    this.tail = result.catch(() => {})
    return result
  }
}

/**
 * The upload of a file that is being written front to back (dd, cp, tar of a big
 * member), started while it is written instead of after close: the body is read from
 * the spool as it grows, so at close only the last stripes are left to send and close
 * costs about what the last stripe does, not what the whole file does. Nothing is
 * committed until close/fsync ends the body; any write that is not an append, any
 * truncate, and unlink abort it (its chunks are discarded), and a failed one falls
 * back to the whole upload at close. The spool keeps every byte either way.
 */
interface StreamingUpload {
  readonly controller: AbortController
  /** Passed to putObject; its attributes are set to the file's own just before the body ends. */
  readonly options: WriteOptions
  result: Promise<ObjectInfo>
  /** Bytes of the spool handed to the body so far. */
  sentBytes: number
  /** Set by close/fsync: the body ends at the spool's end. */
  ending: boolean
  /** Wakes the body when it waits for bytes (a write, the end, an abort). */
  wake: () => void
  /** The spool read in progress, so the spool is never closed under it. */
  reading: Promise<Buffer> | null
}

/**
 * A file open for writing somewhere in this daemon (one per path, like an inode):
 * every handle on the path shares its spool, so this daemon's readers see its
 * writers at once. The spool is created lazily — a file opened without O_TRUNC is
 * read into it only at its first write or truncate, and not at all when the first
 * change is a truncate to zero.
 */
class OpenFile {
  spool: Spool | null = null
  dirty = false
  unlinked = false
  handles = 0
  readonly lock = new Mutex()
  /** Every change since the spool started empty was an append (the file may be uploaded while it is written). */
  appendOnly = false
  stream: StreamingUpload | null = null
  /** An upload while writing failed once: this file is uploaded at close only. */
  streamFailed = false
  /**
   * A write or truncate of the spool failed (a full spool disk): the spool may hold part
   * of it, bytes nobody was told are there. Nothing of this open file is committed any
   * more; its reads, writes, flush and fsync answer EIO, and the stored version stays.
   */
  spoolFailed: Error | null = null
  /**
   * The kernel's pages of this file hold no bytes but the spool's: true from an open
   * that finds no other handle on the path and reads through the page cache, false
   * for good at whatever may put other bytes there (see BlobFs.kernelVersions). While
   * it holds, a committed upload leaves the kernel's pages equal to the committed
   * version, and the next open of that version may keep them.
   */
  kernelPagesMatch = false

  constructor(
    public path: string,
    public key: string,
    public attrs: Attrs,
    /** The stored version the content starts from, until the spool holds it. */
    public base: ObjectVersion | null,
    /** An object exists for this path (so attribute changes go to the catalog). */
    public stored: boolean,
  ) {}

  get sizeBytes(): number {
    return this.spool ? this.spool.sizeBytes : (this.base?.sizeBytes ?? 0)
  }
}

interface Handle {
  path: string
  writable: boolean
  /** Set for handles of a path open for writing in this daemon. */
  file: OpenFile | null
  /** For read-only handles of a stored file: the version seen at open. */
  version: ObjectVersion | null
  stream: ReadStream
  /** Reads must not stop at the size the kernel holds (see BlobFs.kernelSizes). */
  directIo: boolean
  /** The kernel may keep the pages it holds for the file (see BlobFs.kernelVersions). */
  keepCache: boolean
}

interface DirListing {
  /** null for subdirectories: a listing cannot tell their marker's attributes. */
  names: Map<string, Entry | null>
  expiresAtMs: number
}

function parentOf(path: string): string {
  const cut = path.lastIndexOf('/')
  return cut <= 0 ? '/' : path.slice(0, cut)
}

function nameOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1)
}

function isUsableName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && Buffer.byteLength(name) <= fuseNameBytesMax
}

const uidUnchanged = 0xffffffff
/** File handles stay below the binding's flags (adapter.ts, keepCacheFlag and directIoFlag). */
export const fileHandleMax = 0x1fffffff

export class BlobFs {
  readonly config: Readonly<FsConfig>
  readonly reader: BlockReader
  private readonly log: Logger
  private readonly budget: SpoolBudget
  private readonly attrCache = new LRUCache<string, { entry: Entry | null; expiresAtMs: number }>({ max: fuseAttrCacheEntriesMax })
  private readonly dirCache = new LRUCache<string, DirListing>({ max: fuseDirCacheDirsMax })
  private readonly openFiles = new Map<string, OpenFile>()
  /**
   * The size the kernel holds for a file: what getattr last answered for the path,
   * or what this mount's own writes and truncates made it. The kernel caches
   * attributes for the TTL (src/fuse/daemon.ts) and stops page-cache reads at that
   * size, so an open that finds another size (a version committed elsewhere) reads
   * with direct I/O: close-to-open holds whatever the kernel cached.
   */
  private readonly kernelSizes = new LRUCache<string, number>({ max: fuseAttrCacheEntriesMax })
  /**
   * The stored version whose bytes are all the kernel may hold in its page cache for
   * a path: set by a read-only open of that version through the page cache when every
   * other handle on the path reads the same version, and by this mount's own upload of
   * a file whose pages hold nothing but its spool (OpenFile.kernelPagesMatch): the
   * kernel writes through its pages (no writeback_cache), in the order the daemon gets
   * the writes, and drops every page at an open without keep_cache. Dropped by whatever
   * may put other bytes there: a handle that reads another version, a write or truncate
   * after the upload, an open that lets the kernel drop the pages while the file is open
   * for writing, truncate, unlink, rename. An open that finds this same version again lets
   * the kernel keep its pages (keep_cache); any other open lets it drop them, which is
   * what keeps close-to-open exact (a version committed anywhere else is never this one).
   * The rule, and the kernel code it rests on: docs/fuse.md, *Page cache*.
   */
  private readonly kernelVersions = new LRUCache<string, string>({ max: fuseAttrCacheEntriesMax })
  private readonly handles = new Map<number, Handle>()
  private nextHandle = 1
  private readonly mountedAtMs: number
  private rootAttrs: Attrs

  constructor(config: Readonly<FsConfig>) {
    this.config = config
    this.log = config.log
    this.budget = new SpoolBudget(config.spoolMemoryBytesTotal)
    this.reader = new BlockReader({
      objects: config.objects,
      bucket: config.bucket,
      blockSizeBytes: config.blockSizeBytes,
      cacheBytes: config.blockCacheBytes,
      stripeSizeBytes: config.stripeSizeBytes,
      readaheadBytes: config.readaheadBytes,
      readaheadInFlightBytesMax: Math.max(fuseReadaheadInFlightBytesMax, config.readaheadBytes),
      log: config.log,
    })
    this.mountedAtMs = config.now()
    this.rootAttrs = { perm: config.dirMode, uid: config.uid, gid: config.gid, mtimeMs: this.mountedAtMs, ctimeMs: this.mountedAtMs }
  }

  /** Counters for metrics and tests. */
  get gauges(): { openFiles: number; handles: number; spoolMemoryBytes: number; blockCacheBytes: number } {
    return { openFiles: this.openFiles.size, handles: this.handles.size, spoolMemoryBytes: this.budget.memoryBytesUsed, blockCacheBytes: this.reader.cachedBytes }
  }

  // ---- path <-> key

  private keyOf(path: string): string {
    assert.ok(path.startsWith('/') && path !== '/', `not a file path: ${path}`)
    return this.config.prefix + path.slice(1)
  }

  /** The listing prefix of a directory (and the key of its marker). */
  private dirKeyOf(path: string): string {
    return path === '/' ? this.config.prefix : `${this.config.prefix}${path.slice(1)}/`
  }

  private checkPath(path: string): void {
    assert.ok(path.startsWith('/'), `paths from the binding are absolute: ${path}`)
    if (path === '/') return
    for (const name of path.slice(1).split('/')) {
      if (Buffer.byteLength(name) > fuseNameBytesMax) throw fsError(errno.ENAMETOOLONG, `${path}: a name is longer than ${fuseNameBytesMax} bytes`)
    }
    if (Buffer.byteLength(this.dirKeyOf(path)) > keyLengthBytesMax) throw fsError(errno.ENAMETOOLONG, `${path}: key longer than ${keyLengthBytesMax} bytes`)
  }

  // ---- entries and caches

  private defaultAttrs(kind: EntryKind): Attrs {
    const now = this.config.now()
    return { perm: kind === 'dir' ? this.config.dirMode : kind === 'symlink' ? 0o777 : this.config.fileMode, uid: this.config.uid, gid: this.config.gid, mtimeMs: now, ctimeMs: now }
  }

  private entryFromObject(info: ListedObjectInfo): Entry {
    const kind: EntryKind = info.symlinkTarget !== null ? 'symlink' : 'file'
    const posix = info.posix
    const mtimeMs = posix?.mtimeMs ?? info.lastModified.getTime()
    return {
      kind,
      sizeBytes: kind === 'symlink' ? Buffer.byteLength(info.symlinkTarget!) : info.sizeBytes,
      perm: posix ? posix.mode & 0o7777 : kind === 'symlink' ? 0o777 : this.config.fileMode,
      uid: posix?.uid ?? this.config.uid,
      gid: posix?.gid ?? this.config.gid,
      mtimeMs,
      ctimeMs: posix ? posix.ctimeMs : mtimeMs,
      objectId: info.objectId,
      symlinkTarget: info.symlinkTarget,
      marker: false,
    }
  }

  private dirEntry(marker: ListedObjectInfo | null): Entry {
    const posix = marker?.posix ?? null
    const mtimeMs = posix?.mtimeMs ?? marker?.lastModified.getTime() ?? this.mountedAtMs
    return {
      kind: 'dir',
      sizeBytes: 0,
      perm: posix ? posix.mode & 0o7777 : this.config.dirMode,
      uid: posix?.uid ?? this.config.uid,
      gid: posix?.gid ?? this.config.gid,
      mtimeMs,
      ctimeMs: posix ? posix.ctimeMs : mtimeMs,
      objectId: null,
      symlinkTarget: null,
      marker: marker !== null,
    }
  }

  private openFileEntry(file: OpenFile): Entry {
    return {
      kind: 'file',
      sizeBytes: file.sizeBytes,
      ...file.attrs,
      objectId: file.base?.objectId ?? null,
      symlinkTarget: null,
      marker: false,
    }
  }

  private rootEntry(): Entry {
    return { kind: 'dir', sizeBytes: 0, ...this.rootAttrs, objectId: null, symlinkTarget: null, marker: false }
  }

  private cacheEntry(path: string, entry: Entry | null): void {
    this.attrCache.set(path, { entry, expiresAtMs: this.config.now() + this.config.attrTtlMs })
  }

  /**
   * After this daemon changed `path`, what it is now: an entry, gone (null), or
   * 'exists' with attributes to be asked again. The attribute cache and the parent's
   * cached listing are updated in place rather than dropped, so a directory being
   * filled (tar x, cp -r) answers its negative lookups without asking the catalog.
   */
  private settle(path: string, now: Entry | null | 'exists'): void {
    if (now === 'exists') this.attrCache.delete(path)
    else this.cacheEntry(path, now)
    const parent = parentOf(path)
    const listing = this.dirCache.get(parent)
    if (!listing) return
    const name = nameOf(path)
    if (now === null) listing.names.delete(name)
    else listing.names.set(name, now === 'exists' || now.kind === 'dir' ? null : now)
    if (listing.names.size > fuseDirCacheNamesMax) this.dirCache.delete(parent)
  }

  /** The entry at `path`, or null. `fresh` skips the caches (open's revalidation). */
  private async lookup(path: string, fresh = false): Promise<Entry | null> {
    if (path === '/') return this.rootEntry()
    const open = this.openFiles.get(path)
    if (open) return this.openFileEntry(open)
    const now = this.config.now()
    if (!fresh) {
      const cached = this.attrCache.get(path)
      if (cached && cached.expiresAtMs > now) return cached.entry
      let listing = this.dirCache.get(parentOf(path))
      // A small directory whose listing is past its TTL is listed again, in one call,
      // rather than asked name by name (two calls each): tar x, cp -r and rsync look up
      // every name before they create it.
      if (listing && listing.expiresAtMs <= now && listing.names.size < listPageKeysMax) listing = (await this.relist(parentOf(path))) ?? undefined
      if (listing && listing.expiresAtMs > now) {
        if (!listing.names.has(nameOf(path))) return null
        const listed = listing.names.get(nameOf(path))
        if (listed) return listed
      }
    }
    const entry = await this.fetchEntry(path)
    this.cacheEntry(path, entry)
    return entry
  }

  /**
   * The listing of a directory that fits in one page, fresh from the object layer
   * (its files' attributes cached with it), or null for a bigger one.
   */
  private async relist(path: string): Promise<DirListing | null> {
    const prefix = this.dirKeyOf(path)
    const page = await this.config.objects.listObjects(this.config.bucket, { prefix, delimiter: '/', maxKeys: listPageKeysMax })
    if (page.isTruncated) {
      this.dirCache.delete(path)
      return null
    }
    const expiresAtMs = this.config.now() + this.config.dirTtlMs
    const names = new Map<string, Entry | null>()
    for (const info of page.objects) {
      const name = info.key.slice(prefix.length)
      if (name === '' || !isUsableName(name)) continue
      const entry = this.entryFromObject(info)
      names.set(name, entry)
      const childPath = path === '/' ? `/${name}` : `${path}/${name}`
      if (!this.openFiles.has(childPath)) this.attrCache.set(childPath, { entry, expiresAtMs: this.config.now() + this.config.attrTtlMs })
    }
    for (const common of page.commonPrefixes) {
      const name = common.slice(prefix.length, -1)
      if (isUsableName(name)) names.set(name, null) // a directory wins over a file of the same name
    }
    const listing = { names, expiresAtMs }
    this.dirCache.set(path, listing)
    return listing
  }

  /** Asks the object layer: the key itself (a file) and anything under `key/` (a directory, which wins). */
  private async fetchEntry(path: string): Promise<Entry | null> {
    const { objects, bucket } = this.config
    const key = this.keyOf(path)
    const [head, under] = await Promise.all([
      objects.headObject(bucket, key).catch((error: unknown) => {
        if (isBlobfsError(error, 'NoSuchKey')) return null
        throw error
      }),
      objects.listObjects(bucket, { prefix: `${key}/`, maxKeys: 1 }),
    ])
    if (under.objects.length > 0 || under.commonPrefixes.length > 0) {
      const first = under.objects[0]
      return this.dirEntry(first && first.key === `${key}/` ? first : null)
    }
    return head ? this.entryFromObject(head) : null
  }

  private async existing(path: string): Promise<Entry> {
    const entry = await this.lookup(path)
    if (!entry) throw fsError(errno.ENOENT, `${path}: no such file or directory`)
    return entry
  }

  /** The parent of a path about to be created must be an existing directory. */
  private async checkParent(path: string): Promise<void> {
    const parent = parentOf(path)
    const entry = await this.lookup(parent)
    if (!entry) throw fsError(errno.ENOENT, `${parent}: no such directory`)
    if (entry.kind !== 'dir') throw fsError(errno.ENOTDIR, `${parent}: not a directory`)
  }

  private async checkAbsent(path: string): Promise<void> {
    if (await this.lookup(path, true)) throw fsError(errno.EEXIST, `${path}: file exists`)
  }

  private toStat(entry: Entry): Stat {
    const type = entry.kind === 'dir' ? S_IFDIR : entry.kind === 'symlink' ? S_IFLNK : S_IFREG
    return {
      kind: entry.kind,
      mode: type | entry.perm,
      sizeBytes: entry.sizeBytes,
      uid: entry.uid,
      gid: entry.gid,
      mtimeMs: entry.mtimeMs,
      ctimeMs: entry.ctimeMs,
      nlink: entry.kind === 'dir' ? 2 : 1,
    }
  }

  private posixOf(kind: EntryKind, attrs: Attrs): PosixAttributes {
    const type = kind === 'dir' ? S_IFDIR : kind === 'symlink' ? S_IFLNK : S_IFREG
    return { mode: type | attrs.perm, uid: attrs.uid, gid: attrs.gid, mtimeMs: attrs.mtimeMs, ctimeMs: attrs.ctimeMs }
  }

  /** Runs one operation; whatever it throws leaves as an FsError. */
  private async run<T>(op: string, path: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (error) {
      throw toFsError(error, `${op} ${path}`)
    }
  }

  // ---- namespace operations

  getattr(path: string): Promise<Stat> {
    return this.run('getattr', path, async () => {
      this.checkPath(path)
      const stat = this.toStat(await this.existing(path))
      if (stat.kind === 'file') this.kernelSizes.set(path, stat.sizeBytes)
      else this.kernelSizes.delete(path)
      return stat
    })
  }

  /** Whether handle `fh` reads with direct I/O (its open found a size the kernel does not hold). */
  directIo(fh: number): boolean {
    return this.handles.get(fh)?.directIo ?? false
  }

  /** Whether the kernel may keep its pages of the file at the open of `fh` (its open found the version they hold). */
  keepCache(fh: number): boolean {
    return this.handles.get(fh)?.keepCache ?? false
  }

  /** F_OK semantics; permission bits are checked by the kernel (default_permissions). */
  access(path: string, _mode: number): Promise<void> {
    return this.run('access', path, async () => {
      this.checkPath(path)
      await this.existing(path)
    })
  }

  /**
   * The names in a directory, page by page as the object layer lists them (never
   * more than one page of object records held). Includes files being written here
   * that are not stored yet. A name that is both a file and a directory (possible
   * over S3) is shown once, as the directory.
   */
  async *readdir(path: string): AsyncGenerator<string[]> {
    let entry: Entry
    try {
      this.checkPath(path)
      entry = await this.existing(path)
    } catch (error) {
      throw toFsError(error, `readdir ${path}`)
    }
    if (entry.kind !== 'dir') throw fsError(errno.ENOTDIR, `readdir ${path}: not a directory`)
    const seen = new Set<string>()
    const now = this.config.now()
    const cached = this.dirCache.get(path)
    if (cached && cached.expiresAtMs > now) {
      const names = [...cached.names.keys()]
      names.forEach((name) => seen.add(name))
      yield names
    } else {
      const prefix = this.dirKeyOf(path)
      let collecting: Map<string, Entry | null> | null = new Map()
      let token: string | undefined
      do {
        let page
        try {
          page = await this.config.objects.listObjects(this.config.bucket, { prefix, delimiter: '/', maxKeys: listPageKeysMax, continuationToken: token })
        } catch (error) {
          throw toFsError(error, `readdir ${path}`)
        }
        const names: string[] = []
        const expiresAtMs = this.config.now() + this.config.attrTtlMs
        // Files are cached from the listing; a subdirectory (child null) is looked up on its own,
        // since only its marker knows its mode and times.
        const add = (name: string, child: Entry | null): void => {
          const childPath = path === '/' ? `/${name}` : `${path}/${name}`
          if (child && !this.openFiles.has(childPath)) this.attrCache.set(childPath, { entry: child, expiresAtMs })
          else if (!child) this.attrCache.delete(childPath)
          if (collecting) {
            collecting.set(name, child)
            if (collecting.size > fuseDirCacheNamesMax) collecting = null
          }
          if (seen.has(name)) return
          seen.add(name)
          names.push(name)
        }
        for (const info of page.objects) {
          const name = info.key.slice(prefix.length)
          if (name === '') continue // the directory's own marker
          if (!isUsableName(name)) {
            this.log.warn({ key: info.key }, 'key cannot be shown as a file name; skipped')
            continue
          }
          add(name, this.entryFromObject(info))
        }
        for (const common of page.commonPrefixes) {
          const name = common.slice(prefix.length, -1)
          if (!isUsableName(name)) {
            this.log.warn({ prefix: common }, 'prefix cannot be shown as a directory name; skipped')
            continue
          }
          add(name, null)
        }
        if (names.length > 0) yield names
        token = page.isTruncated ? (page.nextContinuationToken ?? undefined) : undefined
      } while (token)
      if (collecting) this.dirCache.set(path, { names: collecting, expiresAtMs: this.config.now() + this.config.dirTtlMs })
    }
    const pending: string[] = []
    for (const file of this.openFiles.values()) {
      if (parentOf(file.path) === path && !seen.has(nameOf(file.path))) pending.push(nameOf(file.path))
    }
    if (pending.length > 0) yield pending
  }

  mkdir(path: string, mode: number): Promise<void> {
    return this.run('mkdir', path, async () => {
      this.checkPath(path)
      await this.checkParent(path)
      await this.checkAbsent(path)
      const attrs = { ...this.defaultAttrs('dir'), perm: mode & 0o7777 }
      const info = await this.config.objects.putObject(this.config.bucket, this.dirKeyOf(path), emptyBody(), { posix: this.posixOf('dir', attrs), expectedLengthBytes: 0 })
      this.settle(path, this.dirEntry(info))
      this.dirCache.set(path, { names: new Map(), expiresAtMs: this.config.now() + this.config.dirTtlMs })
    })
  }

  rmdir(path: string): Promise<void> {
    return this.run('rmdir', path, async () => {
      this.checkPath(path)
      if (path === '/') throw fsError(errno.EBUSY, 'rmdir /: the mount root')
      const entry = await this.existing(path)
      if (entry.kind !== 'dir') throw fsError(errno.ENOTDIR, `${path}: not a directory`)
      if (!(await this.isEmptyDir(path))) throw fsError(errno.ENOTEMPTY, `${path}: directory not empty`)
      await this.config.objects.deleteObject(this.config.bucket, this.dirKeyOf(path))
      this.dirCache.delete(path)
      this.settle(path, null)
    })
  }

  private async isEmptyDir(path: string): Promise<boolean> {
    const prefix = this.dirKeyOf(path)
    const page = await this.config.objects.listObjects(this.config.bucket, { prefix, maxKeys: 2 })
    if (page.objects.some((info) => info.key !== prefix) || page.commonPrefixes.length > 0) return false
    for (const file of this.openFiles.keys()) if (file.startsWith(`${path}/`)) return false
    return true
  }

  unlink(path: string): Promise<void> {
    return this.run('unlink', path, async () => {
      this.checkPath(path)
      const entry = await this.existing(path)
      if (entry.kind === 'dir') throw fsError(errno.EISDIR, `${path}: is a directory`)
      const open = this.openFiles.get(path)
      if (open) {
        // Open handles keep working on the spool; nothing is uploaded any more.
        open.unlinked = true
        this.openFiles.delete(path)
        await open.lock.run(() => this.stopStream(open))
      }
      if (!open || open.stored) await this.config.objects.deleteObject(this.config.bucket, this.keyOf(path))
      if (entry.objectId) this.reader.forget(entry.objectId, entry.sizeBytes)
      this.kernelSizes.delete(path)
      this.kernelVersions.delete(path)
      this.settle(path, null)
    })
  }

  /**
   * rename(2): a catalog update, no bytes copied. A file replaces a target file; a
   * directory replaces an empty target directory and moves with all its keys in one
   * renamePrefix transaction.
   */
  rename(from: string, to: string): Promise<void> {
    return this.run('rename', `${from} -> ${to}`, async () => {
      this.checkPath(from)
      this.checkPath(to)
      if (from === '/' || to === '/') throw fsError(errno.EBUSY, 'rename: the mount root')
      const source = await this.existing(from)
      if (from === to) return
      if (to.startsWith(`${from}/`)) throw fsError(errno.EINVAL, `rename ${from} into itself`)
      await this.checkParent(to)
      const target = await this.lookup(to, true)
      const { objects, bucket } = this.config
      if (source.kind === 'dir') {
        if (target && target.kind !== 'dir') throw fsError(errno.ENOTDIR, `${to}: not a directory`)
        if (target) {
          if (!(await this.isEmptyDir(to))) throw fsError(errno.ENOTEMPTY, `${to}: directory not empty`)
          await objects.deleteObject(bucket, this.dirKeyOf(to))
        }
        // Files being written under the directory are committed first, then move with it.
        const moving = [...this.openFiles.values()].filter((file) => file.path.startsWith(`${from}/`))
        for (const file of moving) if (!file.spoolFailed) await file.lock.run(() => this.upload(file))
        await objects.renamePrefix(bucket, this.dirKeyOf(from), this.dirKeyOf(to))
        for (const file of moving) this.openFiles.delete(file.path)
        for (const file of moving) {
          file.path = to + file.path.slice(from.length)
          file.key = this.keyOf(file.path)
          if (file.base) file.base = { ...file.base, key: file.key }
          this.openFiles.set(file.path, file)
        }
        for (const handle of this.handles.values()) {
          if (handle.path.startsWith(`${from}/`)) this.moveHandle(handle, to + handle.path.slice(from.length))
        }
        // The kernel moves its inodes with the names: so do the sizes it holds, and its
        // pages (each object keeps its id, so what the kernel holds is still that version).
        moveTree(this.kernelSizes, from, to)
        moveTree(this.kernelVersions, from, to)
        // Every cached path under either name is stale: start afresh (renames of directories are rare).
        this.attrCache.clear()
        this.dirCache.clear()
        return
      }
      if (target?.kind === 'dir') throw fsError(errno.EISDIR, `${to}: is a directory`)
      const file = this.openFiles.get(from)
      if (file && !file.spoolFailed) await file.lock.run(() => this.upload(file))
      if (file?.spoolFailed && !file.stored) {
        // A new file whose spool failed: nothing of it is stored, so only the open file
        // moves (libfuse's rename to .fuse_hiddenNNNN at an unlink while open, or a
        // temporary file renamed after ENOSPC); it cannot replace what is stored at `to`.
        if (target) throw fsError(errno.EIO, `${from}: an earlier write to it failed; nothing of it is stored to replace ${to} with`, file.spoolFailed)
      } else {
        await objects.renameObject(bucket, this.keyOf(from), this.keyOf(to))
      }
      const replaced = this.openFiles.get(to)
      if (replaced) {
        replaced.unlinked = true
        this.openFiles.delete(to)
      }
      if (file) {
        this.openFiles.delete(from)
        file.path = to
        file.key = this.keyOf(to)
        if (file.base) file.base = { ...file.base, key: file.key }
        this.openFiles.set(to, file)
      }
      for (const handle of this.handles.values()) if (handle.path === from) this.moveHandle(handle, to)
      // The kernel's size and pages go with its inode, and the object keeps its id: rsync's
      // temporary file, renamed over the real name once written, is read back from the kernel.
      moveEntry(this.kernelSizes, from, to)
      moveEntry(this.kernelVersions, from, to)
      this.settle(from, null)
      this.settle(to, 'exists')
    })
  }

  /** Open handles follow a rename (the object keeps its id; only its key changes). */
  private moveHandle(handle: Handle, path: string): void {
    handle.path = path
    if (handle.version) handle.version = { ...handle.version, key: this.keyOf(path) }
  }

  link(from: string, to: string): Promise<void> {
    return this.run('link', `${from} -> ${to}`, async () => {
      this.log.warn({ from, to }, 'hard links are not supported on blobfs (EPERM); use a symlink or a copy')
      throw fsError(errno.EPERM, `link ${from} ${to}: hard links are not supported`)
    })
  }

  symlink(target: string, path: string): Promise<void> {
    return this.run('symlink', path, async () => {
      this.checkPath(path)
      await this.checkParent(path)
      await this.checkAbsent(path)
      const attrs = this.defaultAttrs('symlink')
      const info = await this.config.objects.putObject(this.config.bucket, this.keyOf(path), emptyBody(), {
        posix: this.posixOf('symlink', attrs),
        symlinkTarget: target,
        expectedLengthBytes: 0,
      })
      this.settle(path, this.entryFromObject(info))
    })
  }

  readlink(path: string): Promise<string> {
    return this.run('readlink', path, async () => {
      this.checkPath(path)
      const entry = await this.existing(path)
      if (entry.kind !== 'symlink') throw fsError(errno.EINVAL, `${path}: not a symbolic link`)
      return entry.symlinkTarget!
    })
  }

  chmod(path: string, mode: number): Promise<void> {
    return this.setAttrs('chmod', path, (attrs) => ({ ...attrs, perm: mode & 0o7777 }))
  }

  chown(path: string, uid: number, gid: number): Promise<void> {
    return this.setAttrs('chown', path, (attrs) => ({
      ...attrs,
      uid: uid === uidUnchanged || uid < 0 ? attrs.uid : uid,
      gid: gid === uidUnchanged || gid < 0 ? attrs.gid : gid,
    }))
  }

  /** Only the modification time is kept (atime is not stored; noatime semantics). */
  utimens(path: string, _atimeMs: number, mtimeMs: number): Promise<void> {
    return this.setAttrs('utimens', path, (attrs) => ({ ...attrs, mtimeMs }))
  }

  /** Attribute changes are catalog updates; bytes are never rewritten for them. */
  private setAttrs(op: string, path: string, change: (attrs: Attrs) => Attrs): Promise<void> {
    return this.run(op, path, async () => {
      this.checkPath(path)
      const entry = await this.existing(path)
      const nowMs = this.config.now()
      const attrsOf = (e: Entry): Attrs => ({ perm: e.perm, uid: e.uid, gid: e.gid, mtimeMs: e.mtimeMs, ctimeMs: e.ctimeMs })
      if (path === '/') {
        // The root has no key of its own when the mount has no prefix: kept for this mount's lifetime.
        this.rootAttrs = { ...change(this.rootAttrs), ctimeMs: nowMs }
        return
      }
      const file = this.openFiles.get(path)
      if (file) {
        await file.lock.run(async () => {
          file.attrs = { ...change(file.attrs), ctimeMs: nowMs }
          if (file.dirty || !file.stored) return // the upload carries them
          await this.config.objects.updateAttributes(this.config.bucket, file.key, this.posixOf('file', file.attrs))
        })
        this.settle(path, 'exists')
        return
      }
      const attrs = { ...change(attrsOf(entry)), ctimeMs: nowMs }
      const { objects, bucket } = this.config
      let info: ObjectInfo
      if (entry.kind === 'dir') {
        const marker = this.dirKeyOf(path)
        info = entry.marker
          ? await objects.updateAttributes(bucket, marker, this.posixOf('dir', attrs))
          : await objects.putObject(bucket, marker, emptyBody(), { posix: this.posixOf('dir', attrs), expectedLengthBytes: 0 })
        this.settle(path, this.dirEntry(info))
      } else {
        info = await objects.updateAttributes(bucket, this.keyOf(path), this.posixOf(entry.kind, attrs))
        this.settle(path, this.entryFromObject(info))
      }
    })
  }

  truncate(path: string, sizeBytes: number): Promise<void> {
    return this.run('truncate', path, async () => {
      this.checkPath(path)
      if (sizeBytes < 0) throw fsError(errno.EINVAL, `${path}: negative size`)
      const entry = await this.existing(path)
      if (entry.kind === 'dir') throw fsError(errno.EISDIR, `${path}: is a directory`)
      if (entry.kind === 'symlink') throw fsError(errno.EINVAL, `${path}: is a symbolic link`)
      const file = this.openFiles.get(path)
      if (file) {
        await file.lock.run(() => this.truncateOpen(file, sizeBytes))
        this.settle(path, 'exists')
        return
      }
      // No handle here: write the new version straight from the old one's bytes.
      const { objects, bucket } = this.config
      const key = this.keyOf(path)
      const keep = Math.min(sizeBytes, entry.sizeBytes)
      const nowMs = this.config.now()
      const attrs: Attrs = { perm: entry.perm, uid: entry.uid, gid: entry.gid, mtimeMs: nowMs, ctimeMs: nowMs }
      const source = keep > 0 ? await objects.getObject(bucket, key, { range: { start: 0, end: keep - 1 } }) : null
      if (source && source.info.objectId !== entry.objectId) {
        source.body.destroy()
        throw fsError(errno.ESTALE, `${path} changed while being truncated`)
      }
      const info = await objects.putObject(bucket, key, concatBodies(source?.body ?? null, sizeBytes - keep), {
        posix: this.posixOf('file', attrs),
        expectedLengthBytes: sizeBytes,
      })
      if (entry.objectId) this.reader.forget(entry.objectId, entry.sizeBytes)
      this.kernelVersions.delete(path)
      this.settle(path, this.entryFromObject(info))
    })
  }

  statfs(): Promise<StatFs> {
    return this.run('statfs', '/', async () => {
      const usage = await this.config.objects.clusterUsage()
      // statvfs fields are 32-bit in the binding: grow the block size until the counts fit.
      let blockSizeBytes = 4096
      while (usage.capacityBytes / blockSizeBytes > 0xffffffff) blockSizeBytes *= 2
      const filesMax = 0xffffffff
      return {
        blockSizeBytes,
        blocks: Math.floor(usage.capacityBytes / blockSizeBytes),
        blocksFree: Math.floor(Math.max(0, usage.capacityBytes - usage.usedBytes) / blockSizeBytes),
        files: filesMax,
        filesFree: Math.max(0, filesMax - usage.objects),
        nameBytesMax: fuseNameBytesMax,
      }
    })
  }

  // ---- file handles

  private addHandle(handle: Handle): number {
    let fh = this.nextHandle
    while (this.handles.has(fh)) fh = fh >= fileHandleMax ? 1 : fh + 1
    this.nextHandle = fh >= fileHandleMax ? 1 : fh + 1
    this.handles.set(fh, handle)
    return fh
  }

  private handle(fh: number): Handle {
    const handle = this.handles.get(fh)
    if (!handle) throw fsError(errno.EBADF, `no open file handle ${fh}`)
    return handle
  }

  /** Some handle open on `path` passes `test` (any handle, without one). */
  private hasHandles(path: string, test: (handle: Handle) => boolean = () => true): boolean {
    for (const handle of this.handles.values()) if (handle.path === path && test(handle)) return true
    return false
  }

  private newSpool(): Spool {
    return new Spool({ budget: this.budget, memoryBytesMax: this.config.spoolMemoryBytesPerFile, dir: this.config.spoolDir })
  }

  /**
   * open(2). Revalidates the entry against the object layer (close-to-open: what
   * another mount or an S3 client committed before this open is what it reads).
   */
  open(path: string, flags: number): Promise<number> {
    return this.run('open', path, async () => {
      this.checkPath(path)
      const writable = (flags & O_ACCMODE) !== O_RDONLY
      let existingFile = this.openFiles.get(path)
      let entry = existingFile ? this.openFileEntry(existingFile) : await this.lookup(path, true)
      if (!existingFile && this.openFiles.has(path)) {
        // Opened for writing (or created) here while this open looked the file up: this
        // open shares that open file, as if it had come a moment later; a second one would
        // be a spool of its own that the first's close overwrites (or the other way round).
        existingFile = this.openFiles.get(path)!
        entry = this.openFileEntry(existingFile)
      }
      if (!entry) throw fsError(errno.ENOENT, `${path}: no such file or directory`)
      if (entry.kind === 'dir') throw fsError(errno.EISDIR, `${path}: is a directory`)
      if (entry.kind === 'symlink') throw fsError(errno.ELOOP, `${path}: is a symbolic link`)
      // The kernel stops reads at the size it holds: another size found here (a version
      // committed elsewhere since the kernel last asked) is read with direct I/O.
      const truncating = writable && (flags & O_TRUNC) !== 0
      const directIo = !existingFile && !truncating && this.kernelSizes.get(path) !== entry.sizeBytes
      if (!writable && !existingFile) {
        assert.ok(entry.objectId !== null)
        const { objectId } = entry
        // Only this version is read on the path from now on, if no other handle there reads another.
        const alone = !this.hasHandles(path, (other) => other.file !== null || other.version?.objectId !== objectId)
        const keepCache = !directIo && alone && this.kernelVersions.get(path) === objectId
        if (alone && !directIo) this.kernelVersions.set(path, objectId)
        else this.kernelVersions.delete(path)
        return this.addHandle({ path, writable, file: null, version: { key: this.keyOf(path), objectId, sizeBytes: entry.sizeBytes }, stream: { nextPosition: 0 }, directIo, keepCache })
      }
      const direct = (flags & O_DIRECT) !== 0
      let file = existingFile
      let keepCache = false
      if (file) {
        // A reader of a file committed here, whose pages are that version: it keeps them. Any
        // other open lets the kernel drop the pages with no lock against writes on their way
        // to this daemon (a page written and dropped before its WRITE arrives is read back
        // from the spool without it): from then on nothing is known of the pages.
        keepCache = !writable && !direct && !file.dirty && file.kernelPagesMatch && file.base !== null && this.kernelVersions.get(path) === file.base.objectId
        if (!keepCache) file.kernelPagesMatch = false
      } else {
        const base = entry.objectId ? { key: this.keyOf(path), objectId: entry.objectId, sizeBytes: entry.sizeBytes } : null
        file = new OpenFile(path, this.keyOf(path), { perm: entry.perm, uid: entry.uid, gid: entry.gid, mtimeMs: entry.mtimeMs, ctimeMs: entry.ctimeMs }, base, true)
        // This open drops every page the kernel holds (truncates them with O_TRUNC); from
        // here on they come from this spool, unless a handle already open on the path
        // reads another version into them, or writes and reads go past them.
        file.kernelPagesMatch = !directIo && !direct && !this.hasHandles(path)
        this.openFiles.set(path, file)
      }
      if (!keepCache) this.kernelVersions.delete(path)
      file.handles++
      const fh = this.addHandle({ path, writable, file, version: null, stream: { nextPosition: 0 }, directIo, keepCache })
      if (truncating) {
        const opened = file
        try {
          await opened.lock.run(() => this.truncateOpen(opened, 0))
        } catch (error) {
          // The kernel never gets this handle, so no release will come for it.
          await this.release(fh).catch(() => {})
          throw error
        }
      }
      return fh
    })
  }

  /** create(2) of a file that does not exist: it lives in a spool until its first upload. */
  create(path: string, mode: number): Promise<number> {
    return this.run('create', path, async () => {
      this.checkPath(path)
      await this.checkParent(path)
      const existing = this.openFiles.get(path)
      if (existing) {
        existing.kernelPagesMatch = false // as for any other open of a file open for writing (see open)
        this.kernelVersions.delete(path)
        existing.handles++
        const fh = this.addHandle({ path, writable: true, file: existing, version: null, stream: { nextPosition: 0 }, directIo: false, keepCache: false })
        await existing.lock.run(() => this.truncateOpen(existing, 0))
        return fh
      }
      const file = new OpenFile(path, this.keyOf(path), { ...this.defaultAttrs('file'), perm: mode & 0o7777 }, null, false)
      file.spool = this.newSpool()
      file.appendOnly = true
      file.dirty = true
      file.handles = 1
      file.kernelPagesMatch = !this.hasHandles(path)
      this.openFiles.set(path, file)
      this.settle(path, 'exists')
      this.kernelSizes.set(path, 0)
      this.kernelVersions.delete(path)
      return this.addHandle({ path, writable: true, file, version: null, stream: { nextPosition: 0 }, directIo: false, keepCache: false })
    })
  }

  /** Up to `length` bytes at `position`; fewer (or none) at the end of the file. */
  read(fh: number, length: number, position: number): Promise<Buffer> {
    const handle = this.handles.get(fh)
    return this.run('read', handle?.path ?? `#${fh}`, async () => {
      const { file, version, stream } = this.handle(fh)
      if (file) {
        return file.lock.run(async () => {
          this.checkSpool(file)
          if (file.spool) return file.spool.read(position, length)
          if (!file.base) return Buffer.alloc(0)
          return this.reader.read(file.base, position, length, stream)
        })
      }
      assert.ok(version)
      return this.reader.read(version, position, length, stream)
    })
  }

  write(fh: number, data: Buffer, position: number): Promise<number> {
    const handle = this.handles.get(fh)
    return this.run('write', handle?.path ?? `#${fh}`, async () => {
      const { file, writable } = this.handle(fh)
      if (!file || !writable) throw fsError(errno.EBADF, 'file not open for writing')
      await file.lock.run(async () => {
        this.checkSpool(file)
        await this.materialize(file)
        const spool = file.spool!
        if (position < spool.sizeBytes) {
          // Not an append: bytes already sent may change.
          file.appendOnly = false
          await this.stopStream(file)
        }
        try {
          await spool.write(data, position)
        } catch (error) {
          throw await this.spoolFailed(file, error)
        }
        if (!file.unlinked) {
          this.kernelSizes.set(file.path, spool.sizeBytes) // the kernel extends its size as it writes
          this.kernelVersions.delete(file.path) // its pages now hold what no stored version does
        }
        file.dirty = true
        file.attrs.mtimeMs = file.attrs.ctimeMs = this.config.now()
        if (file.stream) file.stream.wake()
        else if (file.appendOnly && !file.streamFailed && !file.unlinked && spool.sizeBytes >= this.config.streamUploadStartBytes) this.startStream(file)
      })
      return data.length
    })
  }

  ftruncate(fh: number, sizeBytes: number): Promise<void> {
    const handle = this.handles.get(fh)
    return this.run('ftruncate', handle?.path ?? `#${fh}`, async () => {
      const { file, writable, path } = this.handle(fh)
      if (!file || !writable) throw fsError(errno.EBADF, 'file not open for writing')
      if (sizeBytes < 0) throw fsError(errno.EINVAL, 'negative size')
      await file.lock.run(() => this.truncateOpen(file, sizeBytes))
      this.settle(path, 'exists')
    })
  }

  /**
   * close(2) of one descriptor: uploads and commits what this daemon holds for the
   * file. One exception: a new file still empty is left to release, so the
   * open-dup2-close of shells and dd (`cmd > file`) costs no empty upload first.
   */
  flush(fh: number): Promise<void> {
    const handle = this.handles.get(fh)
    return this.run('flush', handle?.path ?? `#${fh}`, async () => {
      const { file, writable } = this.handle(fh)
      if (!file || !writable) return
      await file.lock.run(async () => {
        this.checkSpool(file)
        if (!file.stored && file.sizeBytes === 0) return
        await this.upload(file)
      })
    })
  }

  /** fsync(2): returns only once the object is committed in the catalog. */
  fsync(fh: number): Promise<void> {
    const handle = this.handles.get(fh)
    return this.run('fsync', handle?.path ?? `#${fh}`, async () => {
      const { file, writable } = this.handle(fh)
      if (file && writable) await file.lock.run(() => this.upload(file))
    })
  }

  /** The last close of a descriptor; the spool goes when the file's last handle does. */
  release(fh: number): Promise<void> {
    const handle = this.handles.get(fh)
    return this.run('release', handle?.path ?? `#${fh}`, async () => {
      const { file, writable } = this.handle(fh)
      this.handles.delete(fh)
      if (!file) return
      try {
        if (writable) await file.lock.run(() => this.upload(file))
      } finally {
        file.handles--
        if (file.handles === 0) {
          if (this.openFiles.get(file.path) === file) this.openFiles.delete(file.path)
          // A file never stored (a new file whose upload or spool failed) is gone with its last descriptor.
          if (!file.unlinked) this.settle(file.path, !file.stored ? null : file.dirty ? 'exists' : this.openFileEntry(file))
          await file.lock.run(async () => {
            if (file.dirty && !file.unlinked) this.log.error({ path: file.path }, 'last handle closed with changes that could not be uploaded; they are lost')
            await this.stopStream(file)
            await file.spool?.close()
            file.spool = null
          })
        }
      }
    })
  }

  /** Uploads every file with changes (unmount): best effort, each failure logged. */
  async shutdown(): Promise<void> {
    for (const file of [...this.openFiles.values()]) {
      try {
        await file.lock.run(() => this.upload(file))
      } catch (error) {
        this.log.error({ path: file.path, err: error }, 'upload at unmount failed; changes lost')
      }
    }
  }

  // ---- inside the file lock

  /** Loads the stored content into the spool, once, before the first change. */
  private async materialize(file: OpenFile): Promise<void> {
    if (file.spool) return
    const spool = this.newSpool()
    try {
      if (file.base && file.base.sizeBytes > 0) {
        const result = await this.config.objects.getObject(this.config.bucket, file.base.key)
        if (result.info.objectId !== file.base.objectId) {
          result.body.destroy()
          throw fsError(errno.ESTALE, `${file.path} was replaced since it was opened (close and open it again)`)
        }
        let at = 0
        for await (const piece of result.body as AsyncIterable<Buffer>) {
          await spool.write(piece, at)
          at += piece.length
        }
        if (at !== file.base.sizeBytes) throw fsError(errno.EIO, `${file.path}: read ${at} of ${file.base.sizeBytes} bytes`)
      }
    } catch (error) {
      await spool.close()
      throw error
    }
    file.spool = spool
    file.appendOnly = !file.base || file.base.sizeBytes === 0
  }

  private async truncateOpen(file: OpenFile, sizeBytes: number): Promise<void> {
    this.checkSpool(file) // even to zero: the file's other descriptors were told of the failure
    await this.stopStream(file)
    if (!file.unlinked) {
      this.kernelSizes.set(file.path, sizeBytes)
      this.kernelVersions.delete(file.path)
    }
    if (sizeBytes === 0) {
      await file.spool?.close()
      file.spool = this.newSpool()
      file.appendOnly = true
    } else {
      await this.materialize(file)
      try {
        await file.spool!.truncate(sizeBytes)
      } catch (error) {
        throw await this.spoolFailed(file, error)
      }
      file.appendOnly = false
    }
    file.dirty = true
    file.attrs.mtimeMs = file.attrs.ctimeMs = this.config.now()
  }

  /** Starts uploading a file that is being appended to (inside its lock, after a write). */
  private startStream(file: OpenFile): void {
    assert.ok(file.stream === null && file.spool !== null && file.appendOnly)
    const spool = file.spool
    const controller = new AbortController()
    const options: WriteOptions = { posix: this.posixOf('file', file.attrs), signal: controller.signal }
    const stream: StreamingUpload = { controller, options, result: Promise.resolve(null as unknown as ObjectInfo), sentBytes: 0, ending: false, wake: () => {}, reading: null }
    const body = async function* (): AsyncGenerator<Buffer> {
      for (;;) {
        if (controller.signal.aborted) throw fsError(errno.ECANCELED, `${file.path}: upload while writing aborted`)
        if (stream.sentBytes < spool.sizeBytes) {
          stream.reading = spool.read(stream.sentBytes, Math.min(fuseUploadPieceBytes, spool.sizeBytes - stream.sentBytes))
          const piece = await stream.reading
          stream.reading = null
          stream.sentBytes += piece.length
          yield piece
          continue
        }
        if (stream.ending) return
        await new Promise<void>((resolve) => (stream.wake = resolve))
      }
    }
    stream.result = this.config.objects.putObject(this.config.bucket, file.key, body(), options)
    stream.result.catch(() => {}) // awaited by finishStream or stopStream
    file.stream = stream
    this.log.debug({ path: file.path, sizeBytes: spool.sizeBytes }, 'uploading while writing')
  }

  /** Ends the body of the file's upload at the spool's end; the committed version, or null if it failed. */
  private async finishStream(file: OpenFile, posix: PosixAttributes): Promise<ObjectInfo | null> {
    const stream = file.stream!
    file.stream = null
    stream.options.posix = posix // read at commit, after the body: the attributes at close travel with it
    stream.ending = true
    stream.wake()
    try {
      return await stream.result
    } catch (error) {
      file.streamFailed = true
      this.log.warn({ path: file.path, err: error }, 'upload while writing failed; uploading the whole file again')
      return null
    } finally {
      await stream.reading?.catch(() => {})
    }
  }

  /** Aborts the file's upload while writing, if any; its stored chunks are discarded by the object layer. */
  private async stopStream(file: OpenFile): Promise<void> {
    const stream = file.stream
    if (!stream) return
    file.stream = null
    stream.controller.abort()
    stream.wake()
    await stream.result.catch(() => {})
    await stream.reading?.catch(() => {})
  }

  /**
   * Marks the open file's spool as holding an unknown part of a failed change
   * (OpenFile.spoolFailed); the error to answer: ENOSPC or EDQUOT as the spool's disk
   * said, EIO for anything else.
   */
  private async spoolFailed(file: OpenFile, error: unknown): Promise<FsError> {
    file.spoolFailed = error instanceof Error ? error : new Error(String(error))
    file.kernelPagesMatch = false // the kernel marks the pages of a failed write stale
    await this.stopStream(file) // its upload while writing will never be committed
    this.log.warn({ path: file.path, err: error }, 'a write to the spool failed; nothing written through this open file will be committed')
    const code = (error as NodeJS.ErrnoException | null)?.code
    const value = code === 'ENOSPC' ? errno.ENOSPC : code === 'EDQUOT' ? errno.EDQUOT : errno.EIO
    return fsError(value, `${file.path}: the write spool (${this.config.spoolDir}) failed: ${file.spoolFailed.message}`, error)
  }

  private checkSpool(file: OpenFile): void {
    if (file.spoolFailed) {
      throw fsError(errno.EIO, `${file.path}: an earlier write to it failed (${file.spoolFailed.message}); nothing written since it was opened is committed`, file.spoolFailed)
    }
  }

  private async upload(file: OpenFile): Promise<void> {
    this.checkSpool(file) // its upload while writing was stopped at the failure (spoolFailed)
    if (!file.dirty || file.unlinked) {
      await this.stopStream(file)
      return
    }
    await this.materialize(file)
    const spool = file.spool!
    const sizeBytes = spool.sizeBytes
    const previous = file.base
    const posix = this.posixOf('file', file.attrs)
    let info = file.stream ? await this.finishStream(file, posix) : null
    if (info && !samePosix(info.posix, posix)) info = await this.config.objects.updateAttributes(this.config.bucket, file.key, posix)
    info ??= await this.config.objects.putObject(this.config.bucket, file.key, spool.pieces(fuseUploadPieceBytes), {
      posix,
      expectedLengthBytes: sizeBytes,
    })
    assert.equal(info.sizeBytes, sizeBytes)
    file.dirty = false
    file.stored = true
    file.base = { key: file.key, objectId: info.objectId, sizeBytes }
    if (previous) this.reader.forget(previous.objectId, previous.sizeBytes)
    if (file.kernelPagesMatch) {
      // What the kernel holds of the file is what was just committed (NFS keeps a client's own writes the same way).
      this.kernelVersions.set(file.path, info.objectId)
      this.kernelSizes.set(file.path, sizeBytes)
    } else {
      this.kernelVersions.delete(file.path)
    }
    this.settle(file.path, this.entryFromObject(info))
  }
}

/** A path-keyed map (BlobFs.kernelSizes, kernelVersions), as a rename moves its entries. */
interface PathMap<V> {
  get(path: string): V | undefined
  set(path: string, value: V): unknown
  delete(path: string): unknown
  entries(): Iterable<[string, V]>
}

/** What `map` holds for `from` is now `to`'s; nothing for `from`: nothing for `to`. */
function moveEntry<V>(map: PathMap<V>, from: string, to: string): void {
  const value = map.get(from)
  map.delete(from)
  if (value === undefined) map.delete(to)
  else map.set(to, value)
}

/** Entries under the directory `from` move under `to`; what was under `to` goes. */
function moveTree<V>(map: PathMap<V>, from: string, to: string): void {
  for (const [path, value] of [...map.entries()]) {
    if (path.startsWith(`${to}/`)) map.delete(path)
    else if (path.startsWith(`${from}/`)) {
      map.delete(path)
      map.set(to + path.slice(from.length), value)
    }
  }
}

function emptyBody(): AsyncIterable<Buffer> {
  return (async function* () {})()
}

/** The kept bytes of the old version, then zeros up to the new size. */
async function* concatBodies(head: AsyncIterable<Buffer> | null, zeroBytes: number): AsyncGenerator<Buffer> {
  if (head) yield* head
  const zeros = Buffer.alloc(Math.min(zeroBytes, fuseUploadPieceBytes))
  for (let left = zeroBytes; left > 0; left -= zeros.length) yield left >= zeros.length ? zeros : zeros.subarray(0, left)
}

function samePosix(a: PosixAttributes | null, b: PosixAttributes): boolean {
  return a !== null && a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs
}

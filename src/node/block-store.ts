// The storage engine of a node: chunks as records in append-only block logs, an
// in-memory index, group commit, recovery, and the primitives compaction and
// scrubbing are built from. It never acknowledges a record before fdatasync has
// returned, never hands out bytes that failed their page CRCs, and after a crash
// rebuilds exactly the acknowledged state (plus, possibly, complete records whose
// acknowledgement was lost with the process).
//
// Recovery = load the index snapshot, then replay the records after its position.
// Replay walks headers only; a record is trusted without reading its payload when
// a later header says the log was fdatasync'ed past it (format.ts), so only the last
// group commit has its pages read. Never-written (zero) space, a stale epoch or a
// bad payload ends a block's log; a damaged header inside it costs only its record:
// replay goes on at the next valid record (`resync`), so acknowledged records after
// it are kept, not overwritten by new appends.
//
// Index updates happen only after a group commit's fdatasync, in log order, through
// the same `apply` the replay uses: what a live node believes and what a restarted
// node rebuilds cannot drift apart.
import assert from 'node:assert/strict'
import { mkdir, open, readdir, readFile, unlink, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { pageCount, pagesCovering, verifyPages, verifyTree, type ChecksumTree, type PageSpan } from '../codec/checksum.ts'
import { BlobfsError, isBlobfsError } from '../errors.ts'
import {
  blockSizeBytesMax,
  blockSizeBytesMin,
  checksumPageSizeBytes as pageSizeBytes,
  chunkSizeBytesMax,
  groupCommitBytesMax,
  groupCommitRecordsMax,
  recordAlignmentBytes,
  snapshotIntervalBytesDefault,
  snapshotIntervalRecordsDefault,
  units,
} from '../limits.ts'
import type { Logger } from '../log.ts'
import { ChunkIndex, indexEntryBytes, type IndexEntry } from './chunk-index.ts'
import { preallocate, readFull, syncDirectory, writeFileAtomic, type PreallocateMethod } from './files.ts'
import {
  chunkIdFromBytes,
  comparePositions,
  decodeHeader,
  encodeHeader,
  positionZero,
  recordHeaderBytes,
  recordHeaderBytesMax,
  recordUnits,
  type Position,
  type RecordHeader,
  type RecordKind,
} from './format.ts'
import { readSnapshot, writeSnapshot, type SnapshotBlock } from './snapshot.ts'

export type SyncMode = 'fdatasync' | 'none'

export interface BlockStoreOptions {
  dir: string
  blockSizeBytes: number
  sync: SyncMode
  log: Logger
  snapshotIntervalRecords?: number
  snapshotIntervalBytes?: number
  observer?: StoreObserver
  now?: () => number
}

/** Callbacks for metrics and the control plane; every one is optional. */
export interface StoreObserver {
  fsync?(seconds: number): void
  groupCommit?(records: number, bytes: number): void
  snapshot?(seconds: number, bytes: number): void
  corrupt?(chunkIds: string[]): void
  readOnly?(readOnly: boolean, reason: string): void
  fatal?(error: Error): void
}

export interface RecoveryReport {
  durationMs: number
  snapshot: 'loaded' | 'absent' | 'corrupt'
  snapshotEntries: number
  replayedRecords: number
  verifiedRecords: number
  cutBlocks: number
  /** Records lost to a damaged header inside the log, skipped over to the next valid record. */
  skippedRecords: number
  chunks: number
  epoch: number
}

export interface ReadResult {
  /** Exactly the requested bytes. */
  data: Buffer
  lengthBytes: number
  root: number
  /** The pages covering the range, as verified: first page number and their CRCs. */
  span: PageSpan
  pageCrcs: Uint32Array
}

export interface StoreStats {
  chunks: number
  liveRecordBytes: number
  blockFiles: number
  blockFileBytes: number
  appendedBytes: number
  appendedRecords: number
  readOnly: boolean
  readOnlyReason: string | null
  epoch: number
}

export interface BlockStats {
  block: number
  capacityBytes: number
  endBytes: number
  liveBytes: number
  deadRatio: number
  active: boolean
}

const blockFilePattern = /^data_block_(\d{6,})\.bin$/
const stateFileName = 'store.json'
const storeFormatVersion = 1
const scanWindowBytes = 1 * units.MiB
const alignment = recordAlignmentBytes

export function blockFileName(block: number): string {
  return `data_block_${String(block).padStart(6, '0')}.bin`
}

/** Largest chunk a store with blocks of `blockSizeBytes` accepts. */
export function chunkSizeBytesMaxFor(blockSizeBytes: number): number {
  const room = Math.floor((blockSizeBytes - recordHeaderBytesMax) / pageSizeBytes) * pageSizeBytes
  return Math.min(chunkSizeBytesMax, room)
}

class Block {
  endUnits = 0
  liveUnits = 0
  refs = 0
  retired = false
  /** A snapshot written after retirement is durable: the file may go. */
  snapshotted = false
  constructor(
    readonly number: number,
    readonly path: string,
    readonly fh: FileHandle,
    public capacityUnits: number,
  ) {}
}

interface PendingAppend {
  kind: RecordKind
  chunkId: Buffer
  payload: Buffer
  pageCrcs: Uint32Array
  root: number
  createdMs: number
  origin: Position | null
  resolve(position: Position): void
  reject(error: unknown): void
}

interface Placed {
  pending: PendingAppend
  header: RecordHeader
  headerBytes: Buffer
  position: Position
  block: Block
}

const emptyPageCrcs = new Uint32Array(0)
const zeroPadding = Buffer.alloc(alignment)

export class BlockStore {
  readonly chunkSizeBytesMax: number
  private readonly log: Logger
  private readonly observer: StoreObserver
  private readonly now: () => number
  private readonly snapshotIntervalRecords: number
  private readonly snapshotIntervalBytes: number
  private readonly blocks = new Map<number, Block>()
  private readonly retiring: Block[] = []
  private readonly chunkLocks = new Map<string, Promise<void>>()
  private index = new ChunkIndex()
  private active: Block | null = null
  private nextBlock = 1
  private epoch = 0
  /** False when a full disk kept the new epoch from being recorded: no appends then. */
  private epochPersisted = true
  private synced: Position = positionZero
  private queue: PendingAppend[] = []
  private writing = false
  private drained: Promise<void> = Promise.resolve()
  private readOnlyReason: string | null = null
  private failure: Error | null = null
  private closed = false
  private preallocation: PreallocateMethod = 'fallocate'
  private recordsSinceSnapshot = 0
  private bytesSinceSnapshot = 0
  private snapshotRunning: Promise<void> | null = null
  private snapshotsDone = 0
  private appendedBytes = 0
  private appendedRecords = 0

  private constructor(readonly options: BlockStoreOptions) {
    assert.ok(options.blockSizeBytes >= blockSizeBytesMin, 'options.blockSizeBytes >= blockSizeBytesMin')
    assert.ok(options.blockSizeBytes <= blockSizeBytesMax, 'options.blockSizeBytes <= blockSizeBytesMax')
    assert.equal(options.blockSizeBytes % alignment, 0)
    this.chunkSizeBytesMax = chunkSizeBytesMaxFor(options.blockSizeBytes)
    this.log = options.log
    this.observer = options.observer ?? {}
    this.now = options.now ?? Date.now
    this.snapshotIntervalRecords = options.snapshotIntervalRecords ?? snapshotIntervalRecordsDefault
    this.snapshotIntervalBytes = options.snapshotIntervalBytes ?? snapshotIntervalBytesDefault
    assert.ok(this.snapshotIntervalRecords > 0, 'this.snapshotIntervalRecords > 0')
    assert.ok(this.snapshotIntervalBytes > 0, 'this.snapshotIntervalBytes > 0')
  }

  static async open(options: BlockStoreOptions): Promise<{ store: BlockStore; recovery: RecoveryReport }> {
    const store = new BlockStore(options)
    const recovery = await store.recover()
    return { store, recovery }
  }

  // ---------------------------------------------------------------- recovery

  private async recover(): Promise<RecoveryReport> {
    const started = performance.now()
    const dir = this.options.dir
    await mkdir(dir, { recursive: true })
    this.epoch = await this.bumpEpoch()

    const files = (await readdir(dir))
      .map((name) => blockFilePattern.exec(name))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b)
    this.nextBlock = (files.at(-1) ?? 0) + 1

    const read = await readSnapshot(dir)
    let from: Position = positionZero
    let epochFloor = 0
    let snapshotEntries = 0
    if (read.state === 'corrupt') {
      this.log.error({ reason: read.reason }, 'index snapshot is unreadable; replaying every block (chunks deleted before a compaction may reappear until the GC sweep)')
    }
    if (read.state === 'ok') {
      const snapshot = read.snapshot
      this.index = ChunkIndex.deserialize(snapshot.entries)
      snapshotEntries = this.index.size
      from = snapshot.position
      epochFloor = snapshot.epoch
      const sealed = new Map(snapshot.blocks.map((b) => [b.block, b]))
      for (const number of files) {
        if (number >= from.block) continue
        const entry = sealed.get(number)
        if (!entry) {
          // Compacted away: the snapshot that dropped it is durable, the unlink was not.
          this.log.info({ block: number }, 'removing a block file compaction had retired')
          await unlink(join(dir, blockFileName(number)))
          continue
        }
        const block = await this.openBlock(number)
        block.endUnits = entry.endUnits
      }
      for (const entry of snapshot.blocks) {
        if (!this.blocks.has(entry.block)) this.log.error({ block: entry.block }, 'block file named by the index snapshot is missing')
      }
    }
    const tail = files.filter((n) => n >= from.block)
    for (const number of tail) await this.openBlock(number)
    if (read.state === 'ok') this.accountSnapshotEntries(read.snapshot.entries)
    const replay = await this.replay(tail, from, epochFloor)
    this.dropEntriesOfMissingBlocks()

    // The tail may sit only in the page cache (the process died, not the machine):
    // make it durable before anything is written after it.
    for (const number of tail) {
      const block = this.blocks.get(number)!
      if (this.options.sync === 'fdatasync') await block.fh.datasync()
    }
    const last = files.length > 0 ? this.blocks.get(files.at(-1)!) : undefined
    if (last) {
      this.active = last
      await this.extendIfShort(last)
      this.synced = { block: last.number, offsetUnits: last.endUnits }
    }
    const report: RecoveryReport = {
      durationMs: Math.round((performance.now() - started) * 10) / 10,
      snapshot: read.state === 'ok' ? 'loaded' : read.state,
      snapshotEntries,
      replayedRecords: replay.replayed,
      verifiedRecords: replay.verified,
      cutBlocks: replay.cut,
      skippedRecords: replay.skipped,
      chunks: this.index.size,
      epoch: this.epoch,
    }
    this.log.info(report, 'block store recovered')
    return report
  }

  private async bumpEpoch(): Promise<number> {
    const path = join(this.options.dir, stateFileName)
    let epoch = 0
    try {
      const state = JSON.parse(await readFile(path, 'utf8')) as { formatVersion: number; epoch: number }
      if (state.formatVersion !== storeFormatVersion) {
        throw new BlobfsError('Internal', `${path}: store format ${state.formatVersion}, this build reads ${storeFormatVersion}`)
      }
      epoch = state.epoch
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
    assert.ok(Number.isInteger(epoch) && epoch >= 0 && epoch < 0xffffffff, 'Number.isInteger(epoch) && epoch >= 0 && epoch < 0xffffffff')
    const next = epoch + 1
    try {
      await this.persistEpoch(next)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error
      // Start anyway, read-only: every stored chunk stays readable on a full disk.
      this.epochPersisted = false
      this.readOnlyReason = 'disk full'
      this.log.error('disk full: cannot record the new epoch; starting read-only')
    }
    return next
  }

  private async persistEpoch(epoch: number): Promise<void> {
    const path = join(this.options.dir, stateFileName)
    await writeFileAtomic(this.options.dir, path, Buffer.from(JSON.stringify({ formatVersion: storeFormatVersion, epoch }) + '\n'))
  }

  private async openBlock(number: number): Promise<Block> {
    const path = join(this.options.dir, blockFileName(number))
    const fh = await open(path, 'r+')
    const { size } = await fh.stat()
    const block = new Block(number, path, fh, Math.floor(size / alignment))
    this.blocks.set(number, block)
    return block
  }

  private async extendIfShort(block: Block): Promise<void> {
    if (block.capacityUnits * alignment >= this.options.blockSizeBytes) return
    try {
      this.preallocation = await preallocate(block.path, this.options.blockSizeBytes, this.preallocation)
      block.capacityUnits = this.options.blockSizeBytes / alignment
    } catch (error) {
      if (!isBlobfsError(error, 'InsufficientStorage')) throw error
      this.log.warn({ block: block.number }, 'could not re-extend a short block; appends go to a new block')
      block.capacityUnits = block.endUnits
    }
  }

  private accountSnapshotEntries(entries: Buffer): void {
    for (let at = 0; at < entries.length; at += indexEntryBytes) {
      const block = this.blocks.get(entries.readUInt32LE(at + 16))
      if (block) block.liveUnits += recordUnits(entries.readUInt32LE(at + 24))
    }
  }

  private dropEntriesOfMissingBlocks(): void {
    const lost: Buffer[] = []
    for (let slot = 0; slot < this.index.slots; slot++) {
      const block = this.index.blockAt(slot)
      if (block !== 0 && !this.blocks.has(block)) lost.push(this.index.idAt(slot))
    }
    if (lost.length === 0) return
    for (const id of lost) this.index.remove(id)
    const ids = lost.map(chunkIdFromBytes)
    this.log.error({ chunks: ids.length }, 'chunks whose block file is missing were dropped from the index')
    this.observer.corrupt?.(ids)
  }

  private async replay(tail: number[], from: Position, epochFloor: number): Promise<{ replayed: number; verified: number; cut: number; skipped: number }> {
    interface Candidate {
      header: RecordHeader
      headerBytes: number
      position: Position
      block: Block
    }
    const candidates: Candidate[] = []
    let epoch = epochFloor
    let claim: Position = positionZero
    let skipped = 0
    for (const number of tail) {
      const block = this.blocks.get(number)!
      const headers = await HeaderReader.open(block)
      let offsetUnits = number === from.block ? from.offsetUnits : 0
      for (;;) {
        const found = await headers.at(offsetUnits)
        if (found.state === 'ok') {
          const position = { block: number, offsetUnits }
          const h = found.header
          if (h.epoch < epoch) break // a stale record of an earlier run, past the end of the log
          if (comparePositions(h.synced, position) > 0) break // a claim past itself cannot be ours
          epoch = h.epoch
          if (comparePositions(h.synced, claim) > 0) claim = h.synced
          candidates.push({ header: h, headerBytes: found.headerBytes, position, block })
          offsetUnits += recordUnits(h.lengthBytes)
          continue
        }
        // Zeros (the pre-allocated rest of the block) or the end of the file end the log. Anything
        // else is a header that a torn write or rot damaged: the record it began is lost, but
        // records after it may be acknowledged ones, so look for the next one.
        if (found.state === 'end' || found.zero) break
        const next = await this.resync(headers, block, offsetUnits, epoch)
        if (next === null) break
        this.log.error(
          { block: number, offsetUnits, skippedBytes: (next - offsetUnits) * alignment, reason: found.reason },
          'damaged record header inside a block log: that record is lost, replay goes on at the next valid record',
        )
        skipped++
        offsetUnits = next
      }
      block.endUnits = offsetUnits
    }
    let verified = 0
    let cut = 0
    let replayed = 0
    const cutBlocks = new Set<number>()
    // Payloads to verify are read through a window: the unsynced tail is usually many
    // records in a row (every record, with --sync none).
    let window: { block: number; at: number; bytes: Buffer } = { block: 0, at: 0, bytes: Buffer.alloc(0) }
    const readPayload = async (block: Block, at: number, length: number): Promise<Buffer> => {
      if (window.block !== block.number || at < window.at || at + length > window.at + window.bytes.length) {
        window = { block: block.number, at, bytes: await readFull(block.fh, Math.max(length, scanWindowBytes), at) }
      }
      return window.bytes.subarray(at - window.at, Math.min(at - window.at + length, window.bytes.length))
    }
    for (const c of candidates) {
      if (cutBlocks.has(c.block.number)) continue
      const end = { block: c.position.block, offsetUnits: c.position.offsetUnits + recordUnits(c.header.lengthBytes) }
      if (comparePositions(end, claim) > 0 && c.header.lengthBytes > 0) {
        verified++
        const payloadAt = c.position.offsetUnits * alignment + c.headerBytes
        const payload = await readPayload(c.block, payloadAt, c.header.lengthBytes)
        let good = payload.length === c.header.lengthBytes
        if (good) {
          try {
            verifyPages(payload, 0, c.header.pageCrcs)
          } catch {
            good = false
          }
        }
        if (!good) {
          this.log.warn({ block: c.block.number, offsetUnits: c.position.offsetUnits, chunkId: chunkIdFromBytes(c.header.chunkId) }, 'torn record at the end of a block log; cutting the log there')
          cutBlocks.add(c.block.number)
          c.block.endUnits = c.position.offsetUnits
          cut++
          continue
        }
      }
      this.apply(c.header, c.position)
      replayed++
    }
    return { replayed, verified, cut, skipped }
  }

  /**
   * After a damaged header at `fromUnits`: the position of the next record of this log, or null
   * when there is none (the damage is the end of the log). The damaged record was at most as long
   * as the largest record, so the next one starts within that distance. A candidate must have a
   * valid header of an epoch no older than the records before it (an older one lies past the end
   * of the log: stop) and not newer than the last run, claim no sync past itself, and — since it
   * might be bytes inside the damaged record's payload that only look like a header — carry a
   * payload that passes its page CRCs.
   */
  private async resync(headers: HeaderReader, block: Block, fromUnits: number, epoch: number): Promise<number | null> {
    const lastUnits = Math.min(fromUnits + recordUnits(chunkSizeBytesMax), headers.endUnits - 1)
    for (let offsetUnits = fromUnits + 1; offsetUnits <= lastUnits; offsetUnits++) {
      const found = await headers.at(offsetUnits)
      if (found.state !== 'ok') continue // a record that would run past the end of the file is not one either
      const h = found.header
      if (h.epoch < epoch) return null
      if (h.epoch >= this.epoch || comparePositions(h.synced, { block: block.number, offsetUnits }) > 0) continue
      const payload = await readFull(block.fh, h.lengthBytes, offsetUnits * alignment + found.headerBytes)
      if (payload.length !== h.lengthBytes) continue
      try {
        verifyPages(payload, 0, h.pageCrcs)
      } catch {
        continue
      }
      return offsetUnits
    }
    return null
  }

  // ------------------------------------------------------------ index state

  /** The one place the index changes: after fdatasync live, and during replay. */
  private apply(header: RecordHeader, at: Position): void {
    const units = recordUnits(header.lengthBytes)
    const block = this.blocks.get(at.block)
    assert.ok(block, 'the block is open')
    const entry: IndexEntry = { block: at.block, offsetUnits: at.offsetUnits, lengthBytes: header.lengthBytes, root: header.root, createdMs: header.createdMs }
    switch (header.kind) {
      case 'put': {
        const previous = this.index.set(header.chunkId, entry)
        if (previous) this.accountDead(previous)
        block.liveUnits += units
        break
      }
      case 'tombstone': {
        const previous = this.index.remove(header.chunkId)
        if (previous) this.accountDead(previous)
        break
      }
      case 'move': {
        // Applies only if the chunk still lives where the copy was taken from, so a
        // delete that raced the copy wins, live and in replay alike.
        const current = this.index.get(header.chunkId)
        assert.ok(header.origin, 'a move record names its origin')
        if (current && current.block === header.origin.block && current.offsetUnits === header.origin.offsetUnits) {
          this.index.set(header.chunkId, entry)
          this.accountDead(current)
          block.liveUnits += units
        }
        break
      }
    }
  }

  private accountDead(entry: IndexEntry): void {
    const block = this.blocks.get(entry.block)
    if (!block) return
    block.liveUnits -= recordUnits(entry.lengthBytes)
    assert.ok(block.liveUnits >= 0, 'block.liveUnits >= 0')
  }

  // ------------------------------------------------------------ public API

  get nodeEpoch(): number {
    return this.epoch
  }

  get readOnly(): boolean {
    return this.readOnlyReason !== null
  }

  /**
   * Stores a chunk. The bytes are checked against the tree before anything is
   * written (BadDigest); the promise resolves after fdatasync. 'exists' when the
   * same id with the same bytes is already stored. Once the promise settles the
   * store holds no reference to `data` (the HTTP server reuses body buffers).
   */
  async put(chunkId: Buffer, data: Buffer, tree: ChecksumTree): Promise<'created' | 'exists'> {
    if (data.length > this.chunkSizeBytesMax) throw new BlobfsError('EntityTooLarge', `chunk of ${data.length} bytes exceeds ${this.chunkSizeBytesMax}`)
    if (tree.pageSizeBytes !== pageSizeBytes) throw new BlobfsError('InvalidArgument', `page size ${tree.pageSizeBytes} is not ${pageSizeBytes}`)
    if (tree.lengthBytes !== data.length) throw new BlobfsError('BadDigest', `tree covers ${tree.lengthBytes} bytes, body has ${data.length}`)
    verifyTree(tree)
    try {
      verifyPages(data, 0, tree.pageCrcs)
    } catch (error) {
      throw new BlobfsError('BadDigest', `chunk ${chunkIdFromBytes(chunkId)}: ${(error as Error).message}`)
    }
    return this.withChunkLock(chunkId, async () => {
      const existing = this.index.get(chunkId)
      if (existing) {
        if (existing.lengthBytes !== data.length || existing.root !== tree.root) {
          throw new BlobfsError('ChunkConflict', `chunk ${chunkIdFromBytes(chunkId)} exists with other bytes`)
        }
        try {
          const stored = await this.readEntry(chunkId, existing, pagesCovering(0, existing.lengthBytes, existing.lengthBytes))
          if (stored.payload.equals(data)) return 'exists'
          throw new BlobfsError('ChunkConflict', `chunk ${chunkIdFromBytes(chunkId)} exists with other bytes`)
        } catch (error) {
          if (!isBlobfsError(error, 'ChunkCorrupt')) throw error
          this.log.warn({ chunkId: chunkIdFromBytes(chunkId) }, 'stored copy is corrupt; writing the new one over it')
        }
      }
      this.assertWritable()
      await this.append('put', chunkId, data, tree.pageCrcs, tree.root, this.now(), null)
      return 'created'
    })
  }

  /** Writes a tombstone when the chunk is present; false when it was not. */
  async delete(chunkId: Buffer): Promise<boolean> {
    return this.withChunkLock(chunkId, async () => {
      if (!this.index.has(chunkId)) return false
      if (this.failure) throw this.unavailable()
      await this.append('tombstone', chunkId, Buffer.alloc(0), emptyPageCrcs, 0, this.now(), null)
      return true
    })
  }

  head(chunkId: Buffer): { lengthBytes: number; root: number; createdMs: number } | null {
    const entry = this.index.get(chunkId)
    return entry ? { lengthBytes: entry.lengthBytes, root: entry.root, createdMs: entry.createdMs } : null
  }

  /** Where a chunk's record sits (block, byte offset, record size): for tests and tools. */
  location(chunkId: Buffer): { block: number; offsetBytes: number; recordBytes: number; path: string } | null {
    const entry = this.index.get(chunkId)
    if (!entry) return null
    const block = this.blocks.get(entry.block)
    assert.ok(block, 'the index points at an open block')
    return { block: entry.block, offsetBytes: entry.offsetUnits * alignment, recordBytes: recordUnits(entry.lengthBytes) * alignment, path: block.path }
  }

  /**
   * Reads a chunk or a range of it. Every page the range touches is read and
   * verified before this returns; ChunkCorrupt (reported to the observer) when any
   * fails, ChunkNotFound when absent, InvalidRange when outside the chunk.
   *
   * `take`, when given, supplies the buffer a whole-chunk read lands in (header and
   * payload, one read): the HTTP server lends pooled buffers and takes them back
   * once the response is written. When read() returns or throws, no read into it is
   * still going on, and the store keeps no reference to it. Range reads not from
   * the first page read into buffers of their own.
   */
  async read(chunkId: Buffer, range?: { offsetBytes: number; lengthBytes: number }, take?: (lengthBytes: number) => Buffer): Promise<ReadResult> {
    const entry = this.index.get(chunkId)
    if (!entry) throw new BlobfsError('ChunkNotFound', `chunk ${chunkIdFromBytes(chunkId)} is not on this node`)
    const offset = range?.offsetBytes ?? 0
    const length = range?.lengthBytes ?? entry.lengthBytes
    const span = pagesCovering(offset, length, entry.lengthBytes)
    try {
      const { payload, pageCrcs } = await this.readEntry(chunkId, entry, span, take)
      return {
        data: payload.subarray(offset - span.startBytes, offset - span.startBytes + length),
        lengthBytes: entry.lengthBytes,
        root: entry.root,
        span,
        pageCrcs: pageCrcs.subarray(span.firstPage, span.endPage),
      }
    } catch (error) {
      if (isBlobfsError(error, 'ChunkCorrupt')) this.observer.corrupt?.([chunkIdFromBytes(chunkId)])
      throw error
    }
  }

  /** Reads and verifies a whole record (header and every page): the scrubber's check. */
  async verify(chunkId: Buffer): Promise<{ state: 'ok' | 'gone' | 'corrupt'; bytes: number; reason?: string }> {
    const entry = this.index.get(chunkId)
    if (!entry) return { state: 'gone', bytes: 0 }
    try {
      await this.readEntry(chunkId, entry, pagesCovering(0, entry.lengthBytes, entry.lengthBytes))
      return { state: 'ok', bytes: entry.lengthBytes }
    } catch (error) {
      if (!isBlobfsError(error, 'ChunkCorrupt')) throw error
      return { state: 'corrupt', bytes: entry.lengthBytes, reason: error.message }
    }
  }

  /** A consistent copy of every live entry (see `ChunkIndex.serialize`), for inventories. */
  entriesSnapshot(): Buffer {
    return this.index.serialize()
  }

  get chunkCount(): number {
    return this.index.size
  }

  stats(): StoreStats {
    let liveUnits = 0
    let fileBytes = 0
    for (const block of this.blocks.values()) {
      liveUnits += block.liveUnits
      fileBytes += block.capacityUnits * alignment
    }
    return {
      chunks: this.index.size,
      liveRecordBytes: liveUnits * alignment,
      blockFiles: this.blocks.size,
      blockFileBytes: fileBytes,
      appendedBytes: this.appendedBytes,
      appendedRecords: this.appendedRecords,
      readOnly: this.readOnly,
      readOnlyReason: this.readOnlyReason,
      epoch: this.epoch,
    }
  }

  blockStats(): BlockStats[] {
    return [...this.blocks.values()]
      .sort((a, b) => a.number - b.number)
      .map((b) => ({
        block: b.number,
        capacityBytes: b.capacityUnits * alignment,
        endBytes: b.endUnits * alignment,
        liveBytes: b.liveUnits * alignment,
        deadRatio: b.capacityUnits === 0 ? 1 : 1 - b.liveUnits / b.capacityUnits,
        active: b === this.active,
      }))
  }

  /** Leaves read-only mode after a disk-full (the caller saw free space again). */
  async clearReadOnly(): Promise<void> {
    if (this.readOnlyReason !== 'disk full' || this.failure) return
    if (!this.epochPersisted) {
      try {
        await this.persistEpoch(this.epoch)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOSPC') return
        throw error
      }
      this.epochPersisted = true
    }
    this.readOnlyReason = null
    this.log.info('leaving read-only mode')
    this.observer.readOnly?.(false, 'space available')
  }

  // ------------------------------------------------------- compaction primitives

  /** Blocks compaction may take: sealed, synced past, not being retired. */
  compactionCandidates(deadRatioMin: number): BlockStats[] {
    return this.blockStats()
      .filter((b) => !b.active && b.block < this.synced.block && b.deadRatio >= deadRatioMin && !this.blocks.get(b.block)!.retired)
      .sort((a, b) => b.deadRatio - a.deadRatio)
  }

  /** Live chunks whose record is in `block`, in file order. */
  liveInBlock(block: number): { chunkId: Buffer; offsetUnits: number; lengthBytes: number }[] {
    const out: { chunkId: Buffer; offsetUnits: number; lengthBytes: number }[] = []
    for (let slot = 0; slot < this.index.slots; slot++) {
      if (this.index.blockAt(slot) !== block) continue
      const entry = this.index.entryAt(slot)
      out.push({ chunkId: this.index.idAt(slot), offsetUnits: entry.offsetUnits, lengthBytes: entry.lengthBytes })
    }
    return out.sort((a, b) => a.offsetUnits - b.offsetUnits)
  }

  /**
   * Copies one live record out of a block being compacted. 'gone' when it was
   * deleted or rewritten meanwhile; 'corrupt' when its pages fail — it is then
   * reported and tombstoned, so the block can go and repair rebuilds it elsewhere.
   */
  async moveRecord(chunkId: Buffer, from: Position): Promise<{ state: 'moved' | 'gone' | 'corrupt'; bytes: number }> {
    return this.withChunkLock(chunkId, async () => {
      const entry = this.index.get(chunkId)
      if (!entry || entry.block !== from.block || entry.offsetUnits !== from.offsetUnits) return { state: 'gone', bytes: 0 }
      if (this.failure) throw this.unavailable()
      let record: { payload: Buffer; pageCrcs: Uint32Array }
      try {
        record = await this.readEntry(chunkId, entry, pagesCovering(0, entry.lengthBytes, entry.lengthBytes))
      } catch (error) {
        if (!isBlobfsError(error, 'ChunkCorrupt')) throw error
        const id = chunkIdFromBytes(chunkId)
        this.log.error({ chunkId: id, block: from.block, reason: error.message }, 'compaction found a corrupt record; reporting it and dropping it from this node')
        this.observer.corrupt?.([id])
        await this.append('tombstone', chunkId, Buffer.alloc(0), emptyPageCrcs, 0, this.now(), null)
        return { state: 'corrupt', bytes: 0 }
      }
      await this.append('move', chunkId, record.payload, record.pageCrcs, entry.root, entry.createdMs, from)
      return { state: 'moved', bytes: entry.lengthBytes }
    })
  }

  /**
   * Retires a compacted block: it leaves the store now; its file is removed once a
   * snapshot without it is durable and no reader holds it. False while live
   * records remain in it.
   */
  async retireBlock(number: number): Promise<boolean> {
    const block = this.blocks.get(number)
    if (block) {
      assert.ok(block !== this.active, 'the active block is never retired')
      assert.ok(number < this.synced.block, 'a retired block lies before the synced position')
      if (this.liveInBlock(number).length > 0) return false
      assert.equal(block.liveUnits, 0)
      block.retired = true
      this.blocks.delete(number)
      this.retiring.push(block)
    } else {
      // A retry after the snapshot failed (e.g. ENOSPC): the block is already out.
      assert.ok(this.retiring.some((b) => b.number === number), `block ${number} is open or retiring`)
    }
    await this.snapshot()
    await this.releaseRetired()
    return true
  }

  // ------------------------------------------------------------ snapshots

  /** Writes an index snapshot now (coalescing with one in progress). */
  async snapshot(): Promise<void> {
    // One running may have captured the index before the caller's change: wait for
    // it, then take a fresh one. Only one writes the temp file at a time.
    while (this.snapshotRunning) await this.snapshotRunning.catch(() => {})
    const running = this.writeSnapshotNow().finally(() => {
      if (this.snapshotRunning === running) this.snapshotRunning = null
    })
    this.snapshotRunning = running
    await running
  }

  private async writeSnapshotNow(): Promise<void> {
    const started = performance.now()
    // Captured synchronously: the index reflects exactly the records before `synced`.
    const position = this.synced
    const blocks: SnapshotBlock[] = [...this.blocks.values()]
      .filter((b) => b.number < position.block)
      .sort((a, b) => a.number - b.number)
      .map((b) => ({ block: b.number, endUnits: b.endUnits }))
    const entries = this.index.serialize()
    const retiredBefore = this.retiring.filter((b) => b.retired)
    this.recordsSinceSnapshot = 0
    this.bytesSinceSnapshot = 0
    const bytes = await writeSnapshot(this.options.dir, { epoch: this.epoch, position, blocks, entries, createdMs: this.now() })
    for (const block of retiredBefore) block.snapshotted = true
    this.snapshotsDone++
    const seconds = (performance.now() - started) / 1000
    this.observer.snapshot?.(seconds, bytes)
    this.log.debug({ entries: entries.length / indexEntryBytes, bytes, ms: Math.round(seconds * 1000), position }, 'index snapshot written')
  }

  private maybeSnapshot(): void {
    if (this.snapshotRunning || this.closed) return
    if (this.recordsSinceSnapshot < this.snapshotIntervalRecords && this.bytesSinceSnapshot < this.snapshotIntervalBytes) return
    this.snapshot().catch((error) => this.log.error({ err: error }, 'index snapshot failed; will retry after the next interval'))
  }

  get snapshotCount(): number {
    return this.snapshotsDone
  }

  private async releaseRetired(): Promise<void> {
    for (const block of [...this.retiring]) {
      if (!block.snapshotted || block.refs > 0) continue
      this.retiring.splice(this.retiring.indexOf(block), 1)
      await block.fh.close()
      await unlink(block.path)
      await syncDirectory(this.options.dir)
      this.log.info({ block: block.number }, 'compacted block file removed')
    }
  }

  // ------------------------------------------------------------ group commit

  private append(kind: RecordKind, chunkId: Buffer, payload: Buffer, pageCrcs: Uint32Array, root: number, createdMs: number, origin: Position | null): Promise<Position> {
    if (this.failure) return Promise.reject(this.unavailable())
    if (this.closed) return Promise.reject(new BlobfsError('NodeUnavailable', 'block store is closed'))
    if (!this.epochPersisted) return Promise.reject(new BlobfsError('InsufficientStorage', 'storage node is full (its epoch could not be recorded)'))
    return new Promise((resolve, reject) => {
      this.queue.push({ kind, chunkId, payload, pageCrcs, root, createdMs, origin, resolve, reject })
      if (!this.writing) {
        this.writing = true
        this.drained = this.drain()
      }
    })
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        let bytes = 0
        let count = 0
        while (count < this.queue.length && count < groupCommitRecordsMax) {
          const size = recordUnits(this.queue[count]!.payload.length) * alignment
          if (count > 0 && bytes + size > groupCommitBytesMax) break
          bytes += size
          count++
        }
        await this.writeBatch(this.queue.splice(0, count))
      }
    } finally {
      this.writing = false
    }
  }

  private async writeBatch(batch: PendingAppend[]): Promise<void> {
    const placed: Placed[] = []
    for (const pending of batch) {
      if (this.failure) {
        pending.reject(this.unavailable())
        continue
      }
      const units = recordUnits(pending.payload.length)
      let block: Block
      try {
        block = await this.blockWithRoom(units)
      } catch (error) {
        pending.reject(error)
        continue
      }
      const position = { block: block.number, offsetUnits: block.endUnits }
      const header: RecordHeader = {
        kind: pending.kind,
        chunkId: pending.chunkId,
        lengthBytes: pending.payload.length,
        pageCrcs: pending.pageCrcs,
        root: pending.root,
        epoch: this.epoch,
        createdMs: pending.createdMs,
        // In --sync none nothing is ever known durable: recovery verifies every page.
        synced: this.options.sync === 'fdatasync' ? this.synced : positionZero,
        origin: pending.origin,
      }
      const headerBytes = encodeHeader(header)
      assert.equal(headerBytes.length, recordHeaderBytes(pending.pageCrcs.length))
      block.endUnits += units
      assert.ok(block.endUnits <= block.capacityUnits, 'block.endUnits <= block.capacityUnits')
      placed.push({ pending, header, headerBytes, position, block })
    }
    if (placed.length === 0) return
    try {
      const touched: Block[] = []
      let i = 0
      while (i < placed.length) {
        const block = placed[i]!.block
        const start = placed[i]!.position.offsetUnits * alignment
        const buffers: Buffer[] = []
        let expected = 0
        for (; i < placed.length && placed[i]!.block === block; i++) {
          const p = placed[i]!
          const recordBytes = recordUnits(p.header.lengthBytes) * alignment
          const padding = recordBytes - p.headerBytes.length - p.pending.payload.length
          buffers.push(p.headerBytes)
          if (p.pending.payload.length > 0) buffers.push(p.pending.payload)
          if (padding > 0) buffers.push(zeroPadding.subarray(0, padding))
          expected += recordBytes
        }
        const { bytesWritten } = await block.fh.writev(buffers, start)
        if (bytesWritten !== expected) throw new Error(`short write: ${bytesWritten} of ${expected} bytes at block ${block.number}`)
        touched.push(block)
      }
      if (this.options.sync === 'fdatasync') {
        const started = performance.now()
        await Promise.all(touched.map((b) => b.fh.datasync()))
        this.observer.fsync?.((performance.now() - started) / 1000)
      }
    } catch (error) {
      this.fail(error as Error)
      for (const p of placed) p.pending.reject(this.unavailable())
      return
    }
    const last = placed.at(-1)!
    this.synced = { block: last.position.block, offsetUnits: last.position.offsetUnits + recordUnits(last.header.lengthBytes) }
    let bytes = 0
    for (const p of placed) {
      this.apply(p.header, p.position)
      bytes += recordUnits(p.header.lengthBytes) * alignment
    }
    this.appendedBytes += bytes
    this.appendedRecords += placed.length
    this.recordsSinceSnapshot += placed.length
    this.bytesSinceSnapshot += bytes
    this.observer.groupCommit?.(placed.length, bytes)
    for (const p of placed) p.pending.resolve(p.position)
    this.maybeSnapshot()
  }

  private async blockWithRoom(units: number): Promise<Block> {
    const active = this.active
    if (active && active.endUnits + units <= active.capacityUnits) return active
    if (this.readOnlyReason === 'disk full') throw new BlobfsError('InsufficientStorage', 'storage node is full')
    assert.ok(units * alignment <= this.options.blockSizeBytes, 'units * alignment <= this.options.blockSizeBytes')
    const number = this.nextBlock
    const path = join(this.options.dir, blockFileName(number))
    try {
      this.preallocation = await preallocate(path, this.options.blockSizeBytes, this.preallocation)
    } catch (error) {
      await unlink(path).catch(() => {})
      if (isBlobfsError(error, 'InsufficientStorage')) {
        this.readOnlyReason = 'disk full'
        this.log.error({ block: number }, 'disk full: no space for a new block; the node is read-only')
        this.observer.readOnly?.(true, 'disk full')
      }
      throw error
    }
    if (this.preallocation === 'zero-fill') this.log.warn('fallocate is unavailable here; new blocks are pre-allocated by writing zeros')
    await syncDirectory(this.options.dir)
    this.nextBlock++
    const block = await this.openBlock(number)
    assert.equal(block.capacityUnits * alignment, this.options.blockSizeBytes)
    this.active = block
    this.log.info({ block: number, sizeBytes: this.options.blockSizeBytes }, 'new block file')
    return block
  }

  private fail(error: Error): void {
    if (this.failure) return
    this.failure = error
    this.readOnlyReason = 'log write failed'
    this.log.fatal({ err: error }, 'block log write or fdatasync failed; refusing all writes (restart the node to recover)')
    this.observer.readOnly?.(true, 'log write failed')
    this.observer.fatal?.(error)
  }

  private unavailable(): BlobfsError {
    return new BlobfsError('NodeUnavailable', 'the block log failed; the node must restart', { cause: this.failure })
  }

  private assertWritable(): void {
    if (this.failure) throw this.unavailable()
    if (this.readOnlyReason !== null) throw new BlobfsError('InsufficientStorage', `storage node is read-only (${this.readOnlyReason})`)
  }

  // ------------------------------------------------------------ reads

  /**
   * Reads the header of a record and the pages `span` covers, checking the header
   * against the index (the after-read half of the pair) and the pages against it.
   */
  private async readEntry(chunkId: Buffer, entry: IndexEntry, span: PageSpan, take?: (lengthBytes: number) => Buffer): Promise<{ payload: Buffer; pageCrcs: Uint32Array }> {
    const block = this.blocks.get(entry.block)
    assert.ok(block, `index points at block ${entry.block}, which is not open`)
    block.refs++
    try {
      const headerLength = recordHeaderBytes(pageCount(entry.lengthBytes))
      const recordAt = entry.offsetUnits * alignment
      let headerBuffer: Buffer
      let payload: Buffer
      const wanted = span.endBytes - span.startBytes
      if (span.startBytes === 0) {
        const all = await this.readChecked(block, headerLength + wanted, recordAt, take?.(headerLength + wanted))
        headerBuffer = all.subarray(0, headerLength)
        payload = all.subarray(headerLength)
      } else {
        ;[headerBuffer, payload] = await Promise.all([
          this.readChecked(block, headerLength, recordAt),
          this.readChecked(block, wanted, recordAt + headerLength + span.startBytes),
        ])
      }
      const id = chunkIdFromBytes(chunkId)
      const decoded = decodeHeader(headerBuffer)
      if (!decoded.ok) throw new BlobfsError('ChunkCorrupt', `chunk ${id}: record header unreadable (${decoded.reason})`)
      const h = decoded.header
      if (!h.chunkId.equals(chunkId) || h.kind === 'tombstone' || h.lengthBytes !== entry.lengthBytes || h.root !== entry.root) {
        throw new BlobfsError('ChunkCorrupt', `chunk ${id}: record header does not match the index`)
      }
      try {
        verifyPages(payload, span.firstPage, h.pageCrcs)
      } catch (error) {
        throw new BlobfsError('ChunkCorrupt', `chunk ${id}: ${(error as Error).message}`)
      }
      return { payload, pageCrcs: h.pageCrcs }
    } finally {
      block.refs--
      if (block.retired && block.refs === 0) this.releaseRetired().catch((error) => this.log.error({ err: error }, 'removing a retired block failed'))
    }
  }

  private async readChecked(block: Block, length: number, position: number, into?: Buffer): Promise<Buffer> {
    let bytes: Buffer
    try {
      bytes = await readFull(block.fh, length, position, into)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EIO') throw new BlobfsError('ChunkCorrupt', `read error in block ${block.number}`, { cause: error })
      throw error
    }
    if (bytes.length !== length) throw new BlobfsError('ChunkCorrupt', `block ${block.number} ends before the record does`)
    return bytes
  }

  private async withChunkLock<T>(chunkId: Buffer, fn: () => Promise<T>): Promise<T> {
    const key = chunkId.toString('hex')
    const previous = this.chunkLocks.get(key)
    let release!: () => void
    const mine = new Promise<void>((resolve) => (release = resolve))
    const tail = previous ? previous.then(() => mine) : mine
    this.chunkLocks.set(key, tail)
    if (previous) await previous
    try {
      return await fn()
    } finally {
      release()
      if (this.chunkLocks.get(key) === tail) this.chunkLocks.delete(key)
    }
  }

  // ------------------------------------------------------------ shutdown

  /**
   * Waits for queued appends, writes a final snapshot (unless `snapshot: false`,
   * which leaves the directory as a crash would) and closes every file.
   */
  async close(options: { snapshot?: boolean } = {}): Promise<void> {
    if (this.closed) return
    this.closed = true
    while (this.writing) await this.drained
    if (options.snapshot !== false && !this.failure) {
      // A full disk may refuse the snapshot: the log holds everything, start-up replays it.
      await this.snapshot().catch((error) => this.log.warn({ err: error }, 'final index snapshot failed; the next start replays the log'))
    }
    while (this.snapshotRunning) await this.snapshotRunning.catch(() => {})
    await this.releaseRetired().catch(() => {})
    for (const block of [...this.blocks.values(), ...this.retiring]) await block.fh.close().catch(() => {})
    this.blocks.clear()
  }
}

type HeaderAt =
  | { state: 'ok'; header: RecordHeader; headerBytes: number }
  /** No valid header here; `zero` when the unit holds only zeros (never-written space). */
  | { state: 'bad'; zero: boolean; reason: string }
  /** Past the end of the file, or a record that would run past it. */
  | { state: 'end' }

const zeroUnit = Buffer.alloc(alignment)

/** Reads the headers of a block at aligned positions, through large windows. */
class HeaderReader {
  private windowAt = -1
  private window: Buffer = Buffer.alloc(0)

  private constructor(
    private readonly block: Block,
    private readonly endBytes: number,
  ) {}

  /** The file's end in whole units: no record starts at or after it. */
  get endUnits(): number {
    return Math.floor(this.endBytes / alignment)
  }

  static async open(block: Block): Promise<HeaderReader> {
    const { size } = await block.fh.stat()
    return new HeaderReader(block, Math.min(size, block.capacityUnits * alignment))
  }

  async at(offsetUnits: number): Promise<HeaderAt> {
    const at = offsetUnits * alignment
    if (at >= this.endBytes) return { state: 'end' }
    if (this.windowAt < 0 || at < this.windowAt || at + recordHeaderBytesMax > this.windowAt + this.window.length) {
      this.window = await readFull(this.block.fh, Math.min(scanWindowBytes, this.endBytes - at), at)
      this.windowAt = at
    }
    const decoded = decodeHeader(this.window, at - this.windowAt)
    if (!decoded.ok) {
      const unit = this.window.subarray(at - this.windowAt, at - this.windowAt + alignment)
      return { state: 'bad', zero: unit.equals(zeroUnit.subarray(0, unit.length)), reason: decoded.reason }
    }
    if ((offsetUnits + recordUnits(decoded.header.lengthBytes)) * alignment > this.endBytes) return { state: 'end' } // runs past the end of the file
    return { state: 'ok', header: decoded.header, headerBytes: decoded.headerBytes }
  }
}

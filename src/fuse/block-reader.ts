// Reads of stored objects for the FUSE daemon: range reads through the object layer
// in aligned blocks, an LRU of blocks bounded in bytes (lru-cache), and readahead of
// whole stripes for sequential readers. A block is a view of the object layer's own
// buffer when the piece it comes in is that whole buffer, in whole blocks (a full
// stripe's chunk, read for a stripe ahead): no copy, no second allocation; such views
// of one buffer leave the cache together, so a kept block never holds its siblings'
// bytes alive uncounted. Blocks are keyed by objectId, so a new
// version of a key can never be served from an old version's blocks, and a block is
// cached only once the object layer returned all of its bytes (it verified their
// CRC32C pages on the way; a short or long body is refused here, never served).
import assert from 'node:assert/strict'
import { LRUCache } from 'lru-cache'
import type { Logger } from '../log.ts'
import type { ObjectLayer } from '../objects/types.ts'
import { errno, fsError } from './errno.ts'

export interface BlockReaderOptions {
  objects: ObjectLayer
  bucket: string
  blockSizeBytes: number
  cacheBytes: number
  stripeSizeBytes: number
  readaheadBytes: number
  readaheadInFlightBytesMax: number
  log: Logger
}

/** The stored version a handle reads. */
export interface ObjectVersion {
  key: string
  objectId: string
  sizeBytes: number
}

/** Per open handle: where the last read ended, to tell sequential readers. */
export interface ReadStream {
  nextPosition: number
  /** Where the readahead asked for so far ends (0: nothing asked), so each read checks only what is new. */
  readaheadEnd?: number
}

interface Deferred {
  promise: Promise<Buffer>
  resolve: (block: Buffer) => void
  reject: (error: unknown) => void
}

function deferred(): Deferred {
  let resolve!: (block: Buffer) => void
  let reject!: (error: unknown) => void
  const promise = new Promise<Buffer>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

export class BlockReader {
  private readonly cache: LRUCache<string, Buffer>
  private readonly inFlight = new Map<string, Promise<Buffer>>()
  /** Cached blocks that are views of one buffer of the object layer's, by that buffer. */
  private readonly views = new Map<ArrayBufferLike, Set<string>>()
  /** Views whose sibling was evicted, to be dropped once the cache is done evicting. */
  private readonly released: string[] = []
  private readaheadInFlightBytes = 0
  /**
   * hits: blocks in the cache; waits: blocks still being fetched when read; misses: blocks
   * fetched for the read itself; viewedBytes / copiedBytes: fetched bytes cached as views
   * of the object layer's buffers / copied into blocks of their own.
   */
  readonly stats = { hits: 0, waits: 0, misses: 0, fetches: 0, fetchedBytes: 0, readaheadFetches: 0, readaheadBlocksChecked: 0, viewedBytes: 0, copiedBytes: 0 }

  constructor(private readonly options: BlockReaderOptions) {
    assert.ok(options.blockSizeBytes > 0 && options.stripeSizeBytes % options.blockSizeBytes === 0)
    assert.ok(options.cacheBytes >= options.blockSizeBytes)
    this.cache = new LRUCache<string, Buffer>({
      maxSize: options.cacheBytes,
      sizeCalculation: (block) => Math.max(1, block.length),
      dispose: (block, key, reason) => this.disposed(block, key, reason),
    })
  }

  get cachedBytes(): number {
    return this.cache.calculatedSize ?? 0
  }

  /** Memory the cached blocks hold: each distinct buffer under them once (views share one). */
  get retainedBytes(): number {
    const buffers = new Set<ArrayBufferLike>()
    let bytes = 0
    for (const block of this.cache.values()) {
      if (!this.views.has(block.buffer)) bytes += block.length
      else if (!buffers.has(block.buffer)) {
        buffers.add(block.buffer)
        bytes += block.buffer.byteLength
      }
    }
    return bytes
  }

  private disposed(block: Buffer, key: string, reason: LRUCache.DisposeReason): void {
    const siblings = this.views.get(block.buffer)
    if (!siblings?.delete(key)) return
    if (siblings.size === 0) this.views.delete(block.buffer)
    else if (reason === 'evict') this.released.push(...siblings)
  }

  private cacheBlock(key: string, block: Buffer, view: boolean): void {
    this.cache.set(key, block)
    if (view && this.cache.has(key)) {
      let siblings = this.views.get(block.buffer)
      if (!siblings) this.views.set(block.buffer, (siblings = new Set()))
      siblings.add(key)
    }
    // The evicted view's siblings go too: their buffer is freed only once none is kept.
    for (let key = this.released.pop(); key !== undefined; key = this.released.pop()) this.cache.delete(key)
  }

  /** Bytes of readahead fetches not yet in (all readers together). */
  get readaheadBytesInFlight(): number {
    return this.readaheadInFlightBytes
  }

  /** Up to `length` bytes at `position` of `version` (fewer at the end of the object). */
  async read(version: ObjectVersion, position: number, length: number, stream: ReadStream): Promise<Buffer> {
    const end = Math.min(version.sizeBytes, position + length)
    if (end <= position) return Buffer.alloc(0)
    const B = this.options.blockSizeBytes
    const first = Math.floor(position / B)
    const last = Math.floor((end - 1) / B)
    const sequential = position === stream.nextPosition
    stream.nextPosition = end
    if (!sequential) stream.readaheadEnd = 0

    const blocks = this.blocks(version, first, last, false)
    if (sequential && this.options.readaheadBytes > 0) this.readahead(version, end, stream)
    const parts = await Promise.all(blocks)
    const pieces = parts.map((block, i) => {
      const blockStart = (first + i) * B
      return block.subarray(Math.max(0, position - blockStart), Math.min(block.length, end - blockStart))
    })
    const out = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces)
    assert.equal(out.length, end - position)
    return out
  }

  /** Promises for blocks first..last, fetching the missing ones in contiguous runs. */
  private blocks(version: ObjectVersion, first: number, last: number, readahead: boolean): Promise<Buffer>[] {
    const out: Promise<Buffer>[] = []
    let runStart = -1
    const flush = (runEnd: number): void => {
      if (runStart < 0) return
      out.push(...this.fetch(version, runStart, runEnd, readahead))
      runStart = -1
    }
    for (let index = first; index <= last; index++) {
      const key = `${version.objectId}:${index}`
      const cached = this.cache.get(key)
      const pending = cached ? undefined : this.inFlight.get(key)
      if (cached || pending) {
        flush(index - 1)
        if (!readahead) {
          if (cached) this.stats.hits++
          else this.stats.waits++
          out.push(cached ? Promise.resolve(cached) : pending!)
        }
        continue
      }
      if (!readahead) this.stats.misses++
      if (runStart < 0) runStart = index
    }
    flush(last)
    return out
  }

  /**
   * Keeps whole stripes fetched ahead of a sequential reader, up to the budget. Only
   * the part of the window not asked for yet by this stream is looked at: a read of
   * 128 KiB checks no block at all until the window moves into a new stripe.
   */
  private readahead(version: ObjectVersion, position: number, stream: ReadStream): void {
    const { stripeSizeBytes, readaheadBytes, blockSizeBytes } = this.options
    const windowEnd = Math.min(version.sizeBytes, Math.ceil((position + readaheadBytes) / stripeSizeBytes) * stripeSizeBytes)
    const from = Math.max(position, stream.readaheadEnd ?? 0)
    if (from >= windowEnd) return
    // Stripe by stripe, so each fetch is one whole stripe (or what is left of it).
    for (let start = Math.floor(from / stripeSizeBytes) * stripeSizeBytes; start < windowEnd; start += stripeSizeBytes) {
      const first = Math.max(Math.floor(from / blockSizeBytes), start / blockSizeBytes)
      const stop = Math.min(windowEnd, start + stripeSizeBytes)
      const last = Math.floor((stop - 1) / blockSizeBytes)
      if (first > last) continue
      const bytes = (last - first + 1) * blockSizeBytes
      if (this.readaheadInFlightBytes + bytes > this.options.readaheadInFlightBytesMax) return
      this.stats.readaheadBlocksChecked += last - first + 1
      for (const promise of this.blocks(version, first, last, true)) promise.catch(() => {})
      stream.readaheadEnd = stop
    }
  }

  /** One range read for blocks first..last; each block settles as soon as its bytes are in. */
  private fetch(version: ObjectVersion, first: number, last: number, readahead: boolean): Promise<Buffer>[] {
    const B = this.options.blockSizeBytes
    const start = first * B
    const end = Math.min(version.sizeBytes, (last + 1) * B) // exclusive
    assert.ok(start < end)
    const waiting: Deferred[] = []
    for (let index = first; index <= last; index++) {
      const d = deferred()
      waiting.push(d)
      this.inFlight.set(`${version.objectId}:${index}`, d.promise)
    }
    const bytes = end - start
    this.stats.fetches++
    if (readahead) {
      this.stats.readaheadFetches++
      this.readaheadInFlightBytes += bytes
    }
    const settle = (index: number): void => {
      this.inFlight.delete(`${version.objectId}:${index}`)
    }
    void (async () => {
      let next = 0 // index into waiting
      try {
        const result = await this.options.objects.getObject(this.options.bucket, version.key, { range: { start, end: end - 1 } })
        if (result.info.objectId !== version.objectId) {
          result.body.destroy()
          throw fsError(errno.ESTALE, `${version.key} was replaced since it was opened (close and open it again)`)
        }
        let block: Buffer | null = null // the block being copied into, when pieces do not line up with blocks
        let filled = 0
        let received = 0
        for await (const piece of result.body as AsyncIterable<Buffer>) {
          // Views only of a piece that is its whole buffer, starts a block and is whole
          // blocks (a full stripe's chunk): then its views count every byte of the buffer.
          // A tail stripe's shorter chunks straddle blocks and are copied. Small beside the
          // cache too (a buffer cut short by eviction is held until its kept blocks go).
          const viewable =
            block === null &&
            piece.byteOffset === 0 &&
            piece.length === piece.buffer.byteLength &&
            piece.length % B === 0 &&
            piece.length <= this.options.cacheBytes / 8
          let at = 0
          while (at < piece.length) {
            if (next >= waiting.length) throw fsError(errno.EIO, `${version.key}: the object layer returned more than the ${bytes} bytes asked for`)
            const index = first + next
            const blockLength = Math.min(B, end - index * B)
            let done: Buffer | null = null
            let view = false
            if (block === null && viewable && blockLength === B && piece.length - at >= B) {
              done = piece.subarray(at, at + B)
              view = true
              at += B
              received += B
              this.stats.viewedBytes += B
            } else {
              block ??= Buffer.allocUnsafe(blockLength)
              const n = Math.min(piece.length - at, block.length - filled)
              piece.copy(block, filled, at, at + n)
              filled += n
              at += n
              received += n
              this.stats.copiedBytes += n
              if (filled === block.length) {
                done = block
                block = null
                filled = 0
              }
            }
            if (done) {
              this.cacheBlock(`${version.objectId}:${index}`, done, view)
              settle(index)
              waiting[next]!.resolve(done)
              next++
            }
          }
        }
        if (received !== bytes) throw fsError(errno.EIO, `${version.key}: the object layer returned ${received} of ${bytes} bytes`)
        this.stats.fetchedBytes += bytes
      } catch (error) {
        this.options.log.debug({ key: version.key, start, end, err: error }, 'block fetch failed')
        for (; next < waiting.length; next++) {
          settle(first + next)
          waiting[next]!.reject(error)
        }
      } finally {
        if (readahead) this.readaheadInFlightBytes -= bytes
      }
    })()
    return waiting.map((d) => d.promise)
  }

  /** Drops the blocks of a version that is gone (deleted or replaced by this daemon). */
  forget(objectId: string, sizeBytes: number): void {
    const blocks = Math.ceil(sizeBytes / this.options.blockSizeBytes)
    for (let index = 0; index < blocks; index++) this.cache.delete(`${objectId}:${index}`)
  }
}

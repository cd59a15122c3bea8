// An object's bytes as a stream (DESIGN.md, "Write, read, delete"): the first
// stripe is fetched at once and the following ones are prefetched with bounded
// parallelism, so a sequential reader is never waiting on the network and memory
// stays at `stripesAheadMax` stripes whatever the object size. Stripe rows come
// from the catalog in batches covering the requested range only. Bytes leave piece
// by piece, in order, as each is verified: the first byte waits for the first
// chunk's piece, not for the slowest chunk of the stripe.
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { fetchStripePieces, type ReadStripeContext, type StripeRecord } from './stripe-io.ts'

export interface LocatedStripe extends StripeRecord {
  /** Offset of the stripe's first byte in the object. */
  objectOffsetBytes: number
}

export interface DownloadSource {
  sizeBytes: number
  /**
   * The stripes overlapping object bytes [fromBytes, toBytes), in object order.
   * Called repeatedly with consecutive windows; may return more than asked.
   */
  loadStripes(fromBytes: number, toBytes: number): Promise<LocatedStripe[]>
}

export interface DownloadOptions {
  stripesAheadMax: number
  /** How much of the object one catalog call covers. */
  loadWindowBytes: number
}

/** Object bytes [start, endInclusive] as a Readable that never emits unverified bytes. */
export function downloadRange(
  context: ReadStripeContext,
  source: DownloadSource,
  start: number,
  endInclusive: number,
  options: DownloadOptions,
): Readable {
  assert.ok(start >= 0 && endInclusive < source.sizeBytes && start <= endInclusive + 1)
  const end = endInclusive + 1
  async function* generate(): AsyncGenerator<Buffer> {
    /** Stripes being fetched, each as its pieces in order. */
    const queue: Promise<Buffer>[][] = []
    let loadedTo = start
    let pending: LocatedStripe[] = []
    let cursor = start
    const refill = async () => {
      while (queue.length < options.stripesAheadMax && cursor < end) {
        if (pending.length === 0) {
          const to = Math.min(end, loadedTo + options.loadWindowBytes)
          pending = (await source.loadStripes(loadedTo, to)).filter((s) => s.objectOffsetBytes + s.lengthBytes > cursor)
          loadedTo = to
          if (pending.length === 0) {
            if (loadedTo >= end) throw new Error(`object catalog rows end before byte ${cursor} of ${source.sizeBytes}`)
            continue
          }
        }
        const stripe = pending.shift()!
        assert.ok(stripe.objectOffsetBytes <= cursor, `stripe rows leave a hole at byte ${cursor}`)
        const from = cursor - stripe.objectOffsetBytes
        const to = Math.min(stripe.lengthBytes, end - stripe.objectOffsetBytes)
        cursor = stripe.objectOffsetBytes + to
        loadedTo = Math.max(loadedTo, cursor)
        queue.push(fetchStripePieces(context, stripe, from, to - from))
      }
    }
    await refill()
    while (queue.length > 0) {
      const pieces = queue.shift()!
      // The next stripes (and, past the loaded window, their catalog rows) are
      // requested while this stripe's pieces are handed on, not before the first.
      const refilling = refill()
      refilling.catch(() => {}) // awaited below; never unhandled if the reader stops first
      for (const piece of pieces) yield await piece
      await refilling
    }
    assert.equal(cursor, end)
  }
  return Readable.from(generate(), { objectMode: false, highWaterMark: 1 })
}

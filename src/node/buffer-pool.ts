// Chunk-sized buffers a node reuses for request bodies (PUT) and whole-chunk reads (GET). A fresh 2 MiB buffer per
// PUT costs twice over in a busy node: the kernel faults and zeroes its 512 pages on
// first touch, and V8 counts it as external memory, whose churn (1.5 GiB per GiB of
// object data) forces a full mark-compact every few dozen chunks — the largest
// CPU cost of receiving chunks before this pool. A buffer goes back only once
// nothing holds it: a PUT body after BlockStore.put settled (the write and its
// fdatasync are done and the store keeps no reference), a GET's once its response
// finished (every byte handed to the kernel), never while a socket or a queued
// write may still read it.
import assert from 'node:assert/strict'

export class BufferPool {
  private readonly free: Buffer[] = []
  /** The backing stores this pool handed out and has not taken back. */
  private readonly lent = new WeakSet<ArrayBufferLike>()
  private allocated = 0
  private taken = 0

  constructor(
    /** Every pooled buffer has this capacity; longer requests get a buffer of their own. */
    readonly bufferBytes: number,
    /** Free buffers kept for reuse; the rest are left to the GC. */
    readonly freeMax: number,
  ) {
    assert.ok(Number.isSafeInteger(bufferBytes) && bufferBytes > 0)
    assert.ok(Number.isSafeInteger(freeMax) && freeMax >= 0)
  }

  /** A buffer of exactly `lengthBytes` (uninitialised): pooled when it fits, else its own. */
  take(lengthBytes: number): Buffer {
    assert.ok(Number.isSafeInteger(lengthBytes) && lengthBytes >= 0)
    if (lengthBytes > this.bufferBytes || lengthBytes === 0) return Buffer.allocUnsafe(lengthBytes)
    let whole = this.free.pop()
    if (!whole) {
      whole = Buffer.allocUnsafeSlow(this.bufferBytes)
      this.allocated++
    }
    this.lent.add(whole.buffer)
    this.taken++
    return whole.subarray(0, lengthBytes)
  }

  /** Hands a buffer from `take` back. The caller must hold no other reference to it. */
  give(buffer: Buffer): void {
    const store = buffer.buffer
    if (!this.lent.has(store)) return // not pooled (or given twice): the GC has it
    this.lent.delete(store)
    assert.equal(store.byteLength, this.bufferBytes)
    if (this.free.length < this.freeMax) this.free.push(Buffer.from(store, 0, this.bufferBytes))
  }

  /** free: kept for reuse; allocated: pooled buffers ever made; taken: pooled buffers ever lent. */
  stats(): { free: number; allocated: number; taken: number } {
    return { free: this.free.length, allocated: this.allocated, taken: this.taken }
  }
}

// The in-memory index of a storage node: chunk id -> where its live record sits.
// A node holds millions of chunks, so this is an open-addressing hash table over
// typed arrays (40 bytes a slot, no object per chunk) rather than a Map of objects:
// it costs a fifth of the memory, and loading a snapshot of a million entries is a
// tight loop over one buffer. Linear probing with backward-shift deletion keeps it
// free of tombstone slots.
import assert from 'node:assert/strict'
import { chunkIdBytes } from './format.ts'

export interface IndexEntry {
  block: number
  offsetUnits: number
  lengthBytes: number
  root: number
  createdMs: number
}

/** Bytes one entry takes in a snapshot: id, block, offset, length, root, createdMs. */
export const indexEntryBytes = chunkIdBytes + 4 * 4 + 8

const capacityMin = 1024
const loadFactorMax = 0.7

function hashWords(w0: number, w1: number, w2: number, w3: number): number {
  let h = Math.imul(w0 ^ 0x9e3779b9, 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13) ^ w1, 0xc2b2ae35)
  h = Math.imul(h ^ (h >>> 16) ^ w2, 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13) ^ w3, 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

export class ChunkIndex {
  private capacity = 0
  private keys = new Uint32Array(0) // four words per slot
  private blocks = new Uint32Array(0) // 0 marks an empty slot: blocks count from 1
  private offsets = new Uint32Array(0)
  private lengths = new Uint32Array(0)
  private roots = new Uint32Array(0)
  private created = new Float64Array(0)
  private count = 0

  constructor(expectedEntries = 0) {
    let capacity = capacityMin
    while (expectedEntries > capacity * loadFactorMax) capacity *= 2
    this.allocate(capacity)
  }

  get size(): number {
    return this.count
  }

  /** Slots to scan with `blockAt`/`idAt` (some are empty). */
  get slots(): number {
    return this.capacity
  }

  get(id: Buffer): IndexEntry | null {
    const slot = this.find(id)
    return slot < 0 ? null : this.entryAt(slot)
  }

  has(id: Buffer): boolean {
    return this.find(id) >= 0
  }

  /** Inserts or replaces; returns the entry it replaced. */
  set(id: Buffer, entry: IndexEntry): IndexEntry | null {
    assert.ok(entry.block > 0 && entry.block <= 0xffffffff, 'entry.block > 0 && entry.block <= 0xffffffff')
    assert.ok(entry.offsetUnits >= 0 && entry.offsetUnits <= 0xffffffff, 'entry.offsetUnits >= 0 && entry.offsetUnits <= 0xffffffff')
    const existing = this.find(id)
    if (existing >= 0) {
      const previous = this.entryAt(existing)
      this.write(existing, entry)
      return previous
    }
    if (this.count + 1 > this.capacity * loadFactorMax) this.resize(this.capacity * 2)
    const slot = this.emptySlotFor(id)
    this.keys[slot * 4] = id.readUInt32LE(0)
    this.keys[slot * 4 + 1] = id.readUInt32LE(4)
    this.keys[slot * 4 + 2] = id.readUInt32LE(8)
    this.keys[slot * 4 + 3] = id.readUInt32LE(12)
    this.write(slot, entry)
    this.count++
    return null
  }

  remove(id: Buffer): IndexEntry | null {
    let slot = this.find(id)
    if (slot < 0) return null
    const previous = this.entryAt(slot)
    const mask = this.capacity - 1
    // Backward-shift: pull later members of the probe run into the hole.
    let next = (slot + 1) & mask
    while (this.blocks[next] !== 0) {
      const home = this.homeOf(next)
      const fits = slot <= next ? home <= slot || home > next : home <= slot && home > next
      if (fits) {
        this.moveSlot(next, slot)
        slot = next
      }
      next = (next + 1) & mask
    }
    this.blocks[slot] = 0
    this.count--
    return previous
  }

  entryAt(slot: number): IndexEntry {
    assert.ok(this.blocks[slot] !== 0, 'this.blocks[slot] !== 0')
    return {
      block: this.blocks[slot]!,
      offsetUnits: this.offsets[slot]!,
      lengthBytes: this.lengths[slot]!,
      root: this.roots[slot]!,
      createdMs: this.created[slot]!,
    }
  }

  /** Block of a slot, 0 when the slot is empty. */
  blockAt(slot: number): number {
    return this.blocks[slot]!
  }

  idAt(slot: number): Buffer {
    assert.ok(this.blocks[slot] !== 0, 'this.blocks[slot] !== 0')
    const id = Buffer.allocUnsafe(chunkIdBytes)
    id.writeUInt32LE(this.keys[slot * 4]!, 0)
    id.writeUInt32LE(this.keys[slot * 4 + 1]!, 4)
    id.writeUInt32LE(this.keys[slot * 4 + 2]!, 8)
    id.writeUInt32LE(this.keys[slot * 4 + 3]!, 12)
    return id
  }

  /** Every entry as `indexEntryBytes`-sized records, for a snapshot. */
  serialize(): Buffer {
    const out = Buffer.allocUnsafe(this.count * indexEntryBytes)
    let at = 0
    for (let slot = 0; slot < this.capacity; slot++) {
      if (this.blocks[slot] === 0) continue
      out.writeUInt32LE(this.keys[slot * 4]!, at)
      out.writeUInt32LE(this.keys[slot * 4 + 1]!, at + 4)
      out.writeUInt32LE(this.keys[slot * 4 + 2]!, at + 8)
      out.writeUInt32LE(this.keys[slot * 4 + 3]!, at + 12)
      out.writeUInt32LE(this.blocks[slot]!, at + 16)
      out.writeUInt32LE(this.offsets[slot]!, at + 20)
      out.writeUInt32LE(this.lengths[slot]!, at + 24)
      out.writeUInt32LE(this.roots[slot]!, at + 28)
      out.writeDoubleLE(this.created[slot]!, at + 32)
      at += indexEntryBytes
    }
    assert.equal(at, out.length)
    return out
  }

  /** Rebuilds an index from `serialize()` output (ids must be distinct). */
  static deserialize(bytes: Buffer): ChunkIndex {
    assert.equal(bytes.length % indexEntryBytes, 0)
    const entries = bytes.length / indexEntryBytes
    const index = new ChunkIndex(entries)
    const mask = index.capacity - 1
    for (let at = 0; at < bytes.length; at += indexEntryBytes) {
      const w0 = bytes.readUInt32LE(at)
      const w1 = bytes.readUInt32LE(at + 4)
      const w2 = bytes.readUInt32LE(at + 8)
      const w3 = bytes.readUInt32LE(at + 12)
      const block = bytes.readUInt32LE(at + 16)
      assert.ok(block > 0, 'block > 0')
      let slot = hashWords(w0, w1, w2, w3) & mask
      while (index.blocks[slot] !== 0) {
        const k = slot * 4
        assert.ok(!(index.keys[k] === w0 && index.keys[k + 1] === w1 && index.keys[k + 2] === w2 && index.keys[k + 3] === w3), 'snapshot entries have distinct ids')
        slot = (slot + 1) & mask
      }
      index.keys[slot * 4] = w0
      index.keys[slot * 4 + 1] = w1
      index.keys[slot * 4 + 2] = w2
      index.keys[slot * 4 + 3] = w3
      index.blocks[slot] = block
      index.offsets[slot] = bytes.readUInt32LE(at + 20)
      index.lengths[slot] = bytes.readUInt32LE(at + 24)
      index.roots[slot] = bytes.readUInt32LE(at + 28)
      index.created[slot] = bytes.readDoubleLE(at + 32)
    }
    index.count = entries
    return index
  }

  private find(id: Buffer): number {
    assert.equal(id.length, chunkIdBytes)
    const w0 = id.readUInt32LE(0)
    const w1 = id.readUInt32LE(4)
    const w2 = id.readUInt32LE(8)
    const w3 = id.readUInt32LE(12)
    const mask = this.capacity - 1
    let slot = hashWords(w0, w1, w2, w3) & mask
    while (this.blocks[slot] !== 0) {
      const k = slot * 4
      if (this.keys[k] === w0 && this.keys[k + 1] === w1 && this.keys[k + 2] === w2 && this.keys[k + 3] === w3) return slot
      slot = (slot + 1) & mask
    }
    return -1
  }

  private emptySlotFor(id: Buffer): number {
    const mask = this.capacity - 1
    let slot = hashWords(id.readUInt32LE(0), id.readUInt32LE(4), id.readUInt32LE(8), id.readUInt32LE(12)) & mask
    while (this.blocks[slot] !== 0) slot = (slot + 1) & mask
    return slot
  }

  private homeOf(slot: number): number {
    const k = slot * 4
    return hashWords(this.keys[k]!, this.keys[k + 1]!, this.keys[k + 2]!, this.keys[k + 3]!) & (this.capacity - 1)
  }

  private write(slot: number, entry: IndexEntry): void {
    this.blocks[slot] = entry.block
    this.offsets[slot] = entry.offsetUnits
    this.lengths[slot] = entry.lengthBytes
    this.roots[slot] = entry.root >>> 0
    this.created[slot] = entry.createdMs
  }

  private moveSlot(from: number, to: number): void {
    this.keys.copyWithin(to * 4, from * 4, from * 4 + 4)
    this.blocks[to] = this.blocks[from]!
    this.offsets[to] = this.offsets[from]!
    this.lengths[to] = this.lengths[from]!
    this.roots[to] = this.roots[from]!
    this.created[to] = this.created[from]!
  }

  private allocate(capacity: number): void {
    assert.equal(capacity & (capacity - 1), 0) // a power of two: slots are masked
    this.capacity = capacity
    this.keys = new Uint32Array(capacity * 4)
    this.blocks = new Uint32Array(capacity)
    this.offsets = new Uint32Array(capacity)
    this.lengths = new Uint32Array(capacity)
    this.roots = new Uint32Array(capacity)
    this.created = new Float64Array(capacity)
  }

  private resize(capacity: number): void {
    const old = { capacity: this.capacity, keys: this.keys, blocks: this.blocks, offsets: this.offsets, lengths: this.lengths, roots: this.roots, created: this.created }
    this.allocate(capacity)
    const mask = capacity - 1
    for (let from = 0; from < old.capacity; from++) {
      if (old.blocks[from] === 0) continue
      const k = from * 4
      let slot = hashWords(old.keys[k]!, old.keys[k + 1]!, old.keys[k + 2]!, old.keys[k + 3]!) & mask
      while (this.blocks[slot] !== 0) slot = (slot + 1) & mask
      this.keys.set(old.keys.subarray(k, k + 4), slot * 4)
      this.blocks[slot] = old.blocks[from]!
      this.offsets[slot] = old.offsets[from]!
      this.lengths[slot] = old.lengths[from]!
      this.roots[slot] = old.roots[from]!
      this.created[slot] = old.created[from]!
    }
  }
}

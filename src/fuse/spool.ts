// Write spooling: a file opened for writing collects its bytes here until it is
// uploaded whole on flush/fsync/release (objects are immutable; there is no partial
// overwrite in the object layer). Bytes stay in memory up to a per-file bound and
// while all spools together stay under a shared budget; past either, the spool moves
// to a local file, so memory stays bounded whatever the file size. The spool file
// is unlinked as soon as it is opened: a crash leaves nothing behind to clean.
//
// The spool file is written and read with synchronous calls: they go to the page
// cache and cost tens of microseconds, while a call through libuv's thread pool
// costs two thread wake-ups (to the pool and back), and every FUSE write waits on
// its spool write (dd: 8,192 writes of 128 KiB per GiB). On a busy machine those
// wake-ups, not the copies, were the time of a write; and the pool's four threads
// are shared with other file I/O, which a spool write must not queue behind.
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { readSync, writeSync } from 'node:fs'
import { open, unlink, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { fuseSpoolPageBytes } from '../limits.ts'

/** Memory shared by all spools of one daemon. */
export class SpoolBudget {
  private usedBytes = 0

  constructor(readonly memoryBytesTotal: number) {
    assert.ok(memoryBytesTotal >= 0)
  }

  tryReserve(bytes: number): boolean {
    if (this.usedBytes + bytes > this.memoryBytesTotal) return false
    this.usedBytes += bytes
    return true
  }

  release(bytes: number): void {
    this.usedBytes -= bytes
    assert.ok(this.usedBytes >= 0)
  }

  get memoryBytesUsed(): number {
    return this.usedBytes
  }
}

export interface SpoolOptions {
  budget: SpoolBudget
  memoryBytesMax: number
  dir: string
}

export class Spool {
  private size = 0
  private memory: Buffer | null = Buffer.alloc(0)
  private file: FileHandle | null = null
  private closed = false

  constructor(private readonly options: SpoolOptions) {}

  get sizeBytes(): number {
    return this.size
  }

  get onDisk(): boolean {
    return this.file !== null
  }

  async write(data: Buffer, position: number): Promise<void> {
    assert.ok(!this.closed, 'write to a closed spool')
    assert.ok(position >= 0 && Number.isSafeInteger(position))
    const end = position + data.length
    if (this.memory && end > this.memory.length && !this.growMemory(end)) await this.moveToDisk()
    if (this.memory) {
      data.copy(this.memory, position)
    } else {
      const fd = this.file!.fd
      for (let written = 0; written < data.length; ) written += writeSync(fd, data, written, data.length - written, position + written)
    }
    this.size = Math.max(this.size, end)
  }

  /** Up to `length` bytes from `position` (fewer at the end), as a buffer of its own. */
  async read(position: number, length: number): Promise<Buffer> {
    assert.ok(!this.closed, 'read from a closed spool')
    const end = Math.min(this.size, position + length)
    if (end <= position) return Buffer.alloc(0)
    if (this.memory) return Buffer.from(this.memory.subarray(position, end))
    const out = Buffer.allocUnsafe(end - position)
    const fd = this.file!.fd
    for (let done = 0; done < out.length; ) {
      const bytesRead = readSync(fd, out, done, out.length - done, position + done)
      assert.ok(bytesRead > 0, 'spool file shorter than its recorded size')
      done += bytesRead
    }
    return out
  }

  async truncate(sizeBytes: number): Promise<void> {
    assert.ok(!this.closed && sizeBytes >= 0)
    if (this.memory) {
      if (sizeBytes > this.memory.length && !this.growMemory(sizeBytes)) {
        await this.moveToDisk()
        return this.truncate(sizeBytes)
      }
      // Bytes past the end must read back as zeros if the file grows again.
      if (sizeBytes < this.size) this.memory.fill(0, sizeBytes, this.size)
    } else {
      await this.file!.truncate(sizeBytes)
    }
    this.size = sizeBytes
  }

  /** The content in pieces of at most `pieceBytes`, for an upload body. */
  async *pieces(pieceBytes: number): AsyncGenerator<Buffer> {
    for (let at = 0; at < this.size; at += pieceBytes) yield this.read(at, Math.min(pieceBytes, this.size - at))
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.memory) this.options.budget.release(this.memory.length)
    this.memory = null
    await this.file?.close()
    this.file = null
  }

  private growMemory(needBytes: number): boolean {
    const memory = this.memory!
    if (needBytes > this.options.memoryBytesMax) return false
    // Doubling from the first write's size in pages: a small file (tar x, rsync) takes
    // the page or two it needs, not a large zeroed buffer each (their memory, all
    // external to V8's heap, drove full GCs of the daemon in tar x).
    const capacity = Math.min(this.options.memoryBytesMax, Math.max(Math.ceil(needBytes / fuseSpoolPageBytes) * fuseSpoolPageBytes, memory.length * 2))
    if (!this.options.budget.tryReserve(capacity - memory.length)) return false
    const grown = Buffer.alloc(capacity)
    memory.copy(grown, 0, 0, this.size)
    this.memory = grown
    return true
  }

  private async moveToDisk(): Promise<void> {
    const memory = this.memory!
    const path = join(this.options.dir, `blobfs-spool-${process.pid}-${randomUUID()}`)
    const file = await open(path, 'wx+', 0o600)
    try {
      await unlink(path)
      for (let written = 0; written < this.size; ) written += writeSync(file.fd, memory, written, this.size - written, written)
    } catch (error) {
      await file.close() // a full spool disk: the unlinked file's blocks go back now, not at GC
      throw error
    }
    this.file = file
    this.memory = null
    this.options.budget.release(memory.length)
  }
}

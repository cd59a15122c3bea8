// File-system primitives the block log needs and Node lacks: pre-allocation,
// directory fsync, atomic replace, and full positional reads.
//
// Pre-allocation: Node has no fallocate binding. We run util-linux `fallocate -l`
// (one short process per block, i.e. once per GiB written), which reserves the
// extents so appends inside a block cannot hit ENOSPC and the space check happens
// once, when a block is created. Where the tool or the file system refuses, we
// fall back to writing zeros — slow, but it reserves the space just the same.
// ftruncate alone would leave a sparse file and defer ENOSPC to a random append.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { open, rename, unlink, type FileHandle } from 'node:fs/promises'
import { BlobfsError } from '../errors.ts'
import { units } from '../limits.ts'

const zeroFillChunkBytes = 1 * units.MiB
const fallocateTimeoutMs = 60_000

export type PreallocateMethod = 'fallocate' | 'zero-fill'

function isNoSpace(error: unknown): boolean {
  const e = error as { code?: string; stderr?: string; message?: string }
  return e?.code === 'ENOSPC' || /No space left/i.test(e?.stderr ?? '') || /No space left/i.test(e?.message ?? '')
}

function runFallocate(path: string, sizeBytes: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('fallocate', ['-l', String(sizeBytes), path], { timeout: fallocateTimeoutMs }, (error, _stdout, stderr) => {
      if (error) reject(Object.assign(error, { stderr }))
      else resolve()
    })
  })
}

async function zeroFill(path: string, sizeBytes: number): Promise<void> {
  const fh = await open(path, 'r+')
  try {
    const { size } = await fh.stat()
    const zeros = Buffer.alloc(zeroFillChunkBytes)
    for (let at = size; at < sizeBytes; at += zeroFillChunkBytes) {
      await writeFull(fh, zeros.subarray(0, Math.min(zeroFillChunkBytes, sizeBytes - at)), at)
    }
  } finally {
    await fh.close()
  }
}

/**
 * Makes `path` at least `sizeBytes` long with its space reserved (creating it when
 * absent). InsufficientStorage when the file system is full; the partial file is
 * left for the caller to remove.
 */
export async function preallocate(path: string, sizeBytes: number, prefer: PreallocateMethod): Promise<PreallocateMethod> {
  await (await open(path, 'a')).close()
  if (prefer === 'fallocate') {
    try {
      await runFallocate(path, sizeBytes)
      return 'fallocate'
    } catch (error) {
      if (isNoSpace(error)) throw new BlobfsError('InsufficientStorage', `no space to pre-allocate ${path}`, { cause: error })
      // Tool missing or the file system cannot fallocate: zero-fill below.
    }
  }
  try {
    await zeroFill(path, sizeBytes)
    return 'zero-fill'
  } catch (error) {
    if (isNoSpace(error)) throw new BlobfsError('InsufficientStorage', `no space to pre-allocate ${path}`, { cause: error })
    throw error
  }
}

/** fsync a directory, so created, renamed and removed entries are durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** Replaces `path` with `bytes` atomically: temp file, fsync, rename, fsync dir. */
export async function writeFileAtomic(dir: string, path: string, bytes: Buffer | Buffer[]): Promise<void> {
  const temp = `${path}.tmp`
  const fh = await open(temp, 'w')
  try {
    const parts = Array.isArray(bytes) ? bytes : [bytes]
    let at = 0
    for (const part of parts) {
      await writeFull(fh, part, at)
      at += part.length
    }
    await fh.sync()
  } catch (error) {
    await fh.close().catch(() => {})
    await unlink(temp).catch(() => {}) // give back the space (ENOSPC is the usual cause)
    throw error
  }
  await fh.close()
  await rename(temp, path)
  await syncDirectory(dir)
}

export async function writeFull(fh: FileHandle, bytes: Buffer, position: number): Promise<void> {
  let done = 0
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, position + done)
    if (bytesWritten === 0) throw new Error(`write of ${bytes.length} bytes at ${position} made no progress`)
    done += bytesWritten
  }
}

/** Reads up to `length` bytes at `position` (into `into` when given); fewer only at end of file. */
export async function readFull(fh: FileHandle, length: number, position: number, into?: Buffer): Promise<Buffer> {
  assert.ok(into === undefined || into.length === length, 'a buffer given to readFull has the length read')
  const out = into ?? Buffer.allocUnsafe(length)
  let done = 0
  while (done < length) {
    const { bytesRead } = await fh.read(out, done, length - done, position + done)
    if (bytesRead === 0) break
    done += bytesRead
  }
  return done === length ? out : out.subarray(0, done)
}

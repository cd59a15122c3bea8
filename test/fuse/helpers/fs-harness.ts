// Shared set-up for the semantics tests: a BlobFs over the in-memory object layer
// with a clock the test steps by hand (TTLs are tested without waiting).
import { constants } from 'node:fs'
import { Readable } from 'node:stream'
import { pino } from 'pino'
import { FsError, toFsError } from '../../../src/fuse/errno.ts'
import { BlobFs, fsConfig, type FsConfig } from '../../../src/fuse/fs.ts'
import { MemoryObjectLayer } from './memory-objects.ts'

export const silent = pino({ level: 'silent' })

export interface Harness {
  objects: MemoryObjectLayer
  fs: BlobFs
  clock: { nowMs: number }
  advance(ms: number): void
}

export async function harness(overrides: Partial<FsConfig> = {}, objects = new MemoryObjectLayer()): Promise<Harness> {
  if ((await objects.listBuckets()).every((b) => b.name !== 'b')) await objects.createBucket('b', 'tester')
  const clock = { nowMs: 1_700_000_000_000 }
  const fs = new BlobFs(fsConfig({ objects, bucket: 'b', log: silent, now: () => clock.nowMs, ...overrides }))
  return { objects, fs, clock, advance: (ms) => (clock.nowMs += ms) }
}

/** The errno name a promise rejects with, or 'OK'. */
export async function errnoOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise
    return 'OK'
  } catch (error) {
    if (!(error instanceof FsError)) throw new Error(`rejected with something else than an FsError: ${String(error)}`, { cause: error })
    return toFsError(error, '').errnoName
  }
}

export async function writeFile(fs: BlobFs, path: string, data: Buffer | string, mode = 0o644): Promise<void> {
  const fh = await fs.create(path, mode)
  await fs.write(fh, Buffer.from(data), 0)
  await fs.flush(fh)
  await fs.release(fh)
}

export async function readFile(fs: BlobFs, path: string, pieceBytes = 128 * 1024): Promise<Buffer> {
  const fh = await fs.open(path, constants.O_RDONLY)
  try {
    const pieces: Buffer[] = []
    for (let at = 0; ; ) {
      const piece = await fs.read(fh, pieceBytes, at)
      if (piece.length === 0) break
      pieces.push(piece)
      at += piece.length
    }
    return Buffer.concat(pieces)
  } finally {
    await fs.release(fh)
  }
}

export async function list(fs: BlobFs, path: string): Promise<string[]> {
  const names: string[] = []
  for await (const page of fs.readdir(path)) names.push(...page)
  return names.sort()
}

export function put(objects: MemoryObjectLayer, key: string, data: Buffer | string): Promise<unknown> {
  return objects.putObject('b', key, Readable.from([Buffer.from(data)]))
}

// Shared helpers for the storage-node tests: temp dirs, seeded bytes, a quiet logger.
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { checksumTree } from '../../src/codec/checksum.ts'
import type { Logger } from '../../src/log.ts'
import { chunkIdToBytes } from '../../src/node/format.ts'

export const quietLog: Logger = pino({ level: 'silent' })

/** Runs `fn` with a fresh temp dir, removed afterwards whatever happens. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>, prefix = 'blobfs-node-'): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  try {
    return await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/** mulberry32: a failure found with seed S replays with seed S. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function randomInt(random: () => number, min: number, maxExclusive: number): number {
  return min + Math.floor(random() * (maxExclusive - min))
}

/** Deterministic bytes for (seed, length): the expected content is recomputable. */
export function chunkBytes(seed: number, length: number): Buffer {
  const random = seededRandom(seed)
  const out = Buffer.allocUnsafe(length)
  let i = 0
  for (; i + 4 <= length; i += 4) out.writeUInt32LE((random() * 4294967296) >>> 0, i)
  for (; i < length; i++) out[i] = (random() * 256) | 0
  return out
}

export function newChunk(seed: number, length: number): { id: string; idBytes: Buffer; data: Buffer; tree: ReturnType<typeof checksumTree> } {
  const id = randomUUID()
  const data = chunkBytes(seed, length)
  return { id, idBytes: chunkIdToBytes(id), data, tree: checksumTree(data) }
}

export async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<void> {
  try {
    await promise
  } catch (error) {
    if ((error as { code?: string }).code === code) return
    throw new Error(`expected ${code}, got ${(error as Error).name}: ${(error as Error).message}`, { cause: error })
  }
  throw new Error(`expected ${code}, but it succeeded`)
}

// Builders for catalog test data: stripe/chunk descriptions shaped exactly like the
// object layer's (k+m chunks per stripe, shard size ceil(stripe length / k)),
// without any bytes stored anywhere.
import { randomUUID } from 'node:crypto'
import type { Catalog } from '../../src/catalog/catalog.ts'
import type { CommitObjectInput, PartInput, StripeInput } from '../../src/catalog/types.ts'

export const MiB = 1024 * 1024

let unique = 0
/** A bucket name no other test of this process uses. */
export function bucketName(tag = 'b'): string {
  return `${tag}-${process.pid}-${++unique}-${Math.random().toString(36).slice(2, 8)}`
}

export interface StripeShape {
  dataShards?: number
  parityShards?: number
  /** Chunk indexes to leave out (a degraded write). */
  missing?: number[]
  nodes?: string[]
}

export function stripeInput(stripeIndex: number, lengthBytes: number, shape: StripeShape = {}): StripeInput {
  const k = shape.dataShards ?? 8
  const m = shape.parityShards ?? 4
  const nodes = shape.nodes ?? Array.from({ length: k + m }, (_, i) => `node-${i}`)
  const shard = Math.ceil(lengthBytes / k)
  const chunks = []
  for (let i = 0; i < k + m; i++) {
    if (shape.missing?.includes(i)) continue
    chunks.push({ chunkIndex: i, chunkId: randomUUID(), nodeId: nodes[i % nodes.length]!, lengthBytes: shard, root: (i * 2654435761) >>> 0 })
  }
  return { stripeIndex, chunks }
}

export function partInput(partNumber: number, sizeBytes: number, stripeSizeBytes = 16 * MiB, shape: StripeShape = {}): PartInput {
  const stripes: StripeInput[] = []
  for (let i = 0; i * stripeSizeBytes < sizeBytes; i++) stripes.push(stripeInput(i, Math.min(stripeSizeBytes, sizeBytes - i * stripeSizeBytes), shape))
  return { partNumber, sizeBytes, stripeSizeBytes, etag: `"etag-${partNumber}"`, stripes }
}

export function stripedObject(bucket: string, key: string, sizeBytes: number, options: { stripeSizeBytes?: number; shape?: StripeShape; parts?: number[] } = {}): CommitObjectInput {
  const k = options.shape?.dataShards ?? 8
  const m = options.shape?.parityShards ?? 4
  const partSizes = options.parts ?? [sizeBytes]
  return {
    bucket,
    key,
    objectId: randomUUID(),
    sizeBytes,
    etag: `"${randomUUID().replaceAll('-', '')}"`,
    content: { scheme: `RS_${k}_${m}`, parts: partSizes.map((size, i) => partInput(i + 1, size, options.stripeSizeBytes, options.shape)) },
  }
}

export function inlineObject(bucket: string, key: string, data = Buffer.from(key)): CommitObjectInput {
  return { bucket, key, objectId: randomUUID(), sizeBytes: data.length, etag: `"${data.length}"`, content: { inline: data } }
}

/** Chunk ids of a commit input, for checking what went to the deletion queue. */
export function chunkIdsOf(input: CommitObjectInput): string[] {
  return 'parts' in input.content ? input.content.parts.flatMap((p) => p.stripes.flatMap((s) => s.chunks.map((c) => c.chunkId))) : []
}

/** Chunk ids in the deletion queue (read directly: tests only). */
export async function queuedDeletions(catalog: Catalog): Promise<Set<string>> {
  const rows = await catalog.db.sql<{ chunk_id: string }[]>`SELECT chunk_id FROM chunk_deletions`
  return new Set(rows.map((r) => r.chunk_id))
}

export async function countRows(catalog: Catalog, table: string): Promise<number> {
  const rows = await catalog.db.sql.unsafe(`SELECT count(*) AS n FROM ${table}`)
  return Number(rows[0]!.n)
}

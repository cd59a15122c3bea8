// What is stored where, counted exactly: every chunk every node holds (from its
// streaming inventory) and every chunk row of the catalog, both as "node/chunk",
// so a test can check that the nodes hold only referenced chunks after GC.
import type { Catalog } from '../../src/catalog/catalog.ts'
import type { ChunkStore } from '../../src/cluster/chunk-store.ts'

export async function storedChunks(store: ChunkStore, nodeIds: readonly string[]): Promise<Set<string>> {
  const out = new Set<string>()
  for (const node of nodeIds) {
    for await (const entry of store.inventory(node)) out.add(`${node}/${entry.chunkId}`)
  }
  return out
}

/** Every chunk row (read directly: tests only). */
export async function referencedChunks(catalog: Catalog): Promise<Set<string>> {
  const rows = await catalog.db.sql<{ storage_node_id: string; chunk_id: string }[]>`SELECT storage_node_id, chunk_id FROM object_chunks_allocation`
  return new Set(rows.map((r) => `${r.storage_node_id}/${r.chunk_id}`))
}

export function difference(a: ReadonlySet<string>, b: ReadonlySet<string>): string[] {
  return [...a].filter((x) => !b.has(x))
}

/** Polls `check` until it returns true; fails with `describe()` after `timeoutMs`. */
export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, describe: () => Promise<string> | string, intervalMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${await describe()}`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

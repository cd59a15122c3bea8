// Pieces the object-layer benchmarks share (index.ts, compare.ts, compare-background.ts).
import { resolve } from 'node:path'
import { performance } from 'node:perf_hooks'
import type { Cluster } from '../../../src/cli/cluster.ts'

/**
 * Times every call of one catalog method made through `cluster`: `lookup` (the
 * first step of a GET) or `commit` (the last step of a PUT).
 */
export function timeCatalogCalls(cluster: Cluster, method: 'lookup' | 'commit'): number[] {
  const samples: number[] = []
  const objects = cluster.catalog.objects as unknown as Record<typeof method, (...args: unknown[]) => Promise<unknown>>
  const call = objects[method].bind(objects)
  objects[method] = async (...args: unknown[]) => {
    const started = performance.now()
    try {
      return await call(...args)
    } finally {
      samples.push(performance.now() - started)
    }
  }
  return samples
}

/** The two source trees of a before/after run: `--base DIR` and this one (exits with `usage` when --base is missing). */
export function baseAndThisTree(usage: string): { base: string; this: string } {
  const at = process.argv.indexOf('--base')
  if (at < 0 || !process.argv[at + 1]) {
    console.error(usage)
    process.exit(2)
  }
  return { base: resolve(process.argv[at + 1]!), this: resolve(import.meta.dirname, '..', '..', '..') }
}

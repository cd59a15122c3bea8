// An object layer module for serve.ts (--object-layer) that opens a running cluster
// the way every command does (openCluster) from BLOBFS_BENCH_CATALOG_URL, with the
// access key in BLOBFS_BENCH_ACCESS_KEY / BLOBFS_BENCH_SECRET_KEY (bucket-cache-ab.ts
// runs gateways configured differently over one `blobfs up`).
import { openCluster } from '../../../src/cli/cluster.ts'
import type { BenchObjectLayer } from './memory-layer.ts'

export async function openObjectLayer(): Promise<BenchObjectLayer> {
  const env = (name: string) => {
    const value = process.env[name]
    if (!value) throw new Error(`${name} is not set`)
    return value
  }
  const cluster = await openCluster(env('BLOBFS_BENCH_CATALOG_URL'))
  return {
    objects: cluster.objects,
    accessKey: { accessKeyId: env('BLOBFS_BENCH_ACCESS_KEY'), secretAccessKey: env('BLOBFS_BENCH_SECRET_KEY'), owner: 'bench' },
    description: 'openCluster over BLOBFS_BENCH_CATALOG_URL',
    close: () => cluster.close(),
  }
}

// The default object layer of the S3 benchmark: the in-memory ObjectLayer of the
// gateway's tests (bytes in RAM, no catalog, no nodes), so the suite measures the
// gateway itself. A module exporting the same `openObjectLayer` (object-store-layer.ts
// for the real object layer) can be passed with --object-layer PATH.
import type { AccessKey, ObjectLayer } from '../../../src/objects/types.ts'
import { MemoryObjectLayer } from '../../s3/memory-objects.ts'

export interface BenchObjectLayer {
  objects: ObjectLayer
  accessKey: AccessKey
  /** Shown in the report: which object layer backed the run. */
  description: string
  close(): Promise<void>
}

export async function openObjectLayer(): Promise<BenchObjectLayer> {
  const objects = new MemoryObjectLayer()
  const accessKey: AccessKey = { accessKeyId: 'AKIABENCHMARK0000001', secretAccessKey: 'bench/secret/0123456789abcdefghijklmnop', owner: 'bench' }
  objects.addAccessKey(accessKey)
  return { objects, accessKey, description: 'in-memory ObjectLayer (test/s3/memory-objects.ts)', close: async () => {} }
}

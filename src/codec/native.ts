// Loads the native codec (native/, built by `npm ci`) and types its functions.
// Only src/codec/ talks to the addon; everything else uses reed-solomon.ts, which
// validates arguments before they get here (the addon checks them again).
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { shardsTotalMax } from '../limits.ts'
import { packageRoot } from '../paths.ts'

export type Kernel = 'scalar' | 'ssse3' | 'avx2' | 'avx512'

/** An opaque handle to a native codec (a napi external). */
export type NativeCodec = { readonly __brand: 'NativeCodec' }

export interface NativeCacheStats {
  hits: number
  misses: number
  entries: number
}

export interface NativeBinding {
  create(dataShards: number, parityShards: number, kernel?: string): NativeCodec
  encode(codec: NativeCodec, shards: readonly unknown[]): void
  reconstruct(codec: NativeCodec, shards: readonly unknown[], roles: Uint8Array): void
  encodeAsync(codec: NativeCodec, shards: readonly unknown[]): Promise<void>
  reconstructAsync(codec: NativeCodec, shards: readonly unknown[], roles: Uint8Array): Promise<void>
  generator(codec: NativeCodec): Buffer
  kernelOf(codec: NativeCodec): Kernel
  cacheStats(codec: NativeCodec): NativeCacheStats
  /** Kernels this build and CPU can run, slowest first. */
  readonly kernels: readonly Kernel[]
  /** The fastest available kernel, or the one BLOBFS_CODEC_KERNEL names. */
  readonly defaultKernel: Kernel
  readonly shardsMax: number
}

/** The per-shard roles reconstruct() takes. */
export const shardRole = { missing: 0, present: 1, wanted: 2 } as const

const addonPath = join(packageRoot, 'native', 'build', 'Release', 'blobfs_codec.node')

function load(): NativeBinding {
  const require = createRequire(import.meta.url)
  try {
    return require(addonPath) as NativeBinding
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') {
      throw new Error(`the native codec is not built (${addonPath}); run \`npm ci\` or \`npm run build:native\``, { cause: error })
    }
    throw error
  }
}

export const native: NativeBinding = load()
// The C side's bound (RS_SHARDS_MAX) and the one the rest of blobfs uses are one.
assert.equal(native.shardsMax, shardsTotalMax)
assert.ok(native.kernels.includes(native.defaultKernel))

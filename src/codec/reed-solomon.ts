// Systematic Reed-Solomon erasure coding over GF(2^8): every stripe's K data
// shards get M parity shards, and any K of the K + M shards give back the rest.
// This is the typed face of the native codec (native/): arguments are validated
// here with clear errors, then the C kernels work in the caller's Buffers without
// copying them. The generator is an identity on top of a Cauchy matrix
// (row i, column j: 1 / (i xor j), field polynomial 0x11d), as in ISA-L.
import { codecInlineBytesMax, shardsTotalMax } from '../limits.ts'
import { native, shardRole, type Kernel, type NativeCacheStats, type NativeCodec } from './native.ts'

export type { Kernel }

export interface ReedSolomonOptions {
  /**
   * Forces a kernel ('scalar', 'ssse3', 'avx2', 'avx512'); by default the fastest this CPU
   * runs, or the one the BLOBFS_CODEC_KERNEL environment variable names.
   */
  kernel?: Kernel
}

/** Kernels this build and CPU can run, slowest first, and the default one. */
export const kernels: { readonly available: readonly Kernel[]; readonly default: Kernel } = Object.freeze({
  available: Object.freeze([...native.kernels]),
  default: native.defaultKernel,
})

/** A shard that is neither present nor wanted may be left out of `shards`. */
export type ShardSlot = Buffer | null | undefined

export class ReedSolomon {
  readonly dataShards: number
  readonly parityShards: number
  readonly totalShards: number
  /** The kernel this codec runs. */
  readonly kernel: Kernel
  readonly #codec: NativeCodec

  constructor(dataShards: number, parityShards: number, options: ReedSolomonOptions = {}) {
    checkCount('dataShards', dataShards)
    checkCount('parityShards', parityShards)
    if (dataShards + parityShards > shardsTotalMax) {
      throw new RangeError(`dataShards + parityShards must be at most ${shardsTotalMax}, got ${dataShards} + ${parityShards}`)
    }
    const kernel = options.kernel
    if (kernel !== undefined && !kernels.available.includes(kernel)) {
      throw new RangeError(`kernel '${String(kernel)}' is not available here; available: ${kernels.available.join(', ')}`)
    }
    this.dataShards = dataShards
    this.parityShards = parityShards
    this.totalShards = dataShards + parityShards
    this.#codec = native.create(dataShards, parityShards, kernel)
    this.kernel = native.kernelOf(this.#codec)
  }

  /**
   * Computes the parity shards: reads shards[0..k), overwrites shards[k..k+m).
   * All k + m shards are Buffers of one length (any length, 0 included); parity
   * Buffers must not share memory with any other shard.
   */
  encode(shards: readonly Buffer[]): void {
    this.#checkShards(shards, null)
    native.encode(this.#codec, shards)
  }

  /**
   * encode() on the libuv threadpool, so a large stripe does not block the event
   * loop. The shards must not be read or written until the promise settles. Bad
   * arguments reject the promise with the errors encode() throws. Calls reading
   * at most codecInlineBytesMax run inline: the round trip would cost more.
   */
  async encodeAsync(shards: readonly Buffer[]): Promise<void> {
    const shardBytes = this.#checkShards(shards, null)
    if (shardBytes * this.dataShards <= codecInlineBytesMax) native.encode(this.#codec, shards)
    else await native.encodeAsync(this.#codec, shards)
  }

  /**
   * Rebuilds missing shards from any k present ones. `present[i]` says shard i
   * holds good bytes; `wanted[i]` (default: every shard not present) says a
   * missing shard is to be rebuilt into shards[i]. Only present and wanted shards
   * need a Buffer (all of one length); a degraded read asks only for the data
   * shards it lacks. Fewer than k present shards: RangeError, code
   * 'TooManyErasures'.
   */
  reconstruct(shards: readonly ShardSlot[], present: readonly boolean[], wanted?: readonly boolean[]): void {
    const roles = this.#roles(shards, present, wanted)
    native.reconstruct(this.#codec, shards, roles)
  }

  /** reconstruct() on the libuv threadpool (small calls inline); see encodeAsync(). */
  async reconstructAsync(shards: readonly ShardSlot[], present: readonly boolean[], wanted?: readonly boolean[]): Promise<void> {
    const roles = this.#roles(shards, present, wanted)
    const shardBytes = shards.find((shard, i) => roles[i] !== shardRole.missing)?.length ?? 0
    if (shardBytes * this.dataShards <= codecInlineBytesMax) native.reconstruct(this.#codec, shards, roles)
    else await native.reconstructAsync(this.#codec, shards, roles)
  }

  /** How often a reconstruct found its decode matrix cached. */
  get decodeCacheStats(): NativeCacheStats {
    return native.cacheStats(this.#codec)
  }

  /** The (k + m) x k generator matrix, row-major. */
  generatorMatrix(): Buffer {
    return native.generator(this.#codec)
  }

  #roles(shards: readonly ShardSlot[], present: readonly boolean[], wanted: readonly boolean[] | undefined): Uint8Array {
    const n = this.totalShards
    checkFlags('present', present, n)
    if (wanted !== undefined) checkFlags('wanted', wanted, n)
    const roles = new Uint8Array(n)
    let presentCount = 0
    for (let i = 0; i < n; i++) {
      if (present[i]) {
        roles[i] = shardRole.present
        presentCount++
      } else if (wanted === undefined || wanted[i]) {
        roles[i] = shardRole.wanted
      }
    }
    if (presentCount < this.dataShards) {
      const error = new RangeError(
        `too many shards missing: ${presentCount} of ${n} present, RS(${this.dataShards},${this.parityShards}) needs at least ${this.dataShards}`,
      )
      throw Object.assign(error, { code: 'TooManyErasures' })
    }
    this.#checkShards(shards, roles)
    return roles
  }

  // Checks the shards a call uses (all of them when roles is null) are Buffers of
  // one length, so the common mistakes get a message in TypeScript terms.
  // Returns that length.
  #checkShards(shards: readonly ShardSlot[], roles: Uint8Array | null): number {
    if (!Array.isArray(shards)) throw new TypeError('shards must be an array of Buffers')
    if (shards.length !== this.totalShards) {
      throw new RangeError(
        `expected ${this.totalShards} shards (${this.dataShards} data + ${this.parityShards} parity), got ${shards.length}`,
      )
    }
    let lengthBytes = -1
    for (let i = 0; i < shards.length; i++) {
      if (roles !== null && roles[i] === shardRole.missing) continue
      const shard = shards[i]
      if (!Buffer.isBuffer(shard)) throw new TypeError(`shard ${i} is not a Buffer`)
      if (lengthBytes < 0) lengthBytes = shard.length
      else if (shard.length !== lengthBytes) {
        throw new RangeError(`shards differ in length: shard ${i} is ${shard.length} bytes, the others ${lengthBytes}`)
      }
    }
    return Math.max(lengthBytes, 0)
  }
}

function checkCount(name: string, value: number): void {
  if (typeof value !== 'number') throw new TypeError(`${name} must be an integer`)
  if (!Number.isInteger(value) || value < 1 || value >= shardsTotalMax) {
    throw new RangeError(`${name} must be an integer from 1 to ${shardsTotalMax - 1}, got ${value}`)
  }
}

function checkFlags(name: string, flags: readonly boolean[], n: number): void {
  if (!Array.isArray(flags)) throw new TypeError(`${name} must be an array of booleans`)
  if (flags.length !== n) throw new RangeError(`${name} must have one flag per shard (${n}), got ${flags.length}`)
}

// The codec layer: Reed-Solomon erasure coding (native kernels), stripe splitting,
// and the CRC32C checksum tree every chunk carries. Other layers import from here.
export { kernels, ReedSolomon, type Kernel, type ReedSolomonOptions, type ShardSlot } from './reed-solomon.ts'
export { joinStripe, shardSizeFor, splitStripe } from './stripe.ts'
export * from './checksum.ts'

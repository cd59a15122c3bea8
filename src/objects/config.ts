// The object layer's tunables, settled once into a frozen object (STYLE.md item 8),
// with defaults from limits.ts and the relations between them asserted.
import assert from 'node:assert/strict'
import {
  chunkSizeBytesMax,
  dataShardsDefault,
  inlineObjectSizeBytesDefault,
  inlineObjectSizeBytesMax,
  parityShardsDefault,
  shardsTotalMax,
  stripeSizeBytesDefault,
  units,
  writeDurationMsMax,
} from '../limits.ts'

export interface ObjectStoreConfig {
  dataShards: number
  parityShards: number
  stripeSizeBytes: number
  inlineSizeBytesMax: number
  /** Stripes one PUT holds (being filled + being sent): the PUT's memory bound. */
  stripesInFlightMax: number
  /** Stripes one GET prefetches ahead of the reader. */
  stripesAheadMax: number
  /** Object bytes whose stripe rows one catalog query loads during a GET. */
  loadWindowBytes: number
  putTimeoutMs: number
  getTimeoutMs: number
  /** The longest a chunk read waits before its piece is also rebuilt from other chunks (hedged). */
  hedgeAfterMs: number
  /** Hedge sooner: after the recent p95 of reads of the same size, within a 5 % budget (hedge.ts). */
  hedgeAdaptive: boolean
  /**
   * A PUT or part upload that took longer is refused at commit: the GC sweep may
   * already count its first chunks as orphans (src/repair/inventory-sweep.ts).
   */
  writeDurationMsMax: number
}

export const objectStoreDefaults: Readonly<ObjectStoreConfig> = Object.freeze({
  dataShards: dataShardsDefault,
  parityShards: parityShardsDefault,
  stripeSizeBytes: stripeSizeBytesDefault,
  inlineSizeBytesMax: inlineObjectSizeBytesDefault,
  stripesInFlightMax: 3,
  stripesAheadMax: 3,
  loadWindowBytes: 64 * stripeSizeBytesDefault,
  putTimeoutMs: 30_000,
  getTimeoutMs: 30_000,
  hedgeAfterMs: 2_000,
  hedgeAdaptive: true,
  writeDurationMsMax,
})

export function objectStoreConfig(overrides: Partial<ObjectStoreConfig> = {}): Readonly<ObjectStoreConfig> {
  const config = { ...objectStoreDefaults, ...overrides }
  assert.ok(config.dataShards >= 1 && config.parityShards >= 0 && config.dataShards + config.parityShards <= shardsTotalMax)
  assert.ok(config.stripeSizeBytes >= config.dataShards, 'a stripe holds at least one byte per data shard')
  assert.ok(Math.ceil(config.stripeSizeBytes / config.dataShards) <= chunkSizeBytesMax, 'chunks fit what a node accepts')
  assert.ok(config.inlineSizeBytesMax >= 0 && config.inlineSizeBytesMax <= inlineObjectSizeBytesMax)
  assert.ok(config.inlineSizeBytesMax < config.stripeSizeBytes)
  assert.ok(config.stripesInFlightMax >= 1 && config.stripesAheadMax >= 1)
  assert.ok(config.stripesInFlightMax * config.stripeSizeBytes <= 1 * units.GiB, 'a PUT holds at most 1 GiB')
  assert.ok(config.loadWindowBytes >= config.stripeSizeBytes)
  assert.ok(config.putTimeoutMs > 0 && config.getTimeoutMs > 0 && config.hedgeAfterMs > 0)
  assert.ok(config.writeDurationMsMax > 0 && config.writeDurationMsMax <= writeDurationMsMax, 'the write bound may be lowered, never raised past the GC grace invariant')
  return Object.freeze(config)
}

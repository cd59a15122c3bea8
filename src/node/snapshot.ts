// Index snapshots: the whole in-memory index written to one binary file, so a
// restart loads a million entries from one read instead of replaying every block.
// Recovery then replays only the records after the snapshot's position. The file
// is replaced atomically (temp, fsync, rename, fsync dir): a crash leaves the old
// snapshot or the new one, never half of one, and a CRC catches rot.
//
// Layout (little-endian):
//   header, 64 bytes: u32 magic, u16 version, u16 zero, u32 epoch, u32 position
//     block, u32 position offset units, u32 entries, u32 blocks, u32 zero,
//     f64 createdMs, 20 zero bytes, u32 CRC32C of the 60 bytes before it
//   block table: per sealed block u32 number, u32 end offset units
//   entries: `indexEntryBytes` each (see chunk-index.ts)
//   trailer: u32 CRC32C of block table + entries
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { crc32c } from '../codec/checksum.ts'
import { indexEntryBytes } from './chunk-index.ts'
import { writeFileAtomic } from './files.ts'
import type { Position } from './format.ts'

export const snapshotFileName = 'index.snapshot'
const snapshotMagic = 0x58494642 // "BFIX"
const snapshotVersion = 1
const headerBytes = 64
const blockEntryBytes = 8

export interface SnapshotBlock {
  block: number
  endUnits: number
}

export interface Snapshot {
  /** Epoch of the run that wrote it: records after `position` have at least this epoch. */
  epoch: number
  /** Every record before this position is reflected in `entries`. */
  position: Position
  /** Blocks before `position.block` with their final end; later blocks are replayed. */
  blocks: SnapshotBlock[]
  /** `ChunkIndex.serialize()` output. */
  entries: Buffer
  createdMs: number
}

export async function writeSnapshot(dir: string, snapshot: Snapshot): Promise<number> {
  assert.equal(snapshot.entries.length % indexEntryBytes, 0)
  for (const b of snapshot.blocks) assert.ok(b.block > 0 && b.block < snapshot.position.block, 'b.block > 0 && b.block < snapshot.position.block')
  const header = Buffer.alloc(headerBytes)
  header.writeUInt32LE(snapshotMagic, 0)
  header.writeUInt16LE(snapshotVersion, 4)
  header.writeUInt32LE(snapshot.epoch, 8)
  header.writeUInt32LE(snapshot.position.block, 12)
  header.writeUInt32LE(snapshot.position.offsetUnits, 16)
  header.writeUInt32LE(snapshot.entries.length / indexEntryBytes, 20)
  header.writeUInt32LE(snapshot.blocks.length, 24)
  header.writeDoubleLE(snapshot.createdMs, 32)
  header.writeUInt32LE(crc32c(header.subarray(0, 60)), 60)
  const table = Buffer.alloc(snapshot.blocks.length * blockEntryBytes)
  snapshot.blocks.forEach((b, i) => {
    table.writeUInt32LE(b.block, i * blockEntryBytes)
    table.writeUInt32LE(b.endUnits, i * blockEntryBytes + 4)
  })
  const trailer = Buffer.alloc(4)
  trailer.writeUInt32LE(crc32c(snapshot.entries, crc32c(table)), 0)
  await writeFileAtomic(dir, join(dir, snapshotFileName), [header, table, snapshot.entries, trailer])
  return header.length + table.length + snapshot.entries.length + trailer.length
}

export type SnapshotRead = { state: 'absent' } | { state: 'corrupt'; reason: string } | { state: 'ok'; snapshot: Snapshot }

export async function readSnapshot(dir: string): Promise<SnapshotRead> {
  let bytes: Buffer
  try {
    bytes = await readFile(join(dir, snapshotFileName))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'absent' }
    throw error
  }
  if (bytes.length < headerBytes + 4) return { state: 'corrupt', reason: `${bytes.length} bytes is too short` }
  if (bytes.readUInt32LE(0) !== snapshotMagic) return { state: 'corrupt', reason: 'bad magic' }
  if (crc32c(bytes.subarray(0, 60)) !== bytes.readUInt32LE(60)) return { state: 'corrupt', reason: 'header CRC mismatch' }
  const version = bytes.readUInt16LE(4)
  if (version !== snapshotVersion) return { state: 'corrupt', reason: `version ${version} is not ${snapshotVersion}` }
  const entryCount = bytes.readUInt32LE(20)
  const blockCount = bytes.readUInt32LE(24)
  const tableEnd = headerBytes + blockCount * blockEntryBytes
  const entriesEnd = tableEnd + entryCount * indexEntryBytes
  if (bytes.length !== entriesEnd + 4) return { state: 'corrupt', reason: `length ${bytes.length} does not match ${entryCount} entries` }
  const table = bytes.subarray(headerBytes, tableEnd)
  const entries = bytes.subarray(tableEnd, entriesEnd)
  if (crc32c(entries, crc32c(table)) !== bytes.readUInt32LE(entriesEnd)) return { state: 'corrupt', reason: 'body CRC mismatch' }
  const blocks: SnapshotBlock[] = []
  for (let i = 0; i < blockCount; i++) {
    blocks.push({ block: table.readUInt32LE(i * blockEntryBytes), endUnits: table.readUInt32LE(i * blockEntryBytes + 4) })
  }
  return {
    state: 'ok',
    snapshot: {
      epoch: bytes.readUInt32LE(8),
      position: { block: bytes.readUInt32LE(12), offsetUnits: bytes.readUInt32LE(16) },
      blocks,
      entries,
      createdMs: bytes.readDoubleLE(32),
    },
  }
}

// Storage node benchmark (issue 4). In one run, on one file system:
//   - fio: sequential 2 MiB writes with fdatasync after each, into a fresh file
//     (fio pre-allocates it, as the node pre-allocates its blocks) — the baseline;
//   - a real `blobfs node` process: appends of 2 MiB chunks over HTTP with
//     fdatasync (group commit) at 1, 4 and 16 concurrent writers, and the same
//     appends in-process (the block store without HTTP), 16 writers; fio and the
//     16-writer runs alternate, and ratios are medians of back-to-back pairs;
//   - GETs of whole 2 MiB chunks and of random 64 KiB ranges (16 concurrent);
//   - restart time with 1,000,000 indexed chunks (1-byte chunks, built in-process
//     with fdatasync group commits, then reopened after a crash — no final snapshot,
//     so the tail since the last periodic snapshot is replayed — and after a
//     clean stop), plus a `blobfs node` process start on that directory.
// npm run bench -- node [--quick] [--json]
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtemp, rm, statfs } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { pino } from 'pino'
import { checksumTree } from '../../../src/codec/checksum.ts'
import { HttpChunkStore } from '../../../src/cluster/http-store.ts'
import { units } from '../../../src/limits.ts'
import { BlockStore } from '../../../src/node/block-store.ts'
import { chunkIdToBytes } from '../../../src/node/format.ts'
import { startNodeProcess } from '../../node/processes.ts'
import { emitJson, median, parseBenchArgs, printTable, type Figures } from '../report.ts'

const options = parseBenchArgs()
const MiB = units.MiB
const chunkBytes = 2 * MiB
const appendBytesPerLevel = (options.quick ? 64 : 256) * MiB
const fioBytes = appendBytesPerLevel
const reps = options.quick ? 2 : 3
const restartChunks = options.quick ? 100_000 : 1_000_000
const getReads = options.quick ? 64 : 256
const rangeReads = options.quick ? 2_000 : 10_000
const concurrency = 16
const quiet = pino({ level: 'silent' })

async function inParallel(width: number, total: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < total) await fn(next++)
  }))
}

function fio(dir: string, sizeBytes: number): number {
  const out = execFileSync('fio', [
    '--name=seq', `--filename=${join(dir, 'fio.bin')}`, '--rw=write', `--bs=${chunkBytes}`, `--size=${sizeBytes}`,
    '--fdatasync=1', '--ioengine=psync', '--output-format=json',
  ], { encoding: 'utf8' })
  const job = (JSON.parse(out) as { jobs: { write: { bw_bytes: number } }[] }).jobs[0]!
  execFileSync('rm', ['-f', join(dir, 'fio.bin')])
  return job.write.bw_bytes / MiB
}

async function fsType(dir: string): Promise<string> {
  const types: Record<number, string> = { 0xef53: 'ext4', 0x58465342: 'xfs', 0x9123683e: 'btrfs', 0x01021994: 'tmpfs' }
  const s = await statfs(dir)
  return types[s.type] ?? `0x${s.type.toString(16)}`
}

const dir = await mkdtemp(join(tmpdir(), 'blobfs-bench-node-'))
const figures: Figures = {}
try {
  figures.filesystem = await fsType(dir)
  figures.date = new Date().toISOString().slice(0, 10)

  // ---- appends against fio, interleaved: the machine is shared, so every ratio
  // compares two runs made back to back, and the medians are reported.
  const pool = Array.from({ length: 16 }, () => {
    const data = randomBytes(chunkBytes)
    return { data, tree: checksumTree(data) }
  })
  const nodeDir = join(dir, 'node')
  let node = await startNodeProcess(nodeDir, ['--block-size', '1GiB', '--scrub-rate', '1'])
  const store = new HttpChunkStore({ resolve: () => node.url, connectionsPerNode: concurrency })
  const engineDir = join(dir, 'engine')
  const { store: engine } = await BlockStore.open({ dir: engineDir, blockSizeBytes: 1024 * MiB, sync: 'fdatasync', log: quiet })
  const written: string[] = []
  const appendOverHttp = async (writers: number, bytes: number): Promise<number> => {
    const started = performance.now()
    await inParallel(writers, bytes / chunkBytes, async (i) => {
      const id = randomUUID()
      const c = pool[i % pool.length]!
      await store.put('n', id, c.data, c.tree)
      written.push(id)
    })
    return bytes / MiB / ((performance.now() - started) / 1000)
  }
  const appendInProcess = async (writers: number, bytes: number): Promise<number> => {
    const started = performance.now()
    await inParallel(writers, bytes / chunkBytes, async (i) => {
      const c = pool[i % pool.length]!
      await engine.put(chunkIdToBytes(randomUUID()), c.data, c.tree)
    })
    return bytes / MiB / ((performance.now() - started) / 1000)
  }
  try {
    const runs = { fio: [] as number[], http16: [] as number[], engine16: [] as number[], ratio: [] as number[], engineRatio: [] as number[] }
    for (let rep = 0; rep < reps; rep++) {
      const fioMiBs = fio(dir, fioBytes)
      const http = await appendOverHttp(16, appendBytesPerLevel)
      const inProcess = await appendInProcess(16, appendBytesPerLevel)
      runs.fio.push(fioMiBs)
      runs.http16.push(http)
      runs.engine16.push(inProcess)
      runs.ratio.push(http / fioMiBs)
      runs.engineRatio.push(inProcess / fioMiBs)
    }
    figures.fio_seq_2mib_fdatasync_mib_s = median(runs.fio)
    figures.append_1w_mib_s = await appendOverHttp(1, appendBytesPerLevel / 2)
    figures.append_4w_mib_s = await appendOverHttp(4, appendBytesPerLevel)
    figures.append_16w_mib_s = median(runs.http16)
    figures.append_vs_fio_ratio = median(runs.ratio)
    figures.append_engine_16w_mib_s = median(runs.engine16)
    figures.append_engine_vs_fio_ratio = median(runs.engineRatio)
    figures.append_reps = reps

    // ---- GETs (the chunks were just written: page cache warm)
    let started = performance.now()
    await inParallel(concurrency, getReads, async (i) => {
      const got = await store.get('n', written[(i * 7919) % written.length]!)
      assert.equal(got.length, chunkBytes)
    })
    figures.get_2mib_mib_s = (getReads * chunkBytes) / MiB / ((performance.now() - started) / 1000)
    started = performance.now()
    await inParallel(concurrency, rangeReads, async (i) => {
      const offset = Math.floor(Math.random() * (chunkBytes - 65536))
      const got = await store.get('n', written[(i * 104729) % written.length]!, { offsetBytes: offset, lengthBytes: 65536 })
      assert.equal(got.length, 65536)
    })
    const rangeSeconds = (performance.now() - started) / 1000
    figures.get_range_64k_ops_s = rangeReads / rangeSeconds
    figures.get_range_64k_mib_s = (rangeReads * 65536) / MiB / rangeSeconds
  } finally {
    await store.close()
    await node.kill('SIGTERM')
    await engine.close()
  }
  await rm(nodeDir, { recursive: true, force: true })
  await rm(engineDir, { recursive: true, force: true })

  // ---- restart with many indexed chunks
  const restartDir = join(dir, 'restart')
  {
    const { store: builder } = await BlockStore.open({ dir: restartDir, blockSizeBytes: 1024 * MiB, sync: 'fdatasync', log: quiet })
    const one = Buffer.from([42])
    const tree = checksumTree(one)
    const started = performance.now()
    const batch = 4096
    for (let i = 0; i < restartChunks; i += batch) {
      const puts: Promise<unknown>[] = []
      for (let j = i; j < Math.min(restartChunks, i + batch); j++) puts.push(builder.put(chunkIdToBytes(randomUUID()), one, tree))
      await Promise.all(puts)
    }
    figures.restart_build_s = (performance.now() - started) / 1000
    // Crash-like first: no final snapshot, so the tail since the last periodic one is replayed.
    await builder.close({ snapshot: false })
  }
  {
    const { store: reopened, recovery } = await BlockStore.open({ dir: restartDir, blockSizeBytes: 1024 * MiB, sync: 'fdatasync', log: quiet })
    assert.equal(recovery.chunks, restartChunks)
    figures.restart_crash_ms = recovery.durationMs
    figures.restart_crash_tail_records = recovery.replayedRecords
    await reopened.close() // writes the final snapshot
  }
  {
    const { store: reopened, recovery } = await BlockStore.open({ dir: restartDir, blockSizeBytes: 1024 * MiB, sync: 'fdatasync', log: quiet })
    assert.equal(recovery.chunks, restartChunks)
    assert.equal(recovery.replayedRecords, 0)
    figures.restart_clean_ms = recovery.durationMs
    await reopened.close({ snapshot: false })
  }
  // And the whole process: spawn `blobfs node` on it, time until it listens.
  {
    const started = performance.now()
    node = await startNodeProcess(restartDir, ['--block-size', '1GiB'])
    figures.restart_process_to_listening_ms = performance.now() - started
    const logged = node.logs.map((l) => JSON.parse(l) as { msg?: string; durationMs?: number; chunks?: number }).find((l) => l.msg === 'block store recovered')!
    assert.equal(logged.chunks, restartChunks)
    figures.restart_process_recovery_ms = logged.durationMs!
    await node.kill('SIGTERM')
  }
  figures.restart_chunks = restartChunks
} finally {
  await rm(dir, { recursive: true, force: true })
}

const f = (k: string): number => Number(figures[k])
printTable(`Storage node (${figures.filesystem}, ${figures.date}${options.quick ? ', --quick' : ''})`, ['measure', 'value'], [
  ['fio sequential 2 MiB writes, fdatasync each (MiB/s)', f('fio_seq_2mib_fdatasync_mib_s')],
  ['node appends, 2 MiB, fdatasync, 1 writer (MiB/s)', f('append_1w_mib_s')],
  ['node appends, 2 MiB, fdatasync, 4 writers (MiB/s)', f('append_4w_mib_s')],
  ['node appends, 2 MiB, fdatasync, 16 writers (MiB/s)', f('append_16w_mib_s')],
  ['append_vs_fio_ratio (16 writers over HTTP / fio, median of back-to-back pairs)', f('append_vs_fio_ratio')],
  ['engine appends in-process, 2 MiB, fdatasync, 16 writers (MiB/s)', f('append_engine_16w_mib_s')],
  ['append_engine_vs_fio_ratio (in-process 16 writers / fio)', f('append_engine_vs_fio_ratio')],
  ['GET whole 2 MiB chunks, 16 concurrent (MiB/s)', f('get_2mib_mib_s')],
  ['GET random 64 KiB ranges, 16 concurrent (ops/s)', f('get_range_64k_ops_s')],
  ['GET random 64 KiB ranges, 16 concurrent (MiB/s)', f('get_range_64k_mib_s')],
  [`restart, ${restartChunks} chunks, clean stop: store recovery (ms)`, f('restart_clean_ms')],
  [`restart, ${restartChunks} chunks, after a crash (${f('restart_crash_tail_records')}-record tail): store recovery (ms)`, f('restart_crash_ms')],
  [`restart, ${restartChunks} chunks: \`blobfs node\` process start to listening (ms)`, f('restart_process_to_listening_ms')],
])
emitJson(options, figures)

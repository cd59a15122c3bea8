// npm run bench -- fuse [--quick] [--json] [--reps N] [--s3fs-standin]
// The FUSE mount against its peers, on the same machine in one run: blobfs mounted,
// s3fs mounted over an S3 endpoint, and a plain local directory as the ceiling.
// Workloads: dd sequential write and read (bs=1M) — the read twice: right after the
// write, with whatever each file system keeps of what it just wrote, and cold, with the
// kernel's page cache dropped first — fio random reads of 4 KiB and 128 KiB, extracting
// a tarball of many small files, ls -lR of them, rsync -a of a tree, and rename of the
// big file (and of a one-byte file, to show rename does not depend on size; both timed
// around rename(2) in one process). Which blobfs and which S3 endpoint run comes from
// targets.ts; every column title says what really ran.
//
// Every workload runs --reps times (3 by default, 1 with --quick) on every column,
// interleaved (workload, then repetition, then column), each repetition in its own
// directory; the table shows medians. On a shared machine the load moves during a
// run; interleaving spreads that over the columns instead of onto one of them. CPU
// seconds of the processes behind each column are counted for dd write and the cold
// dd read (the comparable read: the one right after the write may be served from
// memory on one column and not on another).
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isMounted, requireFuse, type ShResult } from '../../fuse/helpers/mount.ts'
import { emitJson, formatNumber, median, parseBenchArgs, printTable, type Figures } from '../report.ts'
import { cpuMeter } from './cpu.ts'
import { blobfsTarget, localTarget, s3fsTarget, s3PortTarget, s3rverStandIn, stopSharedCluster, type Target } from './targets.ts'

const options = parseBenchArgs()
const useStandIn = process.argv.includes('--s3fs-standin')
const repsFlag = process.argv.indexOf('--reps')
const reps = repsFlag >= 0 ? Number(process.argv[repsFlag + 1]) : options.quick ? 1 : 3
if (!Number.isInteger(reps) || reps < 1) throw new Error('--reps takes a whole number of at least 1')
const MiB = 1024 * 1024
const GiB = 1024 * MiB
const sizes = options.quick
  ? { bigMiB: 64, smallFiles: 1000, rsyncFiles: 300, fioSeconds: 3 }
  : { bigMiB: 1024, smallFiles: 10_000, rsyncFiles: 2000, fioSeconds: 10 }

interface Workload {
  key: string
  title: string
  unit: string
  /** Higher is better (rates) or lower is better (times). */
  higherIsBetter: boolean
  /** Bytes moved, for CPU seconds per GiB; set on the workloads whose CPU is counted. */
  cpuBytes?: number
  /** Runs before the CPU count and the timed part starts. */
  prepare?(dir: string): Promise<void>
  run(dir: string, fixtures: string, column: string): Promise<number>
}

/** Bound of one workload run on one column: a hung mount fails that cell, not the run. */
const workloadTimeoutMs = options.quick ? 10 * 60_000 : 40 * 60_000

/** Process groups of the commands still running, killed on a timeout, a signal or the end. */
const running = new Set<number>()

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL')
  } catch {
    // already gone
  }
}

/**
 * Runs `sh -c script` in a process group of its own, so that a timeout kills what
 * the shell started too (dd, tar, rsync, fio), not only the shell.
 */
function sh(script: string, opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<ShResult> {
  const timeoutMs = opts.timeoutMs ?? workloadTimeoutMs
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', script], { detached: true, env: { ...process.env, LC_ALL: 'C.UTF-8', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] })
    const pid = child.pid!
    running.add(pid)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => {
      killGroup(pid)
      reject(new Error(`timed out after ${timeoutMs} ms: ${script}\n${stderr}`))
    }, timeoutMs)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      running.delete(pid)
      killGroup(pid) // anything the script left running in the background
      resolve({ code, stdout, stderr })
    })
  })
}

async function timed(script: string, timeoutMs = workloadTimeoutMs): Promise<number> {
  const started = performance.now()
  const result = await sh(script, { timeoutMs })
  if (result.code !== 0) throw new Error(`failed: ${script}\n${result.stderr}`)
  return (performance.now() - started) / 1000
}

async function fio(file: string, blockSize: string): Promise<number> {
  const result = await sh(
    `fio --name=rand --filename='${file}' --readonly --rw=randread --bs=${blockSize} --ioengine=psync --numjobs=1 --time_based --runtime=${sizes.fioSeconds} --output-format=json`,
    { timeoutMs: (sizes.fioSeconds + 600) * 1000 },
  )
  if (result.code !== 0) throw new Error(`fio failed: ${result.stderr}`)
  const report = JSON.parse(result.stdout.slice(result.stdout.indexOf('{'))) as { jobs: { read: { iops: number } }[] }
  return report.jobs[0]!.read.iops
}

/**
 * Renames `path` to `path.renamed` and back, `count` times in all, in one child
 * process (no process start-up in the figure); the median milliseconds of one rename(2).
 */
async function renameMs(path: string, count: number): Promise<number> {
  const script = [
    "const fs = require('fs')",
    "const names = [process.argv[1], process.argv[1] + '.renamed']",
    'const times = []',
    `for (let i = 0; i < ${count}; i++) { const t = process.hrtime.bigint(); fs.renameSync(names[i % 2], names[(i + 1) % 2]); times.push(Number(process.hrtime.bigint() - t) / 1e6) }`,
    'console.log(JSON.stringify(times))',
  ].join('\n')
  const result = await sh(`"$NODE" -e "$RENAME_SCRIPT" '${path}'`, { env: { NODE: process.execPath, RENAME_SCRIPT: script } })
  if (result.code !== 0) throw new Error(`rename failed: ${result.stderr}`)
  return median(JSON.parse(result.stdout) as number[])
}
// s3fs renames by copying the object: keep its big file's renames few.
const renamesOf = (column: string): number => (column === 's3fs' ? 3 : 21)

/**
 * Empties the kernel's page cache, machine-wide (every column's pages, and the storage
 * nodes' chunk files behind blobfs and s3fs), after writing back what is dirty. Needs
 * root. Caches inside processes stay: blobfs's block cache holds only stripes the daemon
 * read, and none of a file it has just written (see the cold dd read's title).
 */
async function dropPageCache(): Promise<void> {
  const result = await sh('sync && echo 1 > /proc/sys/vm/drop_caches', { timeoutMs: 5 * 60_000 })
  if (result.code !== 0) throw new Error(`could not drop the page cache (needs root): ${result.stderr.trim()}`)
}

const bigBytes = sizes.bigMiB * MiB
const ddRead = async (dir: string): Promise<number> => bigBytes / 1e6 / (await timed(`dd if='${dir}/big' of=/dev/null bs=1M status=none`))
const workloads: Workload[] = [
  {
    key: 'dd_write_MBps',
    title: `dd write ${sizes.bigMiB} MiB (bs=1M, conv=fsync), MB/s`,
    unit: 'MB/s',
    higherIsBetter: true,
    cpuBytes: bigBytes,
    run: async (dir) => bigBytes / 1e6 / (await timed(`dd if=/dev/zero of='${dir}/big' bs=1M count=${sizes.bigMiB} conv=fsync status=none`)),
  },
  {
    // Whatever each file system keeps of what it has just written: the local dir and blobfs
    // (keep_cache after its own commit) read the kernel's pages; not comparable across columns.
    key: 'dd_read_after_write_MBps',
    title: `dd read ${sizes.bigMiB} MiB right after writing it (bs=1M; from whatever each keeps), MB/s`,
    unit: 'MB/s',
    higherIsBetter: true,
    run: ddRead,
  },
  {
    // The kernel's page cache dropped first on every column: local dir from its disk; blobfs
    // and s3fs from the nodes (their chunk files dropped too) — blobfs's block cache holds
    // nothing of the file (it was written, then read from the kernel's pages); s3fs runs
    // without use_cache (no local copy of objects on disk).
    key: 'dd_read_cold_MBps',
    title: `dd read ${sizes.bigMiB} MiB cold (bs=1M; page cache dropped first), MB/s`,
    unit: 'MB/s',
    higherIsBetter: true,
    cpuBytes: bigBytes,
    prepare: dropPageCache,
    run: ddRead,
  },
  { key: 'fio_4k_iops', title: 'fio random read 4 KiB, IOPS', unit: 'IOPS', higherIsBetter: true, run: (dir) => fio(`${dir}/big`, '4k') },
  { key: 'fio_128k_iops', title: 'fio random read 128 KiB, IOPS', unit: 'IOPS', higherIsBetter: true, run: (dir) => fio(`${dir}/big`, '128k') },
  {
    key: 'tar_x_files_per_s',
    title: `tar x of ${sizes.smallFiles} small files (1-4 KiB), files/s`,
    unit: 'files/s',
    higherIsBetter: true,
    run: async (dir, fixtures) => sizes.smallFiles / (await timed(`tar -C '${dir}' -xf '${fixtures}/small.tar'`)),
  },
  {
    key: 'ls_lR_s',
    title: `ls -lR of those ${sizes.smallFiles} files, s`,
    unit: 's',
    higherIsBetter: false,
    run: (dir) => timed(`ls -lR '${dir}/small' > /dev/null`),
  },
  {
    key: 'rsync_s',
    title: `rsync -a of a ${sizes.rsyncFiles}-file tree (0.5-8.5 KiB files), s`,
    unit: 's',
    higherIsBetter: false,
    run: (dir, fixtures) => timed(`rsync -a '${fixtures}/rsync-src/' '${dir}/rsync-dst/'`),
  },
  {
    key: 'rename_big_ms',
    title: `rename(2) of the ${sizes.bigMiB} MiB file, ms (median of 21; of 3 on s3fs)`,
    unit: 'ms',
    higherIsBetter: false,
    run: (dir, _fixtures, column) => renameMs(`${dir}/big`, renamesOf(column)),
  },
  {
    key: 'rename_small_ms',
    title: 'rename(2) of a 1-byte file, ms (median of 21)',
    unit: 'ms',
    higherIsBetter: false,
    run: async (dir) => {
      await timed(`printf x > '${dir}/one-byte'`)
      return renameMs(`${dir}/one-byte`, 21)
    },
  },
]

async function makeFixtures(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true })
  await timed(
    [
      'set -e',
      `cd '${dir}'`,
      'mkdir -p small',
      `i=0; while [ $i -lt ${sizes.smallFiles} ]; do d=small/d$((i / 100)); [ -d $d ] || mkdir $d; head -c $((1024 + (i * 37) % 3072)) /dev/urandom > $d/f$i; i=$((i + 1)); done`,
      'tar -cf small.tar small && rm -rf small',
      'mkdir -p rsync-src',
      `i=0; while [ $i -lt ${sizes.rsyncFiles} ]; do d=rsync-src/d$((i / 50)); [ -d $d ] || mkdir $d; head -c $((512 + (i * 91) % 8192)) /dev/urandom > $d/f$i; i=$((i + 1)); done`,
    ].join('\n'),
  )
}

interface Column {
  key: string
  target: Target
  runs: Map<string, (number | 'failed')[]>
  /** CPU seconds per group, summed over the repetitions of a workload. */
  cpu: Map<string, Record<string, number>>
}

function medianOf(column: Column, key: string): number | null {
  const values = (column.runs.get(key) ?? []).filter((v): v is number => typeof v === 'number')
  return values.length > 0 ? median(values) : null
}

async function loadAverage(): Promise<string> {
  return (await sh('cut -d" " -f1-3 /proc/loadavg')).stdout.trim()
}

/**
 * Leaves nothing behind: the commands still running, the columns' mounts and the
 * cluster, then any mount still under the work directory (fusermount -uz, then
 * umount -l), then the work directory — unless a mount refuses to go, so that rm
 * never walks into one. Runs at the end, after a failure, and on SIGINT/SIGTERM/SIGHUP.
 */
async function cleanUp(work: string, columns: Column[]): Promise<void> {
  for (const pid of running) killGroup(pid)
  running.clear()
  for (const column of [...columns].reverse()) {
    await column.target.stop().catch((error: unknown) => console.error(`stopping ${column.target.label}: ${String(error)}`))
  }
  columns.length = 0
  await stopSharedCluster().catch((error: unknown) => console.error(`stopping the cluster: ${String(error)}`))
  let stuck = false
  for (const name of await readdir(work).catch(() => [] as string[])) {
    const path = join(work, name)
    if (!(await isMounted(path))) continue
    await sh(`fusermount -uz '${path}' || umount -l '${path}'`, { timeoutMs: 30_000 }).catch(() => null)
    if (await isMounted(path)) {
      console.error(`${path} is still mounted: leaving ${work} in place`)
      stuck = true
    }
  }
  if (!stuck) await rm(work, { recursive: true, force: true })
}

async function main(): Promise<void> {
  await requireFuse()
  const work = await mkdtemp(join(tmpdir(), 'blobfs-bench-fuse-'))
  const figures: Figures = { reps, quick: options.quick ? 1 : 0, big_MiB: sizes.bigMiB, small_files: sizes.smallFiles, rsync_files: sizes.rsyncFiles }
  const columns: Column[] = []
  const loads: string[] = []
  let signalled = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) process.exit(1) // a second signal: out at once
    signalled = true
    console.error(`${signal}: stopping the run and cleaning up ...`)
    cleanUp(work, columns).finally(() => process.exit(130))
  }
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, onSignal)
  try {
    console.error(`fixtures: ${sizes.smallFiles} small files, ${sizes.rsyncFiles}-file tree, ${sizes.bigMiB} MiB file; ${reps} repetition(s)`)
    await makeFixtures(join(work, 'fixtures'))
    const s3 = s3PortTarget ?? (useStandIn ? s3rverStandIn : null)
    const starters: { key: string; start: () => Promise<Target> }[] = [
      { key: 'local', start: () => localTarget(work) },
      { key: 'blobfs', start: () => blobfsTarget(join(work, 'mnt-blobfs'), work) },
    ]
    if (s3) starters.push({ key: 's3fs', start: () => s3fsTarget(s3, join(work, 'mnt-s3fs'), work) })
    else console.error('s3fs: not run — no S3 endpoint for it (targets.ts: s3PortTarget is not wired; --s3fs-standin uses s3rver)')
    try {
      for (const starter of starters) {
        const target = await starter.start()
        columns.push({ key: starter.key, target, runs: new Map(), cpu: new Map() })
        figures[`${starter.key}.label`] = target.label
        for (let rep = 0; rep < reps; rep++) await mkdir(join(target.dir, `rep-${rep}`))
      }
      loads.push(await loadAverage())
      for (const workload of workloads) {
        for (let rep = 0; rep < reps; rep++) {
          for (const column of columns) {
            if (signalled) throw new Error('stopped by a signal')
            console.error(`${column.target.label}: ${workload.title} (run ${rep + 1} of ${reps}) ...`)
            const groups = workload.cpuBytes && column.target.cpuGroups ? await column.target.cpuGroups() : null
            const dir = join(column.target.dir, `rep-${rep}`)
            let meter: Awaited<ReturnType<typeof cpuMeter>> | null = null
            let value: number | 'failed'
            try {
              await workload.prepare?.(dir)
              meter = groups ? await cpuMeter(groups) : null
              value = await workload.run(dir, join(work, 'fixtures'), column.key)
            } catch (error) {
              console.error(`  failed: ${(error as Error).message.split('\n').slice(0, 3).join(' ')}`)
              value = 'failed'
            }
            if (meter) {
              const used = await meter.stop()
              const sum = column.cpu.get(workload.key) ?? {}
              for (const [group, seconds] of Object.entries(used)) sum[group] = (sum[group] ?? 0) + seconds
              column.cpu.set(workload.key, sum)
            }
            column.runs.set(workload.key, [...(column.runs.get(workload.key) ?? []), value])
          }
        }
        loads.push(await loadAverage())
      }
    } finally {
      // The figures are kept; the processes and mounts behind them are not.
      const measured = [...columns]
      await cleanUp(work, columns)
      columns.push(...measured)
    }
  } catch (error) {
    await cleanUp(work, [])
    throw error
  }

  const blobfs = columns.find((c) => c.key === 'blobfs')
  const s3fs = columns.find((c) => c.key === 's3fs')
  /** How many times better blobfs is than s3fs on a workload (>1: blobfs wins). */
  const advantage = (workload: Workload): number | null => {
    const a = blobfs ? medianOf(blobfs, workload.key) : null
    const b = s3fs ? medianOf(s3fs, workload.key) : null
    if (a === null || b === null || a === 0 || b === 0) return null
    return workload.higherIsBetter ? a / b : b / a
  }
  for (const column of columns) {
    for (const workload of workloads) {
      const m = medianOf(column, workload.key)
      figures[`${column.key}.${workload.key}`] = m ?? 'failed'
      figures[`${column.key}.${workload.key}.runs`] = (column.runs.get(workload.key) ?? []).map((v) => (typeof v === 'number' ? formatNumber(v) : v)).join(' / ')
      const cpu = column.cpu.get(workload.key)
      if (cpu && workload.cpuBytes) {
        for (const [group, seconds] of Object.entries(cpu)) figures[`${column.key}.${workload.key}.cpu_s_per_GiB.${group}`] = seconds / reps / (workload.cpuBytes / GiB)
      }
    }
  }
  for (const workload of workloads) {
    const a = advantage(workload)
    if (a !== null) figures[`blobfs_vs_s3fs.${workload.key}`] = a
  }

  printTable(
    `FUSE workloads (${options.quick ? 'quick' : 'full'} sizes; median of ${reps} interleaved run(s), wall clock)`,
    ['workload', ...columns.map((c) => c.target.label), 'blobfs vs s3fs'],
    workloads.map((w) => {
      const a = advantage(w)
      return [w.title, ...columns.map((c) => medianOf(c, w.key) ?? 'failed'), a === null ? '—' : `${formatNumber(a)}x`]
    }),
  )
  printTable(
    'Every run (in order)',
    ['workload', ...columns.map((c) => c.target.label)],
    workloads.map((w) => [w.title, ...columns.map((c) => String(figures[`${c.key}.${w.key}.runs`]))]),
  )
  const cpuColumns = columns.filter((c) => c.cpu.size > 0)
  if (cpuColumns.length > 0) {
    const groups = [...new Set(cpuColumns.flatMap((c) => [...c.cpu.values()].flatMap((g) => Object.keys(g))))]
    printTable(
      'CPU seconds per GiB moved, by process (mean over the runs)',
      ['workload', 'column', ...groups, 'total'],
      workloads
        .filter((w) => w.cpuBytes)
        .flatMap((w) =>
          cpuColumns.map((c) => {
            const cpu = c.cpu.get(w.key) ?? {}
            const per = (s: number) => s / reps / (w.cpuBytes! / GiB)
            return [w.title, c.target.label, ...groups.map((g) => per(cpu[g] ?? 0)), per(Object.values(cpu).reduce((x, y) => x + y, 0))]
          }),
        ),
    )
  }
  const rename = blobfs ? [medianOf(blobfs, 'rename_big_ms'), medianOf(blobfs, 'rename_small_ms')] : [null, null]
  const workload = (key: string): Workload => workloads.find((w) => w.key === key)!
  const targets: { name: string; measured: number | null; goal: number; met: boolean | null }[] = [
    { name: 'sequential write, blobfs / s3fs', measured: advantage(workload('dd_write_MBps')), goal: 2, met: null },
    { name: 'sequential read (cold), blobfs / s3fs', measured: advantage(workload('dd_read_cold_MBps')), goal: 2, met: null },
    { name: 'small-file extraction (tar x), blobfs / s3fs', measured: advantage(workload('tar_x_files_per_s')), goal: 5, met: null },
  ]
  for (const t of targets) t.met = t.measured === null ? null : t.measured >= t.goal
  // O(1) in file size: renaming the big file costs no more than twice renaming one byte.
  const renameRatio = rename[0] !== null && rename[1] !== null && rename[1] > 0 ? rename[0] / rename[1] : null
  printTable(
    "Against the issue's targets",
    ['target', 'measured', 'goal', 'met'],
    [
      ...targets.map((t) => [t.name, t.measured === null ? 'not run' : `${formatNumber(t.measured)}x`, `≥ ${t.goal}x`, t.met === null ? '—' : t.met ? 'yes' : 'no']),
      [`rename O(1): rename of ${sizes.bigMiB} MiB / of 1 byte (blobfs)`, renameRatio === null ? 'not run' : `${formatNumber(renameRatio)}x`, '≤ 2x', renameRatio === null ? '—' : renameRatio <= 2 ? 'yes' : 'no'],
    ],
  )
  targets.forEach((t, i) => {
    const name = ['seq_write', 'seq_read', 'tar_x'][i]
    figures[`target.${name}.blobfs_vs_s3fs`] = t.measured ?? 'not run'
    figures[`target.${name}.goal`] = `>= ${t.goal}x`
    figures[`target.${name}.met`] = t.met === null ? 'not run' : t.met ? 'yes' : 'no'
  })
  figures['target.rename_o1.big_vs_small'] = renameRatio ?? 'not run'
  figures['target.rename_o1.goal'] = '<= 2x'
  figures['target.rename_o1.met'] = renameRatio === null ? 'not run' : renameRatio <= 2 ? 'yes' : 'no'
  if (renameRatio !== null) figures['blobfs.rename_big_vs_small'] = renameRatio
  figures.load_average = loads.join(' | ')
  console.log(`\nload average (1, 5, 15 min) at the start and after each workload: ${loads.join(' | ')}`)
  emitJson(options, figures)
}

await main()

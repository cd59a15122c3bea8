// npm run bench -- fuse [--quick] [--json] [--s3fs-standin]
// The FUSE mount against its peers, on the same machine in one run: blobfs mounted,
// s3fs mounted over an S3 endpoint, and a plain local directory as the ceiling.
// Workloads: dd sequential write and read (bs=1M), fio random reads of 4 KiB and
// 128 KiB, extracting a tarball of many small files, ls -lR of them, rsync -a of a
// tree, and rename of the big file. Which blobfs and which S3 endpoint run comes from
// targets.ts (the lead plugs the real cluster and gateway in there); every column
// title says what really ran. Wall-clock times of whole commands, one run each.
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { requireFuse, sh } from '../../fuse/helpers/mount.ts'
import { emitJson, parseBenchArgs, printTable, type Figures } from '../report.ts'
import { blobfsTarget, localTarget, s3fsTarget, s3PortTarget, s3rverStandIn, type Target } from './targets.ts'

const options = parseBenchArgs()
const useStandIn = process.argv.includes('--s3fs-standin')
const MiB = 1024 * 1024
const sizes = options.quick
  ? { bigMiB: 64, smallFiles: 1000, rsyncFiles: 300, fioSeconds: 3 }
  : { bigMiB: 1024, smallFiles: 10_000, rsyncFiles: 2000, fioSeconds: 10 }

interface Workload {
  key: string
  title: string
  unit: string
  run(dir: string, fixtures: string): Promise<number>
}

async function timed(script: string, timeoutMs = 30 * 60_000): Promise<number> {
  const started = performance.now()
  const result = await sh(script, { timeoutMs })
  if (result.code !== 0) throw new Error(`failed: ${script}\n${result.stderr}`)
  return (performance.now() - started) / 1000
}

async function fio(file: string, blockSize: string): Promise<number> {
  const result = await sh(
    `fio --name=rand --filename='${file}' --readonly --rw=randread --bs=${blockSize} --ioengine=psync --numjobs=1 --time_based --runtime=${sizes.fioSeconds} --output-format=json`,
    { timeoutMs: (sizes.fioSeconds + 120) * 1000 },
  )
  if (result.code !== 0) throw new Error(`fio failed: ${result.stderr}`)
  const report = JSON.parse(result.stdout.slice(result.stdout.indexOf('{'))) as { jobs: { read: { iops: number } }[] }
  return report.jobs[0]!.read.iops
}

const workloads: Workload[] = [
  {
    key: 'dd_write_MBps',
    title: `dd write ${sizes.bigMiB} MiB (bs=1M, fsync), MB/s`,
    unit: 'MB/s',
    run: async (dir) => (sizes.bigMiB * MiB) / 1e6 / (await timed(`dd if=/dev/zero of='${dir}/big' bs=1M count=${sizes.bigMiB} conv=fsync status=none`)),
  },
  {
    key: 'dd_read_MBps',
    title: `dd read ${sizes.bigMiB} MiB (bs=1M), MB/s`,
    unit: 'MB/s',
    run: async (dir) => (sizes.bigMiB * MiB) / 1e6 / (await timed(`dd if='${dir}/big' of=/dev/null bs=1M status=none`)),
  },
  { key: 'fio_4k_iops', title: 'fio random read 4 KiB, IOPS', unit: 'IOPS', run: (dir) => fio(`${dir}/big`, '4k') },
  { key: 'fio_128k_iops', title: 'fio random read 128 KiB, IOPS', unit: 'IOPS', run: (dir) => fio(`${dir}/big`, '128k') },
  {
    key: 'tar_x_files_per_s',
    title: `tar x of ${sizes.smallFiles} small files, files/s`,
    unit: 'files/s',
    run: async (dir, fixtures) => sizes.smallFiles / (await timed(`tar -C '${dir}' -xf '${fixtures}/small.tar'`)),
  },
  {
    key: 'ls_lR_s',
    title: `ls -lR of those ${sizes.smallFiles} files, s`,
    unit: 's',
    run: (dir) => timed(`ls -lR '${dir}/small' > /dev/null`),
  },
  {
    key: 'rsync_s',
    title: `rsync -a of a ${sizes.rsyncFiles}-file tree, s`,
    unit: 's',
    run: (dir, fixtures) => timed(`rsync -a '${fixtures}/rsync-src/' '${dir}/rsync-dst/'`),
  },
  {
    key: 'rename_big_s',
    title: `mv of the ${sizes.bigMiB} MiB file, s`,
    unit: 's',
    run: (dir) => timed(`mv '${dir}/big' '${dir}/big-renamed'`),
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

async function main(): Promise<void> {
  await requireFuse()
  const work = await mkdtemp(join(tmpdir(), 'blobfs-bench-fuse-'))
  const figures: Figures = {}
  const columns: { label: string; values: Map<string, number | string> }[] = []
  try {
    console.error(`fixtures: ${sizes.smallFiles} small files, ${sizes.rsyncFiles}-file tree, ${sizes.bigMiB} MiB file`)
    await makeFixtures(join(work, 'fixtures'))
    const s3 = s3PortTarget ?? (useStandIn ? s3rverStandIn : null)
    const starters: { key: string; start: () => Promise<Target> }[] = [
      { key: 'local', start: () => localTarget(work) },
      { key: 'blobfs', start: () => blobfsTarget(join(work, 'mnt-blobfs'), work) },
    ]
    if (s3) starters.push({ key: 's3fs', start: () => s3fsTarget(s3, join(work, 'mnt-s3fs'), work) })
    else console.error('s3fs: not run — no S3 endpoint for it (targets.ts: s3PortTarget is not wired; --s3fs-standin uses s3rver)')
    for (const starter of starters) {
      const target = await starter.start()
      const values = new Map<string, number | string>()
      columns.push({ label: target.label, values })
      figures[`${starter.key}.label`] = target.label
      try {
        for (const workload of workloads) {
          console.error(`${target.label}: ${workload.title} ...`)
          try {
            const value = await workload.run(target.dir, join(work, 'fixtures'))
            values.set(workload.key, value)
            figures[`${starter.key}.${workload.key}`] = value
          } catch (error) {
            console.error(`  failed: ${(error as Error).message.split('\n').slice(0, 3).join(' ')}`)
            values.set(workload.key, 'failed')
            figures[`${starter.key}.${workload.key}`] = 'failed'
          }
        }
      } finally {
        await target.stop()
      }
    }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
  printTable(
    `FUSE workloads (${options.quick ? 'quick' : 'full'} sizes; one run each, wall clock)`,
    ['workload', ...columns.map((c) => c.label)],
    workloads.map((w) => [w.title, ...columns.map((c) => c.values.get(w.key) ?? 'not run')]),
  )
  emitJson(options, figures)
}

await main()

// The operations commands on a `blobfs up` cluster, as a user runs them (child
// processes, --data DIR): status, bucket create|ls|rm, cp both ways, ls, cat, rm —
// bytes equal after the round trip, no partial file left, the documented exit
// statuses on errors — and, once the cluster is stopped, a clear "start it" error.
// Every command's --help has examples (checked in process, no spawn per command).
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import yargs from 'yargs'
import { commands } from '../../src/cli/commands/index.ts'
import { exitStatus } from '../../src/cli/exit.ts'
import { blobfsBin } from '../support/cluster.ts'
import { startUp, type RunningUp } from '../support/up.ts'

const commandTimeoutMs = 120_000

interface Run {
  status: number | null
  stdout: Buffer
  stderr: string
}

/** Runs `blobfs ARGS` as a child process (async: the cluster's parts keep running meanwhile). */
function blobfs(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [blobfsBin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`blobfs ${args.join(' ')} did not finish in ${commandTimeoutMs} ms`))
    }, commandTimeoutMs)
    child.once('exit', (status) => {
      clearTimeout(timer)
      resolve({ status, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() })
    })
  })
}

async function ok(args: string[]): Promise<Buffer> {
  const run = await blobfs(args)
  assert.equal(run.status, 0, `blobfs ${args.join(' ')} failed (${run.status}): ${run.stderr}`)
  return run.stdout
}

test('every command has --help with examples', async () => {
  for (const command of commands) {
    const name = String(command.command).split(' ')[0]!
    let help = ''
    await yargs()
      .command(command)
      .help()
      .exitProcess(false)
      .parseAsync([name, '--help'], {}, (_err: unknown, _argv: unknown, output: string) => {
        help = output
      })
    assert.match(help, /Examples:/, `blobfs ${name} --help shows examples`)
  }
})

test('bucket, cp, ls, cat, rm and status against `blobfs up --data DIR`; a stopped cluster says to start it', { timeout: 600_000 }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'blobfs-cli-'))
  const dataDir = join(root, 'data')
  let up: RunningUp | undefined
  try {
    up = await startUp(dataDir, ['--block-size', '64MiB'])
    const data = ['--data', dataDir]

    const status = JSON.parse((await ok(['status', '--json', ...data])).toString()) as { nodes: { state: string; rack: string }[]; racks: number; capacityBytes: number }
    assert.equal(status.nodes.length, 12)
    assert.equal(status.racks, 4)
    assert.deepEqual([...new Set(status.nodes.map((n) => n.state))], ['UP'])
    assert.ok(status.capacityBytes > 0)

    assert.match((await ok(['bucket', 'create', 'media', ...data])).toString(), /created bucket media/)
    // 20 MiB + 3 bytes: two 16 MiB stripes, the second short. The upload and a second
    // create of the bucket (a conflict, exit status 4) run side by side.
    const local = join(root, 'clip.bin')
    const bytes = randomBytes(20 * 1024 * 1024 + 3)
    writeFileSync(local, bytes)
    const [uploaded, again] = await Promise.all([ok(['cp', local, 'blobfs://media/2026/', ...data]), blobfs(['bucket', 'create', 'media', ...data])])
    assert.match(uploaded.toString(), /-> blobfs:\/\/media\/2026\/clip\.bin/)
    assert.equal(again.status, exitStatus.conflict, 'creating a bucket twice is a conflict')
    const listed = (await ok(['ls', 'blobfs://media/', '--recursive', '--json', ...data])).toString().trim().split('\n').map((line) => JSON.parse(line) as { key: string; sizeBytes: number })
    assert.deepEqual(listed.map((o) => [o.key, o.sizeBytes]), [['2026/clip.bin', bytes.length]])

    const downloads = join(root, 'downloads')
    mkdirSync(downloads)
    await ok(['cp', 'blobfs://media/2026/clip.bin', downloads + '/', ...data])
    assert.ok(readFileSync(join(downloads, 'clip.bin')).equals(bytes), 'downloaded bytes are the uploaded ones')
    assert.deepEqual(readdirSync(downloads), ['clip.bin'], 'no partial file is left beside it')
    assert.ok((await ok(['cat', 'blobfs://media/2026/clip.bin', ...data])).equals(bytes))

    await ok(['rm', 'blobfs://media/2026/clip.bin', ...data])
    const [missing, noFile] = await Promise.all([
      blobfs(['cp', 'blobfs://media/2026/clip.bin', join(downloads, 'again.bin'), ...data]),
      blobfs(['cp', join(root, 'no-such-file'), 'blobfs://media/x', ...data]),
    ])
    assert.equal(missing.status, exitStatus.notFound, 'a removed key is not found')
    assert.match(missing.stderr, /NoSuchKey/)
    assert.deepEqual(readdirSync(downloads), ['clip.bin'], 'a failed download creates nothing')
    assert.equal(noFile.status, exitStatus.usage, 'a missing local file is bad input')
    assert.match(noFile.stderr, /no-such-file: no such file/)
    await ok(['bucket', 'rm', 'media', ...data])
    assert.ok(!(JSON.parse((await ok(['bucket', 'ls', '--json', ...data])).toString()) as { name: string }[]).some((b) => b.name === 'media'))

    assert.equal(await up.stop(), 0)
    up = undefined
    const stopped = await blobfs(['status', ...data])
    assert.equal(stopped.status, exitStatus.unavailable)
    assert.match(stopped.stderr, /no running cluster in .*start it with `blobfs up --data/)
  } finally {
    await up?.stop().catch(() => null)
    rmSync(root, { recursive: true, force: true })
  }
})

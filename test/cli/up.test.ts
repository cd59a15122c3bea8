// The README's main job, end to end: `blobfs up --mount` on a fresh directory; a
// file written through the mount is byte-equal through S3 (the AWS SDK) and through
// `blobfs cat`; SIGINT stops every part and leaves no mount; a second start on the
// same directory comes back with all data.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { blobfsBin } from '../support/cluster.ts'
import { startUp, type RunningUp } from '../support/up.ts'

/** Runs a shell command in a child process: never touch the mount from this process's own event loop. */
function sh(command: string): string {
  const result = spawnSync('sh', ['-c', command], { encoding: 'utf8', timeout: 120_000 })
  assert.equal(result.status, 0, `${command} failed: ${result.stderr}`)
  return result.stdout
}

function isMounted(mountpoint: string): boolean {
  return readFileSync('/proc/mounts', 'utf8').split('\n').some((line) => line.split(' ')[1] === mountpoint)
}

test('blobfs up: mount, S3 and CLI see the same bytes; SIGINT stops cleanly; a restart keeps the data', { timeout: 600_000 }, async () => {
  const root = mkdtempSync(join(tmpdir(), 'blobfs-up-'))
  const dataDir = join(root, 'data')
  const mountpoint = join(root, 'mnt')
  let up: RunningUp | undefined
  try {
    up = await startUp(dataDir, ['--mount', mountpoint, '--block-size', '64MiB'])
    assert.ok(isMounted(mountpoint), 'the bucket is mounted when blobfs ready is printed')
    const s3 = new S3Client({ endpoint: up.cluster.gatewayUrl!, region: 'us-east-1', forcePathStyle: true, credentials: up.credentials })

    const local = join(root, 'file.bin')
    const data = randomBytes(20 * 1024 * 1024 + 3)
    writeFileSync(local, data)
    sh(`mkdir -p '${mountpoint}/docs' && cp '${local}' '${mountpoint}/docs/file.bin'`)
    const viaS3 = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: 'default', Key: 'docs/file.bin' }))).Body!.transformToByteArray())
    assert.ok(viaS3.equals(data), 'written through the mount, read through S3')
    const viaCli = spawnSync(process.execPath, [blobfsBin, 'cat', 'blobfs://default/docs/file.bin', '--data', dataDir], { maxBuffer: 64 * 1024 * 1024 })
    assert.equal(viaCli.status, 0, viaCli.stderr?.toString())
    assert.ok(viaCli.stdout.equals(data), 'blobfs cat returns the same bytes')

    await s3.send(new PutObjectCommand({ Bucket: 'default', Key: 'from-s3.txt', Body: 'written over S3\n' }))
    // The mount's attribute/listing caches live 1 s; then the S3 object is visible.
    await new Promise((r) => setTimeout(r, 1500))
    assert.equal(sh(`cat '${mountpoint}/from-s3.txt'`), 'written over S3\n')
    s3.destroy()

    assert.equal(await up.stop(), 0, 'SIGINT exits 0')
    assert.ok(!isMounted(mountpoint), 'no stale mount after SIGINT')
    assert.equal(sh(`ps -eo args | grep -c '[b]in.mjs node --data ${dataDir}' || true`).trim(), '0', 'every node process is gone')

    up = await startUp(dataDir, ['--mount', mountpoint, '--block-size', '64MiB'])
    const sum = sh(`sha256sum '${mountpoint}/docs/file.bin'`).split(' ')[0]
    assert.equal(sum, createHash('sha256').update(data).digest('hex'), 'the data survives a restart')
    assert.equal(sh(`cat '${mountpoint}/from-s3.txt'`), 'written over S3\n')
  } finally {
    if (up) await up.stop().catch(() => null)
    spawnSync('fusermount', ['-uz', mountpoint])
    rmSync(root, { recursive: true, force: true })
  }
})

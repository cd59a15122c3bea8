// Real S3 clients from Debian against the real gateway: the AWS CLI (aws s3 cp/sync,
// aws s3api), rclone (copy/check) and s3cmd (put/get/ls). Bytes written through S3
// are compared through the object layer, and bytes written to the object layer are
// read through S3. A missing client fails the test with how to install it.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { test } from 'node:test'
import { Readable } from 'node:stream'
import { alice, collect, patternBytes, startHarness, type Harness } from './harness.ts'

const MiB = 1024 * 1024

function requireClient(path: string, packageName: string): string {
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: install it with 'apt-get install ${packageName}' (or run .ci/install-deps)`)
  }
  return path
}

function run(file: string, args: string[], env: Record<string, string>, cwd?: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // a clean environment: ambient AWS_*/proxy/CA settings must not change what is tested
    execFile(file, args, { env: { PATH: '/usr/bin:/bin', ...env }, cwd, maxBuffer: 16 * MiB, timeout: 120_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(' ')} failed: ${error.message}\n${stderr}`))
      else resolve({ stdout, stderr })
    })
  })
}

/** A directory tree with awkward names, small files and one that goes multipart. */
async function makeTree(root: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>([
    ['readme.txt', Buffer.from('hello from blobfs\n')],
    ['empty.dat', Buffer.alloc(0)],
    ['docs/spaced name.md', patternBytes(3000, 2)],
    ['docs/plus+and%percent.txt', patternBytes(1234, 3)],
    ['docs/deep/ünïcode-ファイル.bin', patternBytes(70_000, 4)],
    ['media/large.bin', patternBytes(12 * MiB + 333, 5)],
  ])
  for (const [name, data] of files) {
    await mkdir(join(root, name, '..'), { recursive: true })
    await writeFile(join(root, name), data)
  }
  return files
}

async function listTree(root: string): Promise<string[]> {
  const out: string[] = []
  const walk = async (dir: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) await walk(join(dir, entry.name))
      else out.push(relative(root, join(dir, entry.name)))
    }
  }
  await walk(root)
  return out.sort()
}

async function assertStored(h: Harness, bucket: string, prefix: string, files: Map<string, Buffer>) {
  for (const [name, data] of files) {
    const read = await h.objects.getObject(bucket, prefix + name)
    assert.ok((await collect(read.body)).equals(data), `${prefix + name} is byte-equal in the object layer`)
  }
}

async function withWorkspace(body: (h: Harness, dir: string) => Promise<void>) {
  const h = await startHarness({ rateLimit: null })
  const dir = await mkdtemp(join(tmpdir(), 'blobfs-s3-clients-'))
  try {
    await body(h, dir)
  } finally {
    await h.close()
    await rm(dir, { recursive: true, force: true })
  }
}

test('AWS CLI: aws s3 sync twice (the second copies nothing), aws s3 cp both ways, aws s3api calls', async () => {
  const aws = requireClient('/usr/bin/aws', 'awscli')
  await withWorkspace(async (h, dir) => {
    const env = {
      HOME: dir,
      AWS_ACCESS_KEY_ID: alice.accessKeyId,
      AWS_SECRET_ACCESS_KEY: alice.secretAccessKey,
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_CONFIG_FILE: join(dir, 'no-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'no-credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_PAGER: '',
    }
    const cli = (...args: string[]) => run(aws, ['--endpoint-url', h.endpoint, ...args], env, dir)
    const tree = join(dir, 'tree')
    const files = await makeTree(tree)

    await cli('s3', 'mb', 's3://cli-bucket')
    const first = await cli('s3', 'sync', tree, 's3://cli-bucket/tree', '--no-progress')
    assert.equal(first.stdout.split('\n').filter((l) => l.startsWith('upload:')).length, files.size)
    await assertStored(h, 'cli-bucket', 'tree/', files)
    assert.ok(h.objects.calls.uploadPart > 0, 'the 12 MiB file went multipart')

    const writesBefore = h.objects.calls.putObject + h.objects.calls.uploadPart
    const second = await cli('s3', 'sync', tree, 's3://cli-bucket/tree', '--no-progress')
    assert.equal(second.stdout.trim(), '', 'the second sync copies nothing')
    assert.equal(h.objects.calls.putObject + h.objects.calls.uploadPart, writesBefore)

    await cli('s3', 'cp', 's3://cli-bucket/tree/media/large.bin', join(dir, 'large.copy'), '--no-progress')
    assert.ok((await readFile(join(dir, 'large.copy'))).equals(files.get('media/large.bin')!))

    // written through the object layer, read through S3
    const direct = patternBytes(9 * MiB, 8)
    await h.objects.putObject('cli-bucket', 'direct/écrit.bin', Readable.from([direct]))
    await cli('s3', 'cp', 's3://cli-bucket/direct/écrit.bin', join(dir, 'direct.bin'), '--no-progress')
    assert.ok((await readFile(join(dir, 'direct.bin'))).equals(direct))

    // s3api
    await writeFile(join(dir, 'body.txt'), 'via s3api')
    const put = JSON.parse((await cli('s3api', 'put-object', '--bucket', 'cli-bucket', '--key', 'api/one.txt', '--body', join(dir, 'body.txt'), '--metadata', 'k=v')).stdout)
    assert.match(put.ETag, /^"[0-9a-f]{32}"$/)
    const head = JSON.parse((await cli('s3api', 'head-object', '--bucket', 'cli-bucket', '--key', 'api/one.txt')).stdout)
    assert.equal(head.ContentLength, 9)
    assert.deepEqual(head.Metadata, { k: 'v' })
    await cli('s3api', 'copy-object', '--bucket', 'cli-bucket', '--key', 'api/two.txt', '--copy-source', 'cli-bucket/api/one.txt')
    const listed = JSON.parse((await cli('s3api', 'list-objects-v2', '--bucket', 'cli-bucket', '--prefix', 'api/')).stdout)
    assert.deepEqual(listed.Contents.map((c: { Key: string }) => c.Key), ['api/one.txt', 'api/two.txt'])
    const v1 = JSON.parse((await cli('s3api', 'list-objects', '--bucket', 'cli-bucket', '--delimiter', '/')).stdout)
    assert.deepEqual(v1.CommonPrefixes.map((p: { Prefix: string }) => p.Prefix), ['api/', 'direct/', 'tree/'])
    const deleted = JSON.parse((await cli('s3api', 'delete-objects', '--bucket', 'cli-bucket', '--delete', JSON.stringify({ Objects: [{ Key: 'api/one.txt' }, { Key: 'api/two.txt' }] }))).stdout)
    assert.equal(deleted.Deleted.length, 2)

    const url = (await cli('s3', 'presign', 's3://cli-bucket/tree/readme.txt', '--expires-in', '300')).stdout.trim()
    assert.equal(await (await fetch(url)).text(), 'hello from blobfs\n')

    await cli('s3', 'rm', '--recursive', 's3://cli-bucket/', '--only-show-errors')
    assert.deepEqual((await h.objects.listObjects('cli-bucket')).objects, [])
    await cli('s3', 'rb', 's3://cli-bucket')
    await assert.rejects(h.objects.getBucket('cli-bucket'), { code: 'NoSuchBucket' })
  })
})

test('rclone: copy, check, a second copy transfers nothing, copy back byte-equal', async () => {
  const rclone = requireClient('/usr/bin/rclone', 'rclone')
  await withWorkspace(async (h, dir) => {
    const env = {
      HOME: dir,
      RCLONE_CONFIG_BLOB_TYPE: 's3',
      RCLONE_CONFIG_BLOB_PROVIDER: 'Other',
      RCLONE_CONFIG_BLOB_ENDPOINT: h.endpoint,
      RCLONE_CONFIG_BLOB_ACCESS_KEY_ID: alice.accessKeyId,
      RCLONE_CONFIG_BLOB_SECRET_ACCESS_KEY: alice.secretAccessKey,
      RCLONE_CONFIG_BLOB_REGION: 'us-east-1',
    }
    const rc = (...args: string[]) => run(rclone, ['--config', join(dir, 'no-rclone.conf'), '--s3-upload-cutoff', '5M', '--s3-chunk-size', '5M', ...args], env, dir)
    const tree = join(dir, 'tree')
    const files = await makeTree(tree)
    await rc('copy', tree, 'blob:rclone-bucket/tree')
    await assertStored(h, 'rclone-bucket', 'tree/', files)
    assert.ok(h.objects.calls.uploadPart >= 3, 'the 12 MiB file went multipart in 5 MiB chunks')
    const check = await rc('check', tree, 'blob:rclone-bucket/tree')
    assert.match(check.stderr, /0 differences found/)
    const writes = h.objects.calls.putObject + h.objects.calls.uploadPart
    await rc('copy', tree, 'blob:rclone-bucket/tree')
    assert.equal(h.objects.calls.putObject + h.objects.calls.uploadPart, writes, 'nothing transferred the second time')

    const direct = patternBytes(2 * MiB, 11)
    await h.objects.putObject('rclone-bucket', 'tree/direct.bin', Readable.from([direct]))
    const back = join(dir, 'back')
    await rc('copy', 'blob:rclone-bucket/tree', back)
    assert.deepEqual(await listTree(back), [...files.keys(), 'direct.bin'].sort())
    for (const [name, data] of files) assert.ok((await readFile(join(back, name))).equals(data), name)
    assert.ok((await readFile(join(back, 'direct.bin'))).equals(direct))
  })
})

test('s3cmd: mb, put (single and multipart), ls, get byte-equal', async () => {
  const s3cmd = requireClient('/usr/bin/s3cmd', 's3cmd')
  await withWorkspace(async (h, dir) => {
    const hostPort = h.endpoint.replace('http://', '')
    const config = join(dir, 's3cfg')
    await writeFile(
      config,
      [
        '[default]',
        `access_key = ${alice.accessKeyId}`,
        `secret_key = ${alice.secretAccessKey}`,
        `host_base = ${hostPort}`,
        `host_bucket = ${hostPort}`,
        'use_https = False',
        'signature_v2 = False',
        'bucket_location = us-east-1',
        '',
      ].join('\n'),
    )
    const cmd = (...args: string[]) => run(s3cmd, ['-c', config, '--no-progress', ...args], { HOME: dir }, dir)
    const tree = join(dir, 'tree')
    const files = await makeTree(tree)
    await cmd('mb', 's3://s3cmd-bucket')
    for (const name of files.keys()) await cmd('put', '--multipart-chunk-size-mb=5', join(tree, name), `s3://s3cmd-bucket/${name}`)
    await assertStored(h, 's3cmd-bucket', '', files)
    assert.ok(h.objects.calls.uploadPart >= 3)

    const top = (await cmd('ls', 's3://s3cmd-bucket')).stdout
    assert.match(top, /DIR +s3:\/\/s3cmd-bucket\/docs\//)
    assert.match(top, /s3:\/\/s3cmd-bucket\/readme\.txt/)
    const all = (await cmd('ls', '-r', 's3://s3cmd-bucket')).stdout
    for (const name of files.keys()) assert.ok(all.includes(`s3://s3cmd-bucket/${name}`), name)

    for (const [name, data] of files) {
      const out = join(dir, 'got', name.replace(/\//g, '_'))
      await mkdir(join(dir, 'got'), { recursive: true })
      await cmd('get', '--force', `s3://s3cmd-bucket/${name}`, out)
      assert.ok((await readFile(out)).equals(data), name)
    }
    const direct = patternBytes(300_000, 12)
    await h.objects.putObject('s3cmd-bucket', 'direct.bin', Readable.from([direct]))
    await cmd('get', '--force', 's3://s3cmd-bucket/direct.bin', join(dir, 'direct.bin'))
    assert.ok((await readFile(join(dir, 'direct.bin'))).equals(direct))
  })
})

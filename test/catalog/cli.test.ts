// `blobfs catalog migrate` and `blobfs catalog serve`, run as the real command line.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, test } from 'node:test'
import { openCatalog } from '../../src/catalog/catalog.ts'
import { latestSchemaVersion, migrations } from '../../src/catalog/migrations.ts'
import { startPostgres, type PostgresServer } from '../support/postgres-server.ts'

const bin = join(import.meta.dirname, '..', '..', 'src', 'cli', 'bin.mjs')
const blobfs = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000 })

let server: PostgresServer
const dirs: string[] = []
before(async () => {
  server = await startPostgres()
})
after(async () => {
  await server.stop()
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

test('catalog migrate applies the missing versions once, then has nothing to do', async () => {
  const url = await server.createDatabase()
  const first = blobfs('catalog', 'migrate', '--catalog', url)
  assert.equal(first.status, 0, first.stderr)
  assert.ok(first.stdout.includes(`schema version ${latestSchemaVersion} (applied ${migrations.map((m) => m.version).join(', ')})`), first.stdout)
  const second = blobfs('catalog', 'migrate', '--catalog', url, '--json')
  assert.equal(second.status, 0, second.stderr)
  assert.deepEqual(JSON.parse(second.stdout.trim().split('\n').pop()!).applied, [])
  const unreachable = blobfs('catalog', 'migrate', '--catalog', 'postgres://blobfs@127.0.0.1:1/blobfs')
  assert.equal(unreachable.status, 5, 'CatalogUnavailable maps to the "unavailable" exit status')
  assert.match(unreachable.stderr, /CatalogUnavailable/)
  const help = blobfs('catalog', '--help')
  assert.match(help.stdout, /catalog migrate --catalog/)
  assert.ok(help.stdout.includes(`Schema version of this build: ${latestSchemaVersion}.`), help.stdout)
})

test('catalog serve runs a data directory\'s embedded catalog until SIGTERM; migrate works on it offline', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'blobfs-cli-'))
  dirs.push(dataDir)
  const child = spawn(process.execPath, [bin, 'catalog', 'serve', '--data', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  try {
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (l) => l.startsWith('catalog ready ') && resolve(l))
      child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)))
    })
    const url = line.slice('catalog ready '.length)
    const catalog = await openCatalog(url)
    await catalog.buckets.create({ name: 'served', owner: 'cli' })
    await catalog.close()
  } finally {
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    assert.equal(await exited, 0, stderr)
  }
  const offline = blobfs('catalog', 'migrate', '--data', dataDir, '--json')
  assert.equal(offline.status, 0, offline.stderr)
  assert.deepEqual(JSON.parse(offline.stdout.trim().split('\n').pop()!).applied, [])
})

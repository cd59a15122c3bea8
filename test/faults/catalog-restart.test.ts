// Fault: the catalog (PostgreSQL) restarts under traffic — writers putting new
// objects and overwriting old ones, readers reading what was acknowledged. What
// must hold: while it is down, clients get clean, typed errors (never a hang past
// the test's bound, never an untyped crash); every acknowledged object survives
// with exactly its bytes (or, if it was overwritten by a PUT whose answer was
// lost, those bytes); no object is ever half there: everything listed reads back
// whole and matches a version some writer sent; reads never return wrong bytes;
// and once the catalog is back, writes are acknowledged again. (This test found
// the driver crash fixed by src/catalog/driver-patch.mjs.)
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { errorCodeOf, isBlobfsError } from '../../src/errors.ts'
import { configureLogging } from '../../src/log.ts'
import { startTestCluster, type TestCluster } from '../support/cluster.ts'

const stripeSizeBytes = 4 * 64 * 1024
// NotEnoughNodes (a 503 for the client): while the catalog is away the nodes cannot
// heartbeat, so right after it returns the registry shows their last beats as stale
// until each beats again, and a write in that window may find too few nodes to place on.
const cleanCodes = new Set(['CatalogUnavailable', 'SerializationFailure', 'Timeout', 'NoSuchKey', 'NotEnoughNodes'])

configureLogging({ level: 'error' }) // the client logs every failed registry refresh while the catalog is down

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex')

describe('fault: the catalog restarts under traffic', { timeout: 180_000 }, () => {
  let cluster: TestCluster
  before(async () => {
    cluster = await startTestCluster({ nodes: 6, racks: 3 })
  })
  after(async () => {
    await cluster?.stop()
  })

  test('acknowledged objects survive, nothing is half visible, errors are clean, writes resume', async () => {
    const { objects } = await cluster.open({ dataShards: 4, parityShards: 2, stripeSizeBytes })
    await objects.createBucket('restart', 'tester')
    const acknowledged = new Map<string, string>() // key -> sha of the last acknowledged PUT
    const sent = new Map<string, Set<string>>() // key -> sha of every PUT attempted
    const errors = new Map<string, number>()
    let wrongBytes = 0
    let ackedAfterRestart = 0
    let restarted = false
    let stop = false
    const keys = Array.from({ length: 24 }, (_, i) => `k${i}`)

    const writer = async (id: number) => {
      for (let n = 0; !stop; n++) {
        const key = keys[(id * 7 + n) % keys.length]!
        const data = randomBytes(n % 3 === 0 ? 900 : stripeSizeBytes + ((id * 31 + n * 17) % 100_000)) // inline and striped
        const digest = sha(data)
        sent.set(key, (sent.get(key) ?? new Set()).add(digest))
        try {
          await objects.putObject('restart', key, Readable.from([data]))
          acknowledged.set(key, digest)
          if (restarted) ackedAfterRestart++
        } catch (error) {
          errors.set(errorCodeOf(error), (errors.get(errorCodeOf(error)) ?? 0) + 1)
          assert.ok(isBlobfsError(error), `a PUT failed with an untyped error: ${String(error)}`)
          await sleep(50)
        }
      }
    }
    const reader = async () => {
      while (!stop) {
        const key = keys[Math.floor(Math.random() * keys.length)]!
        try {
          const read = await objects.getObject('restart', key)
          const digest = sha(Buffer.concat(await read.body.toArray()))
          if (!sent.get(key)?.has(digest)) wrongBytes++
        } catch (error) {
          errors.set(errorCodeOf(error), (errors.get(errorCodeOf(error)) ?? 0) + 1)
          assert.ok(isBlobfsError(error), `a GET failed with an untyped error: ${String(error)}`)
          await sleep(50)
        }
      }
    }
    const traffic = [0, 1, 2, 3].map(writer).concat([reader(), reader()])
    await sleep(2_000)
    const ackedBefore = acknowledged.size
    await cluster.postgres.restart({ downMs: 2_000 })
    restarted = true
    const backAt = Date.now()
    while (ackedAfterRestart < 10 && Date.now() - backAt < 30_000) await sleep(200)
    stop = true
    await Promise.all(traffic)

    assert.ok(ackedBefore > 0, 'writes were acknowledged before the restart')
    assert.ok(ackedAfterRestart >= 10, `writes are acknowledged again after the restart (${ackedAfterRestart})`)
    assert.equal(wrongBytes, 0, 'a read returned bytes no writer sent for that key')
    const unclean = [...errors.keys()].filter((code) => !cleanCodes.has(code))
    assert.deepEqual(unclean, [], `errors seen: ${JSON.stringify(Object.fromEntries(errors))}`)
    assert.ok((errors.get('CatalogUnavailable') ?? 0) > 0, 'clients saw the catalog go away')

    // Every acknowledged key is there, whole, with a version a writer sent (the last acknowledged one, or a later
    // PUT whose acknowledgement was lost with the connection); every listed key reads back whole.
    const listed = (await objects.listObjects('restart', { maxKeys: 1000 })).objects
    const listedKeys = new Set(listed.map((o) => o.key))
    for (const key of acknowledged.keys()) assert.ok(listedKeys.has(key), `acknowledged ${key} is listed`)
    for (const object of listed) {
      const read = await objects.getObject('restart', object.key)
      const body = Buffer.concat(await read.body.toArray())
      assert.equal(body.length, object.sizeBytes, `${object.key} reads back whole`)
      assert.ok(sent.get(object.key)?.has(sha(body)), `${object.key} holds a version a writer sent`)
    }
  })
})

// Install-time fix for a crash in the catalog driver (postgres.js 3.4.x, upstream
// issues porsager/postgres#1154 and #1208, fix proposed in #1209, not released):
// small protocol writes are batched behind setImmediate, and when the server
// closes the connection first (a catalog restart, a failover) the deferred write
// runs on a null socket and throws from the immediate — an uncatchable exception
// that kills every blobfs process talking to the catalog. The teardown paths also
// leave the batching timer and buffer stale, so a reconnected connection could
// never flush (or would send the old bytes first).
//
// The patch: nextWrite on a closed connection rejects its queries with
// CONNECTION_CLOSED (the catalog maps that to CatalogUnavailable) instead of
// throwing, and teardown resets the timer and buffer. A second edit: the array-types
// query a new connection runs first had its promise dropped, so a server failing it
// while shutting down (FATAL 57P01) raised an unhandled rejection; now observed.
// Applied by `npm install` (package.json "install"), idempotent edit by edit, and
// loud when the driver no longer looks as expected (then check whether upstream
// fixed it, and drop this file).
// test/catalog/driver-patch.test.ts checks it is in place.
import { readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

export const patchMarker = '/* blobfs driver-patch: null-socket guard */'
export const typesMarker = '/* blobfs driver-patch: types-fetch rejection */'

const edits = [
  {
    from: `  function nextWrite(fn) {
    const x = socket.write(chunk, fn)`,
    to: `  function nextWrite(fn) {
    ${patchMarker}
    if (!socket) {
      nextWriteTimer !== null && clearImmediate(nextWriteTimer)
      chunk = nextWriteTimer = null
      error(Errors.connection('CONNECTION_CLOSED', options))
      return false
    }
    const x = socket.write(chunk, fn)`,
  },
  {
    from: `    clearImmediate(nextWriteTimer)
    if (socket) {`,
    to: `    clearImmediate(nextWriteTimer)
    chunk = nextWriteTimer = null
    if (socket) {`,
  },
  {
    from: `    incomings = null
    clearImmediate(nextWriteTimer)
    socket.removeListener('data', data)`,
    to: `    incomings = null
    clearImmediate(nextWriteTimer)
    chunk = nextWriteTimer = null
    socket.removeListener('data', data)`,
  },
  {
    // The array-types query a fresh connection runs before its first query is started
    // from the ReadyForQuery handler, which drops its promise: when the server fails it
    // (FATAL 57P01 from a shutting-down catalog), the rejection is unhandled and kills
    // the process. The queries waiting on the connection are rejected by the driver's
    // own error and teardown paths, so this one is only observed here.
    from: `        return fetchArrayTypes()
`,
    to: `        ${typesMarker}
        return fetchArrayTypes().catch(() => { /* waiting queries are rejected by errored() / teardown */ })
`,
  },
]

/** The driver's connection.js files (ESM and CommonJS builds). */
export function driverFiles() {
  const require = createRequire(import.meta.url)
  const root = join(dirname(require.resolve('postgres')), '..', '..') // main is cjs/src/index.js
  return [join(root, 'src', 'connection.js'), join(root, 'cjs', 'src', 'connection.js')]
}

export function patchDriver() {
  const changed = []
  for (const file of driverFiles()) {
    const original = readFileSync(file, 'utf8')
    let text = original
    for (const edit of edits) {
      if (text.includes(edit.to)) continue // applied by this or an earlier install
      const at = text.indexOf(edit.from)
      if (at < 0 || text.indexOf(edit.from, at + 1) >= 0) {
        throw new Error(`${file} does not look like the postgres.js this patch was written for (${JSON.stringify(edit.from.split('\n')[0])}); see src/catalog/driver-patch.mjs`)
      }
      text = text.slice(0, at) + edit.to + text.slice(at + edit.from.length)
    }
    if (text === original) continue
    writeFileSync(file, text)
    changed.push(file)
  }
  return changed
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, ''))) {
  const changed = patchDriver()
  console.log(changed.length ? `blobfs: patched the catalog driver (${changed.length} files)` : 'blobfs: catalog driver already patched')
}

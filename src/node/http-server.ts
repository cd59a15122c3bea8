// The node's HTTP face (protocol.ts has the contract). Thin on purpose: it parses,
// bounds and maps; the store decides. Bodies are held in memory whole — a chunk is
// at most chunkSizeBytesMax — because a PUT must be verified before it is stored
// and a GET before its first byte leaves; the bytes held at once are bounded by
// nodeRequestBytesInFlightMax, past which requests get 503 SlowDown. PUT bodies and
// whole-chunk GETs use reused buffers (buffer-pool.ts).
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import { BlobfsError, errorCodeOf } from '../errors.ts'
import { checksumPageSizeBytes, chunkSizeBytesDefault, nodeBodyPoolBuffersMax, nodeRequestBytesInFlightMax, nodeWireHeaderBytesMax } from '../limits.ts'
import type { Logger } from '../log.ts'
import { pageCount } from '../codec/checksum.ts'
import type { BlockStore, ReadResult } from './block-store.ts'
import { BufferPool } from './buffer-pool.ts'
import { indexEntryBytes } from './chunk-index.ts'
import { chunkIdFromBytes, chunkIdToBytes, recordHeaderBytes } from './format.ts'
import type { NodeMetrics } from './metrics.ts'
import {
  chunkPathPrefix,
  decodePageCrcs,
  decodeRoot,
  encodePageCrcs,
  encodeRoot,
  healthPath,
  inventoryPath,
  metricsPath,
  parseRange,
  scrubPath,
  statusOf,
  wireHeaders,
} from './protocol.ts'

export interface NodeServerDeps {
  store: BlockStore
  metrics: NodeMetrics
  log: Logger
  health(): Record<string, unknown>
  scrubNow(): void
  /** Reused PUT body buffers (a pool of chunk-sized buffers unless given). */
  bodies?: BufferPool
  now?: () => number
}

/**
 * Capacity of a pooled body buffer: a whole record of a default-size chunk (its
 * header and payload), so that a GET of a whole chunk reads into one too, and a PUT
 * body of up to a chunk fits.
 */
export const bodyBufferBytes = chunkSizeBytesDefault + recordHeaderBytes(pageCount(chunkSizeBytesDefault))

/** Idle keep-alive sockets are kept this long (longer than clients keep them). */
export const serverKeepAliveMs = 65_000
const inventoryLinesPerWrite = 1024

export function createNodeServer(deps: NodeServerDeps): Server {
  const now = deps.now ?? Date.now
  let bytesInFlight = 0
  const bodies = deps.bodies ?? new BufferPool(bodyBufferBytes, nodeBodyPoolBuffersMax)

  async function withBytes<T>(bytes: number, fn: () => Promise<T>): Promise<T> {
    if (bytesInFlight + bytes > nodeRequestBytesInFlightMax) throw new BlobfsError('SlowDown', 'too many bytes in flight on this node; retry')
    bytesInFlight += bytes
    try {
      return await fn()
    } finally {
      bytesInFlight -= bytes
    }
  }

  /**
   * Reads the body into `body` (exactly its length). Plain 'data' events: an async
   * iterator costs a promise and a generator step per 64 KiB socket read.
   */
  function readBody(req: IncomingMessage, body: Buffer): Promise<void> {
    const length = body.length
    return new Promise((resolve, reject) => {
      let at = 0
      let settled = false
      const done = (error: BlobfsError | null) => {
        if (settled) return
        settled = true
        // The 'error' listener stays: a request that breaks later must not throw.
        req.off('data', onData)
        req.off('end', onEnd)
        req.off('close', onClose)
        if (error) reject(error)
        else resolve()
      }
      const onData = (piece: Buffer) => {
        if (at + piece.length > length) {
          req.pause()
          done(new BlobfsError('InvalidArgument', 'body is longer than content-length'))
          return
        }
        piece.copy(body, at)
        at += piece.length
      }
      const onEnd = () => done(at === length ? null : new BlobfsError('IncompleteBody', `body ended after ${at} of ${length} bytes`))
      const onError = (error: Error) => done(new BlobfsError('IncompleteBody', `body broke off after ${at} of ${length} bytes`, { cause: error }))
      const onClose = () => done(new BlobfsError('IncompleteBody', `connection closed after ${at} of ${length} bytes`))
      req.on('data', onData)
      req.on('end', onEnd)
      req.on('error', onError)
      req.on('close', onClose)
    })
  }

  async function putChunk(req: IncomingMessage, res: ServerResponse, id: Buffer): Promise<number> {
    const length = Number(req.headers['content-length'])
    if (req.headers['content-length'] === undefined || !Number.isSafeInteger(length) || length < 0) {
      throw new BlobfsError('InvalidArgument', 'PUT needs a content-length')
    }
    if (length > deps.store.chunkSizeBytesMax) throw new BlobfsError('EntityTooLarge', `chunk of ${length} bytes exceeds ${deps.store.chunkSizeBytesMax}`)
    const pageSize = req.headers[wireHeaders.pageSize]
    if (pageSize !== undefined && Number(pageSize) !== checksumPageSizeBytes) {
      throw new BlobfsError('InvalidArgument', `page size ${String(pageSize)} is not ${checksumPageSizeBytes}`)
    }
    if (deps.store.readOnly && !deps.store.head(id)) throw new BlobfsError('InsufficientStorage', 'storage node is read-only')
    const pageCrcs = decodePageCrcs(header(req, wireHeaders.pageCrcs))
    const root = decodeRoot(header(req, wireHeaders.root))
    return withBytes(length, async () => {
      const data = bodies.take(length)
      let outcome: 'created' | 'exists'
      try {
        await readBody(req, data)
        outcome = await deps.store.put(id, data, { lengthBytes: length, pageSizeBytes: checksumPageSizeBytes, pageCrcs, root })
      } finally {
        // Settled: the store wrote (and fdatasync'ed) the bytes or refused them, and keeps no reference.
        bodies.give(data)
      }
      const status = outcome === 'created' ? 201 : 200
      res.writeHead(status, { 'content-length': 0 }).end()
      return status
    })
  }

  async function getChunk(req: IncomingMessage, res: ServerResponse, id: Buffer, headOnly: boolean): Promise<number> {
    const info = deps.store.head(id)
    if (!info) throw new BlobfsError('ChunkNotFound', `chunk ${chunkIdFromBytes(id)} is not on this node`)
    if (headOnly) {
      res.writeHead(200, {
        'content-length': info.lengthBytes,
        [wireHeaders.length]: info.lengthBytes,
        [wireHeaders.root]: encodeRoot(info.root),
        [wireHeaders.ageMs]: Math.max(0, Math.round(now() - info.createdMs)),
        'accept-ranges': 'bytes',
      })
      res.end()
      return 200
    }
    const range = parseRange(header(req, 'range'), info.lengthBytes)
    if (range === 'unsatisfiable') {
      res.setHeader('content-range', `bytes */${info.lengthBytes}`)
      throw new BlobfsError('InvalidRange', `range ${String(req.headers.range)} is outside a chunk of ${info.lengthBytes} bytes`)
    }
    const spanBytes = (range?.lengthBytes ?? info.lengthBytes) + 2 * checksumPageSizeBytes
    return withBytes(spanBytes, async () => {
      // A whole-chunk read lands in a pooled buffer, given back once the response is
      // written ('finish': every byte handed to the kernel). A response that never
      // finishes (the client went away mid-write) leaves its buffer to the GC: a
      // socket may still hold it.
      let lent: Buffer | undefined
      let read: ReadResult
      try {
        read = await deps.store.read(id, range ?? undefined, (lengthBytes) => (lent = bodies.take(lengthBytes)))
      } catch (error) {
        if (lent) bodies.give(lent) // read() settled: nothing reads into it any more
        throw error
      }
      const status = range ? 206 : 200
      const headers: Record<string, string | number> = {
        'content-type': 'application/octet-stream',
        'content-length': read.data.length,
        'accept-ranges': 'bytes',
        [wireHeaders.length]: read.lengthBytes,
        [wireHeaders.root]: encodeRoot(read.root),
        [wireHeaders.firstPage]: read.span.firstPage,
        [wireHeaders.pageCrcs]: encodePageCrcs(read.pageCrcs),
      }
      if (range) headers['content-range'] = `bytes ${range.offsetBytes}-${range.offsetBytes + range.lengthBytes - 1}/${read.lengthBytes}`
      res.writeHead(status, headers)
      if (lent) {
        const buffer = lent
        res.once('finish', () => bodies.give(buffer))
      }
      res.end(read.data)
      return status
    })
  }

  async function inventory(res: ServerResponse): Promise<number> {
    const entries = deps.store.entriesSnapshot() // a consistent copy, streamed at the client's pace
    const at = now()
    res.writeHead(200, { 'content-type': 'application/x-ndjson' })
    let lines = ''
    let count = 0
    for (let offset = 0; offset < entries.length; offset += indexEntryBytes) {
      const id = chunkIdFromBytes(entries.subarray(offset, offset + 16))
      const lengthBytes = entries.readUInt32LE(offset + 24)
      const ageMs = Math.max(0, Math.round(at - entries.readDoubleLE(offset + 32)))
      lines += `{"chunkId":"${id}","lengthBytes":${lengthBytes},"ageMs":${ageMs}}\n`
      if (++count === inventoryLinesPerWrite) {
        if (res.destroyed) return 200
        if (!res.write(lines)) await once(res, 'drain')
        lines = ''
        count = 0
      }
    }
    res.end(lines)
    return 200
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<{ route: string; status: number }> {
    const url = req.url ?? '/'
    const path = url.split('?')[0]!
    const method = req.method ?? 'GET'
    if (path.startsWith(chunkPathPrefix)) {
      const id = chunkIdToBytes(path.slice(chunkPathPrefix.length)) // a UUID needs no percent-decoding
      switch (method) {
        case 'PUT':
          return { route: 'chunk', status: await putChunk(req, res, id) }
        case 'GET':
          return { route: 'chunk', status: await getChunk(req, res, id, false) }
        case 'HEAD':
          return { route: 'chunk', status: await getChunk(req, res, id, true) }
        case 'DELETE':
          await deps.store.delete(id)
          res.writeHead(204).end()
          return { route: 'chunk', status: 204 }
      }
      return { route: 'chunk', status: methodNotAllowed(res) }
    }
    if (path === inventoryPath && method === 'GET') return { route: 'inventory', status: await inventory(res) }
    if (path === scrubPath && method === 'POST') {
      deps.scrubNow()
      res.writeHead(202, { 'content-type': 'application/json' }).end('{"scrub":"started"}\n')
      return { route: 'scrub', status: 202 }
    }
    if (path === healthPath && method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(deps.health()) + '\n')
      return { route: 'health', status: 200 }
    }
    if (path === metricsPath && method === 'GET') {
      const text = await deps.metrics.registry.metrics()
      res.writeHead(200, { 'content-type': deps.metrics.registry.contentType }).end(text)
      return { route: 'metrics', status: 200 }
    }
    res.writeHead(404, { [wireHeaders.error]: 'InvalidArgument', 'content-type': 'application/json' }).end(`{"code":"InvalidArgument","message":"no route ${method} ${path}"}\n`)
    return { route: 'unknown', status: 404 }
  }

  const server = createServer({ keepAliveTimeout: serverKeepAliveMs, maxHeaderSize: 2 * nodeWireHeaderBytesMax }, (req, res) => {
    const started = performance.now()
    const method = req.method ?? 'GET'
    void route(req, res)
      .catch((error: unknown) => ({ route: 'chunk', status: answerError(req, res, error) }))
      .then(({ route, status }) => {
        deps.metrics.requests.inc({ method, route, status: String(status) })
        deps.metrics.requestSeconds.observe({ method, route }, (performance.now() - started) / 1000)
      })
  })
  server.headersTimeout = 60_000
  server.requestTimeout = 300_000

  function answerError(req: IncomingMessage, res: ServerResponse, error: unknown): number {
    const code = errorCodeOf(error)
    const status = statusOf(code)
    deps.metrics.errors.inc({ code })
    if (code === 'Internal') deps.log.error({ err: error, method: req.method, url: req.url }, 'request failed')
    else deps.log.debug({ code, method: req.method, url: req.url, message: (error as Error).message }, 'request refused')
    if (res.headersSent) {
      res.destroy()
      return status
    }
    // A body we did not read would be parsed as the next request: close instead.
    if (!req.complete) res.setHeader('connection', 'close')
    const body = req.method === 'HEAD' ? '' : JSON.stringify({ code, message: (error as Error).message }) + '\n'
    res.writeHead(status, { [wireHeaders.error]: code, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
    res.end(body)
    if (!req.complete) req.resume()
    return status
  }

  return server
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name]
  return Array.isArray(value) ? value[0] : value
}

function methodNotAllowed(res: ServerResponse): number {
  res.writeHead(405, { [wireHeaders.error]: 'NotSupported', 'content-type': 'application/json' }).end('{"code":"NotSupported","message":"method not allowed"}\n')
  return 405
}

// The ChunkStore over HTTP to real `blobfs node` processes (wire protocol:
// src/node/protocol.ts). One undici Pool per node (keep-alive, bounded
// connections, timeouts); idempotent calls retried with exponential backoff on
// network errors and 503 — PUT included, since the protocol makes it idempotent
// (same id + same bytes answers 200). Statuses map back to BlobfsError codes.
//
// Verification on this side too: range reads are widened to whole pages, and the
// node sends the CRCs of the pages it returns (x-blobfs-page-crcs), so every byte
// handed up has been checked against its page CRC here as well as on the node —
// the network, the node's memory and this process's buffers are covered. A mismatch
// found here is retried once (it happened in transit) and then is ChunkCorrupt.
import { setTimeout as sleep } from 'node:timers/promises'
import { StringDecoder } from 'node:string_decoder'
import { Pool, type Dispatcher } from 'undici'
import { rootOf, verifyPages, type ChecksumTree } from '../codec/checksum.ts'
import { BlobfsError, isBlobfsError, type ErrorCode } from '../errors.ts'
import { checksumPageSizeBytes } from '../limits.ts'
import {
  chunkPathPrefix,
  codeOfResponse,
  decodePageCrcs,
  decodeRoot,
  encodePageCrcs,
  encodeRoot,
  inventoryPath,
  wireHeaders,
} from '../node/protocol.ts'
import type { ByteRange, ChunkId, ChunkInfo, ChunkStore, InventoryEntry, NodeId } from './chunk-store.ts'

export interface HttpChunkStoreOptions {
  /** NodeId -> base URL (http://host:port), e.g. from the catalog's node registry. */
  resolve(node: NodeId): string | Promise<string>
  connectionsPerNode?: number
  connectTimeoutMs?: number
  /** Bound on waiting for response headers, and for each gap in a body. */
  requestTimeoutMs?: number
  retriesMax?: number
  retryBackoffMsMin?: number
}

export const httpStoreDefaults = {
  connectionsPerNode: 16,
  connectTimeoutMs: 5_000,
  requestTimeoutMs: 30_000,
  retriesMax: 3,
  retryBackoffMsMin: 50,
  keepAliveMs: 30_000,
} as const

const retryBackoffMsMax = 2_000
const retryableStatuses = new Set([502, 503, 504])

interface Attempt {
  statusCode: number
  headers: Record<string, string | string[] | undefined>
  body: Dispatcher.ResponseData['body']
}

export class HttpChunkStore implements ChunkStore {
  private readonly pools = new Map<string, Pool>()
  private readonly settings: Required<Omit<HttpChunkStoreOptions, 'resolve'>>

  constructor(private readonly options: HttpChunkStoreOptions) {
    this.settings = {
      connectionsPerNode: options.connectionsPerNode ?? httpStoreDefaults.connectionsPerNode,
      connectTimeoutMs: options.connectTimeoutMs ?? httpStoreDefaults.connectTimeoutMs,
      requestTimeoutMs: options.requestTimeoutMs ?? httpStoreDefaults.requestTimeoutMs,
      retriesMax: options.retriesMax ?? httpStoreDefaults.retriesMax,
      retryBackoffMsMin: options.retryBackoffMsMin ?? httpStoreDefaults.retryBackoffMsMin,
    }
  }

  async put(node: NodeId, chunkId: ChunkId, data: Buffer, tree: ChecksumTree, signal?: AbortSignal): Promise<void> {
    if (tree.pageSizeBytes !== checksumPageSizeBytes) throw new BlobfsError('InvalidArgument', `page size ${tree.pageSizeBytes} is not ${checksumPageSizeBytes}`)
    const headers = {
      'content-type': 'application/octet-stream',
      [wireHeaders.pageCrcs]: encodePageCrcs(tree.pageCrcs),
      [wireHeaders.root]: encodeRoot(tree.root),
      [wireHeaders.pageSize]: String(tree.pageSizeBytes),
    }
    await this.call(node, { method: 'PUT', path: chunkPath(chunkId), headers, body: data, signal }, async (r) => {
      await r.body.dump()
      if (r.statusCode !== 200 && r.statusCode !== 201) throw await errorOf(r, node, chunkId)
    })
  }

  async get(node: NodeId, chunkId: ChunkId, range?: ByteRange, signal?: AbortSignal): Promise<Buffer> {
    if (range) {
      if (!Number.isSafeInteger(range.offsetBytes) || !Number.isSafeInteger(range.lengthBytes) || range.offsetBytes < 0 || range.lengthBytes < 0) {
        throw new BlobfsError('InvalidRange', `range ${range.offsetBytes}+${range.lengthBytes} is malformed`)
      }
      if (range.lengthBytes === 0) {
        const info = await this.head(node, chunkId, signal)
        if (!info) throw new BlobfsError('ChunkNotFound', `chunk ${chunkId} is not on ${node}`)
        if (range.offsetBytes > info.lengthBytes) throw new BlobfsError('InvalidRange', `offset ${range.offsetBytes} is past a chunk of ${info.lengthBytes} bytes`)
        return Buffer.alloc(0)
      }
    }
    // Whole pages, so they can be verified here.
    const pageStart = range ? Math.floor(range.offsetBytes / checksumPageSizeBytes) * checksumPageSizeBytes : 0
    const pageEnd = range ? Math.ceil((range.offsetBytes + range.lengthBytes) / checksumPageSizeBytes) * checksumPageSizeBytes : 0
    const headers: Record<string, string> = range ? { range: `bytes=${pageStart}-${pageEnd - 1}` } : {}
    return this.call(node, { method: 'GET', path: chunkPath(chunkId), headers, signal }, async (r) => {
      if (r.statusCode !== 200 && r.statusCode !== 206) {
        await r.body.dump()
        throw await errorOf(r, node, chunkId)
      }
      // The headers say how long the body must be: it is read into one buffer of that
      // length as it arrives (no list of socket pieces joined at the end).
      let total: number, root: number, firstPage: number, pageCrcs: Uint32Array
      try {
        total = Number(single(r.headers[wireHeaders.length]))
        root = decodeRoot(single(r.headers[wireHeaders.root]))
        firstPage = Number(single(r.headers[wireHeaders.firstPage]))
        pageCrcs = decodePageCrcs(single(r.headers[wireHeaders.pageCrcs]))
        if (!Number.isSafeInteger(total) || total < 0) throw new BlobfsError('Internal', `node ${node} sent no chunk length`)
        if (range && range.offsetBytes + range.lengthBytes > total) {
          throw new BlobfsError('InvalidRange', `range ${range.offsetBytes}+${range.lengthBytes} is outside a chunk of ${total} bytes`)
        }
      } catch (error) {
        r.body.destroy()
        throw error
      }
      const expectedLength = range ? Math.min(pageEnd, total) - pageStart : total
      const declared = Number(single(r.headers['content-length']))
      if (firstPage * checksumPageSizeBytes !== pageStart || declared !== expectedLength) {
        r.body.destroy()
        throw new TransitCorruption(`chunk ${chunkId} from ${node}: ${declared} bytes from page ${firstPage}, expected ${expectedLength} from byte ${pageStart}`)
      }
      const body = await readExactly(r.body, expectedLength)
      if (body === null) throw new TransitCorruption(`chunk ${chunkId} from ${node}: the body was not the ${expectedLength} bytes its headers announced`)
      if (!range && rootOf(pageCrcs) !== root) throw new TransitCorruption(`chunk ${chunkId} from ${node}: page CRCs do not match the root`)
      try {
        verifyPages(body, 0, pageCrcs)
      } catch (error) {
        throw new TransitCorruption(`chunk ${chunkId} from ${node}: ${(error as Error).message}`)
      }
      return range ? body.subarray(range.offsetBytes - pageStart, range.offsetBytes - pageStart + range.lengthBytes) : body
    })
  }

  async head(node: NodeId, chunkId: ChunkId, signal?: AbortSignal): Promise<ChunkInfo | null> {
    return this.call(node, { method: 'HEAD', path: chunkPath(chunkId), signal }, async (r) => {
      await r.body.dump()
      if (r.statusCode === 404) return null
      if (r.statusCode !== 200) throw await errorOf(r, node, chunkId)
      return { lengthBytes: Number(single(r.headers[wireHeaders.length])), root: decodeRoot(single(r.headers[wireHeaders.root])) }
    })
  }

  async delete(node: NodeId, chunkId: ChunkId, signal?: AbortSignal): Promise<void> {
    await this.call(node, { method: 'DELETE', path: chunkPath(chunkId), signal }, async (r) => {
      await r.body.dump()
      if (r.statusCode !== 204 && r.statusCode !== 200) throw await errorOf(r, node, chunkId)
    })
  }

  async *inventory(node: NodeId, signal?: AbortSignal): AsyncIterable<InventoryEntry> {
    // Retried until the first byte; a stream cut midway fails (the sweep starts over).
    const r = await this.call(node, { method: 'GET', path: inventoryPath, signal }, async (attempt) => {
      if (attempt.statusCode !== 200) {
        await attempt.body.dump()
        throw await errorOf(attempt, node, undefined)
      }
      return attempt
    })
    const decoder = new StringDecoder('utf8')
    let rest = ''
    try {
      for await (const piece of r.body) {
        rest += decoder.write(piece as Buffer)
        let newline = rest.indexOf('\n')
        while (newline >= 0) {
          const line = rest.slice(0, newline)
          rest = rest.slice(newline + 1)
          if (line.length > 0) yield parseInventoryLine(line, node)
          newline = rest.indexOf('\n')
        }
      }
    } catch (error) {
      if (isBlobfsError(error)) throw error
      throw new BlobfsError('NodeUnavailable', `inventory stream from ${node} broke`, { cause: error })
    }
    rest += decoder.end()
    if (rest.trim().length > 0) yield parseInventoryLine(rest, node)
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()]
    this.pools.clear()
    await Promise.all(pools.map((p) => p.close()))
  }

  /** One request with retries; `handle` consumes the response (and may throw TransitCorruption to retry). */
  private async call<T>(
    node: NodeId,
    request: { method: Dispatcher.HttpMethod; path: string; headers?: Record<string, string>; body?: Buffer; signal?: AbortSignal | undefined },
    handle: (r: Attempt) => Promise<T>,
  ): Promise<T> {
    let transitRetried = false
    for (let attempt = 0; ; attempt++) {
      const base = new URL(await this.options.resolve(node))
      const pool = this.pool(base.origin)
      let response: Attempt
      try {
        response = await pool.request({
          method: request.method,
          path: base.pathname.replace(/\/$/, '') + request.path,
          headers: request.headers,
          body: request.body,
          signal: request.signal,
        })
      } catch (error) {
        if (request.signal?.aborted) throw error
        if (attempt < this.settings.retriesMax) {
          await this.backoff(attempt, request.signal)
          continue
        }
        throw new BlobfsError('NodeUnavailable', `node ${node} at ${base.origin} did not answer ${request.method} ${request.path}`, { cause: error })
      }
      if (retryableStatuses.has(response.statusCode) && attempt < this.settings.retriesMax) {
        await response.body.dump()
        await this.backoff(attempt, request.signal)
        continue
      }
      try {
        return await handle(response)
      } catch (error) {
        if (error instanceof TransitCorruption && !transitRetried) {
          transitRetried = true
          continue
        }
        if (error instanceof TransitCorruption) throw new BlobfsError('ChunkCorrupt', error.message)
        if (isBlobfsError(error) || request.signal?.aborted) throw error
        throw new BlobfsError('NodeUnavailable', `response from ${node} broke off`, { cause: error })
      }
    }
  }

  private async backoff(attempt: number, signal?: AbortSignal): Promise<void> {
    const ceiling = Math.min(retryBackoffMsMax, this.settings.retryBackoffMsMin * 2 ** attempt)
    await sleep(ceiling / 2 + Math.random() * (ceiling / 2), undefined, signal ? { signal } : {})
  }

  private pool(origin: string): Pool {
    let pool = this.pools.get(origin)
    if (!pool) {
      pool = new Pool(origin, {
        connections: this.settings.connectionsPerNode,
        connectTimeout: this.settings.connectTimeoutMs,
        headersTimeout: this.settings.requestTimeoutMs,
        bodyTimeout: this.settings.requestTimeoutMs,
        keepAliveTimeout: httpStoreDefaults.keepAliveMs,
      })
      this.pools.set(origin, pool)
    }
    return pool
  }
}

/**
 * The body, read into one buffer of `length` bytes as it arrives; null when it is
 * longer or shorter than that (a stream that breaks off rejects: a network failure,
 * not corruption).
 */
function readExactly(body: Dispatcher.ResponseData['body'], length: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const out = Buffer.allocUnsafe(length)
    let at = 0
    let settled = false
    const settle = (result: Buffer | null, error?: unknown) => {
      if (settled) return
      settled = true
      body.off('data', onData)
      if (error !== undefined) reject(error)
      else resolve(result)
    }
    const onData = (piece: Buffer) => {
      if (at + piece.length > length) {
        body.destroy()
        settle(null)
        return
      }
      piece.copy(out, at)
      at += piece.length
    }
    body.on('data', onData)
    body.once('end', () => settle(at === length ? out : null))
    body.on('error', (error) => settle(null, error)) // stays: a later error must not go unhandled
    body.once('close', () => settle(null, new Error(`the body stopped after ${at} of ${length} bytes`))) // after 'end', a no-op
  })
}

/** Bytes that failed verification on this side: retried once, then ChunkCorrupt. */
class TransitCorruption extends Error {}

function chunkPath(chunkId: ChunkId): string {
  return chunkPathPrefix + encodeURIComponent(chunkId)
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

async function errorOf(r: Attempt, node: NodeId, chunkId: ChunkId | undefined): Promise<BlobfsError> {
  const code: ErrorCode = codeOfResponse(r.statusCode, single(r.headers[wireHeaders.error]))
  return new BlobfsError(code, `node ${node}${chunkId ? `, chunk ${chunkId}` : ''}: HTTP ${r.statusCode} ${code}`)
}

function parseInventoryLine(line: string, node: NodeId): InventoryEntry {
  let parsed: { chunkId?: unknown; lengthBytes?: unknown; ageMs?: unknown }
  try {
    parsed = JSON.parse(line) as typeof parsed
  } catch (error) {
    throw new BlobfsError('Internal', `node ${node} sent a malformed inventory line`, { cause: error })
  }
  if (typeof parsed.chunkId !== 'string' || typeof parsed.lengthBytes !== 'number' || typeof parsed.ageMs !== 'number') {
    throw new BlobfsError('Internal', `node ${node} sent an inventory line without chunkId, lengthBytes and ageMs`)
  }
  return { chunkId: parsed.chunkId, lengthBytes: parsed.lengthBytes, ageMs: parsed.ageMs }
}

// The embedded catalog: PGlite (PostgreSQL compiled to WebAssembly, in this
// process) stored in <data-dir>/catalog and served on a loopback port through
// @electric-sql/pglite-socket, so every blobfs process — nodes, gateway, mount —
// reaches it with the same postgres client and the same SQL as a CockroachDB or
// PostgreSQL catalog. `blobfs up` starts it; a `postgres://` URL replaces it.
//
// PGlite is ONE database session. pglite-socket lets many clients connect (up to
// maxConnections) and funnels their protocol messages into that session, but its
// own queue only keeps a client's messages together inside an explicit
// transaction: outside one, two clients' extended-protocol messages interleave
// (client A's Parse, then B's Parse replacing A's unnamed statement, then A's
// Bind...), and an error in one client's implicit transaction makes the session
// skip the other client's messages until a Sync. We measured both with the stock
// queue. So this module gives pglite-socket a scheduler of its own (the handler's
// queue interface: enqueue, clearQueueForHandler, clearTransactionIfNeeded) that
// hands the session to one client at a time for a whole unit of work: from the
// client's first message until a Sync or simple Query after which the session is
// idle again (so an explicit transaction keeps it to its COMMIT or ROLLBACK).
// Other clients wait their turn; nothing interleaves. Consequences, by design:
//
// - Transactions are executed one at a time: SERIALIZABLE holds trivially and
//   40001 never happens. Throughput is that of one core running WebAssembly —
//   fine for a single-machine cluster (see docs/benchmarks.md), and the reason a
//   bigger cluster points every process at CockroachDB or PostgreSQL instead.
// - A client that holds the session and goes quiet stalls everyone, so a holder
//   silent for `sessionHoldMsMax` is disconnected, and a client that disconnects
//   mid-transaction is rolled back (its Sync and ROLLBACK are sent for it).
// - Named prepared statements live in the shared session. postgres.js names them
//   uniquely per connection, so clients do not collide; the scheduler remembers
//   which client prepared what and closes those statements when the client goes,
//   so they do not pile up as connections come and go.
// - Session settings (SET ...) would leak between clients; blobfs issues none.
// - There is no authentication: the port is bound to loopback only.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { PGLiteSocketHandler, type PGLiteSocketHandlerOptions } from '@electric-sql/pglite-socket'
import { BlobfsError } from '../errors.ts'
import { embeddedCheckpointIntervalMs, embeddedConnectionsMax, embeddedSessionHoldMsMax } from '../limits.ts'
import { logger } from '../log.ts'
import { Db } from './db.ts'
import { migrate } from './migrations.ts'
import { openDurablePGlite, type SyncCounter } from './pglite-durable.ts'

const log = logger('catalog')

export interface EmbeddedCatalogOptions {
  /** The blobfs data directory: the database lives in <dataDir>/catalog. Omitted: in memory (tests). */
  dataDir?: string
  /** Loopback address to listen on. */
  host?: string
  /** 0 (default) picks a free port; the URL says which. */
  port?: number
  connectionsMax?: number
  sessionHoldMsMax?: number
  /** Apply migrations before returning (default true). */
  migrate?: boolean
  /** Serve this PGlite instance instead of opening one (tests clone a template); stop() closes it. */
  database?: PGlite
  /** How often a catalog on disk is checkpointed (tests shorten it). */
  checkpointIntervalMs?: number
}

export interface EmbeddedCatalogStats {
  connections: number
  queuedMessages: number
  /** Units of work (statements or transactions) executed so far. */
  units: number
  /** Clients disconnected for holding the session too long. */
  stalledClients: number
  /** fsync calls the database made to its files on disk (a commit makes one; in memory: none). */
  fileSyncs: number
  /** Checkpoints run by the timer (on disk only). */
  checkpoints: number
}

export interface EmbeddedCatalog {
  /** postgres://postgres@127.0.0.1:<port>/postgres — hand it to openCatalog and to child processes. */
  readonly url: string
  readonly port: number
  stats(): EmbeddedCatalogStats
  /** Disconnects every client (rolling back what they had open), closes the database, removes the lock. */
  stop(): Promise<void>
}

/** Where `blobfs up` writes the running catalog's URL, for commands given --data DIR. */
export function catalogUrlFile(dataDir: string): string {
  return join(dataDir, 'catalog.url')
}

/** The URL of the embedded catalog serving `dataDir`, or null if none is running. */
export function runningCatalogUrl(dataDir: string): string | null {
  const file = catalogUrlFile(dataDir)
  const lock = join(dataDir, 'catalog.lock')
  if (!existsSync(file) || !existsSync(lock)) return null
  const pid = Number(readFileSync(lock, 'utf8').trim())
  if (!isAlive(pid)) return null
  return readFileSync(file, 'utf8').trim()
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** One process may own a data directory's catalog; a lock file names it (stale locks are taken over). */
function acquireLock(dataDir: string): () => void {
  const lock = join(dataDir, 'catalog.lock')
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lock, 'wx')
      writeSync(fd, `${process.pid}\n`)
      closeSync(fd)
      return () => rmSync(lock, { force: true })
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      const owner = Number(readFileSync(lock, 'utf8').trim())
      if (isAlive(owner)) {
        throw new BlobfsError('AlreadyExists', `the catalog in ${dataDir} is served by process ${owner}; use its URL (${catalogUrlFile(dataDir)})`)
      }
      rmSync(lock, { force: true })
    }
  }
  throw new BlobfsError('Internal', `could not lock ${lock}`)
}

// Frontend message types (PostgreSQL protocol 3.0).
const PARSE = 0x50 // 'P'
const BIND = 0x42 // 'B'
const DESCRIBE = 0x44 // 'D'
const EXECUTE = 0x45 // 'E'
const CLOSE = 0x43 // 'C'
const SYNC = 0x53 // 'S'
const QUERY = 0x51 // 'Q'
const TERMINATE = 0x58 // 'X'
const protocolVersion3 = 196608
const syncMessage = new Uint8Array([SYNC, 0, 0, 0, 4])
/** The scheduler's client id for the embedded catalog's own checkpoints (socket clients' ids are positive). */
const checkpointHandlerId = -1
/**
 * Extended-protocol messages whose replies PostgreSQL keeps in its output buffer
 * until a Sync, a Flush or a simple Query: the scheduler holds them the same way, so
 * a statement (Parse, Bind, Describe, Execute, Sync) is answered in one socket write
 * instead of five (one TCP segment, one wake-up of the client). Inside a transaction
 * the replies up to a Sync are held too, until the client's messages that are already
 * here have run: a transaction the client pipelined (BEGIN to COMMIT sent unprompted)
 * is answered in one write, and one that waits on each answer gets it once nothing of
 * its own is left to run.
 */
const heldReplyTypes = new Set([PARSE, BIND, DESCRIBE, EXECUTE, CLOSE])

function simpleQuery(text: string): Uint8Array {
  const body = Buffer.from(`${text}\0`, 'utf8')
  const message = Buffer.alloc(5 + body.length)
  message[0] = QUERY
  message.writeInt32BE(4 + body.length, 1)
  body.copy(message, 5)
  return message
}

/** Close (statement `name`): frees a prepared statement of a departed client. */
function closeStatement(name: string): Uint8Array {
  const body = Buffer.from(`S${name}\0`, 'utf8')
  const message = Buffer.alloc(5 + body.length)
  message[0] = CLOSE
  message.writeInt32BE(4 + body.length, 1)
  body.copy(message, 5)
  return message
}

/** The statement name of a Parse message ('' for the unnamed statement). */
function parsedName(message: Uint8Array): string {
  const end = message.indexOf(0, 5)
  return end < 0 ? '' : Buffer.from(message.buffer, message.byteOffset + 5, end - 5).toString('utf8')
}

function isStartup(message: Uint8Array): boolean {
  return message.length >= 8 && Buffer.from(message.buffer, message.byteOffset, message.byteLength).readInt32BE(4) === protocolVersion3
}

interface Pending {
  handlerId: number
  message: Uint8Array
  onData: (data: Uint8Array) => void
  resolve: (bytes: number) => void
  reject: (error: unknown) => void
}

/**
 * Gives the single PGlite session to one client at a time, for a whole unit of
 * work. Implements the queue interface PGLiteSocketHandler calls.
 */
class SessionScheduler {
  private queue: Pending[] = []
  private owner: number | null = null
  private running = false
  private holdTimer: NodeJS.Timeout | undefined
  private readonly closed = new Set<number>()
  private readonly statements = new Map<number, Set<string>>()
  private orphanStatements: string[] = []
  /** Replies held back per client (heldReplyTypes), with the latest writer to its socket. */
  private readonly held = new Map<number, { chunks: Buffer[]; onData: (data: Uint8Array) => void }>()
  units = 0
  stalled = 0

  constructor(
    private readonly db: PGlite,
    private readonly holdMsMax: number,
    private readonly disconnect: (handlerId: number) => void,
  ) {}

  get queued(): number {
    return this.queue.length
  }

  enqueue(handlerId: number, message: Uint8Array, onData: (data: Uint8Array) => void): Promise<number> {
    if (message.length > 0 && message[0] === TERMINATE) return Promise.resolve(0) // the session is not the client's to end
    if (message[0] === PARSE) {
      const name = parsedName(message)
      if (name !== '') {
        let names = this.statements.get(handlerId)
        if (!names) this.statements.set(handlerId, (names = new Set()))
        names.add(name)
      }
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ handlerId, message, onData, resolve, reject })
      void this.pump()
    })
  }

  clearQueueForHandler(handlerId: number): void {
    this.closed.add(handlerId)
    this.held.delete(handlerId)
    const names = this.statements.get(handlerId)
    if (names) this.orphanStatements.push(...names)
    this.statements.delete(handlerId)
    const mine = this.queue.filter((p) => p.handlerId === handlerId)
    this.queue = this.queue.filter((p) => p.handlerId !== handlerId)
    for (const p of mine) p.reject(new Error('client disconnected'))
  }

  async clearTransactionIfNeeded(handlerId: number): Promise<void> {
    this.closed.add(handlerId)
    await this.pump()
  }

  private async execute(message: Uint8Array, onData: (data: Uint8Array) => void): Promise<number> {
    let bytes = 0
    await this.db.runExclusive(() =>
      this.db.execProtocolRawStream(message, {
        onRawData: (data) => {
          bytes += data.length
          onData(data)
        },
      }),
    )
    return bytes
  }

  /**
   * Keeps a reply of `handlerId` until flushReplies (copied: PGlite may reuse the
   * memory it points into), at the latest until the messages already received have
   * run: they are fed in one after the other through promise jobs, and a tick queued
   * from one of those runs once they are all done.
   */
  private holdReply(handlerId: number, onData: (data: Uint8Array) => void, data: Uint8Array): void {
    let held = this.held.get(handlerId)
    if (!held) {
      const created = (held = { chunks: [], onData })
      this.held.set(handlerId, held)
      process.nextTick(() => {
        if (this.held.get(handlerId) === created) this.flushReplies(handlerId)
      })
    }
    held.onData = onData
    held.chunks.push(Buffer.from(data))
  }

  private flushReplies(handlerId: number): void {
    const held = this.held.get(handlerId)
    if (!held) return
    this.held.delete(handlerId)
    if (held.chunks.length > 0) held.onData(held.chunks.length === 1 ? held.chunks[0]! : Buffer.concat(held.chunks))
  }

  /** Ends whatever a departed owner left open: an extended-protocol sequence, a transaction. */
  private async releaseDeparted(handlerId: number): Promise<void> {
    const discard = () => {}
    await this.execute(syncMessage, discard)
    if (this.db.isInTransaction()) await this.execute(simpleQuery('ROLLBACK'), discard)
    log.debug({ handlerId }, 'released the catalog session left by a disconnected client')
  }

  private async pump(): Promise<void> {
    if (this.running) return
    this.running = true
    try {
      for (;;) {
        if (this.owner !== null && this.closed.has(this.owner)) {
          await this.releaseDeparted(this.owner)
          this.owner = null
        }
        // With no owner, a departed client can only matter again if its message is
        // executing right now — and then it is added back below, after this point.
        if (this.owner === null) this.closed.clear()
        if (this.owner === null && this.orphanStatements.length > 0) {
          const names = this.orphanStatements
          this.orphanStatements = []
          for (const name of names) await this.execute(closeStatement(name), () => {})
          await this.execute(syncMessage, () => {})
        }
        const index = this.owner === null ? (this.queue.length > 0 ? 0 : -1) : this.queue.findIndex((p) => p.handlerId === this.owner)
        if (index < 0) break
        const item = this.queue.splice(index, 1)[0]!
        clearTimeout(this.holdTimer)
        const type = item.message[0]
        try {
          const bytes = await this.execute(item.message, (data) => this.holdReply(item.handlerId, item.onData, data))
          const inTransaction = this.db.isInTransaction()
          if (!heldReplyTypes.has(type!) && !(inTransaction && (type === SYNC || type === QUERY))) this.flushReplies(item.handlerId)
          item.resolve(bytes)
        } catch (error) {
          this.flushReplies(item.handlerId)
          item.reject(error)
        }
        const endsUnit = isStartup(item.message) || type === SYNC || type === QUERY
        if (endsUnit && !this.db.isInTransaction()) {
          this.owner = null
          this.units++
        } else {
          this.owner = item.handlerId
        }
      }
      clearTimeout(this.holdTimer)
      if (this.owner !== null) {
        const holder = this.owner
        this.holdTimer = setTimeout(() => {
          if (this.owner !== holder) return
          this.stalled++
          log.warn({ handlerId: holder, holdMsMax: this.holdMsMax }, 'a catalog client held the session too long; disconnecting it')
          this.disconnect(holder)
        }, this.holdMsMax)
        this.holdTimer.unref()
      }
    } finally {
      this.running = false
    }
    // Work that arrived while the last item finished is picked up here.
    if (this.queue.some((p) => this.owner === null || p.handlerId === this.owner) || (this.owner !== null && this.closed.has(this.owner))) {
      await this.pump()
    }
  }

  stop(): void {
    clearTimeout(this.holdTimer)
    this.held.clear()
  }
}

/**
 * Starts PGlite on `dataDir` (or in memory) and serves it on a loopback port.
 * Returns once the server accepts connections and, unless `migrate: false`, the
 * schema is up to date.
 */
export async function startEmbeddedCatalog(options: EmbeddedCatalogOptions = {}): Promise<EmbeddedCatalog> {
  const host = options.host ?? '127.0.0.1'
  const connectionsMax = options.connectionsMax ?? embeddedConnectionsMax
  let unlock = () => {}
  let directory: string | undefined
  if (options.dataDir !== undefined) {
    mkdirSync(options.dataDir, { recursive: true })
    unlock = acquireLock(options.dataDir)
    directory = join(options.dataDir, 'catalog')
  }
  let db: PGlite
  const fileSyncs: SyncCounter = { syncs: 0 }
  try {
    db = options.database ?? (directory === undefined ? await PGlite.create() : await openDurablePGlite(directory, fileSyncs))
  } catch (error) {
    unlock()
    throw new BlobfsError('CatalogUnavailable', `could not open the embedded catalog${directory ? ` in ${directory}` : ''}: ${(error as Error).message}`, { cause: error })
  }

  const clients = new Map<number, { handler: PGLiteSocketHandler; socket: Socket }>()
  const scheduler = new SessionScheduler(db, options.sessionHoldMsMax ?? embeddedSessionHoldMsMax, (handlerId) => {
    clients.get(handlerId)?.socket.destroy()
  })
  const server: Server = createServer((socket) => {
    if (clients.size >= connectionsMax) {
      log.warn({ connectionsMax }, 'embedded catalog connection refused: too many clients')
      socket.destroy()
      return
    }
    const handler = new PGLiteSocketHandler({
      queryQueue: scheduler as unknown as PGLiteSocketHandlerOptions['queryQueue'],
      closeOnDetach: true,
    })
    clients.set(handler.handlerId, { handler, socket })
    const forget = () => clients.delete(handler.handlerId)
    handler.addEventListener('close', forget)
    handler.addEventListener('error', forget)
    handler.attach(socket).catch((error) => {
      log.warn({ err: error }, 'embedded catalog could not attach a client')
      forget()
      socket.destroy()
    })
  })
  server.maxConnections = connectionsMax
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(options.port ?? 0, host, () => resolve())
    })
  } catch (error) {
    await db.close().catch(() => {})
    unlock()
    throw new BlobfsError('CatalogUnavailable', `the embedded catalog could not listen on ${host}:${options.port ?? 0}: ${(error as Error).message}`, { cause: error })
  }
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const url = `postgres://postgres@${host}:${port}/postgres`

  // PGlite runs PostgreSQL in single-user mode, where nothing checkpoints but a shutdown:
  // the WAL would grow for as long as the process lives, and a start after a crash would
  // replay all of it. A CHECKPOINT goes through the scheduler like a client's statement.
  let checkpoints = 0
  const checkpointer =
    directory === undefined
      ? undefined
      : setInterval(() => {
          scheduler.enqueue(checkpointHandlerId, simpleQuery('CHECKPOINT'), () => {}).then(
            () => checkpoints++,
            (error: unknown) => log.warn({ err: error }, 'embedded catalog checkpoint failed'),
          )
        }, options.checkpointIntervalMs ?? embeddedCheckpointIntervalMs)
  checkpointer?.unref()

  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    clearInterval(checkpointer)
    const closing = new Promise<void>((resolve) => server.close(() => resolve()))
    for (const { socket } of clients.values()) socket.destroy()
    await closing
    // Let the handlers' detach (rollback of what they left open) run before closing.
    for (let i = 0; i < 100 && (clients.size > 0 || scheduler.queued > 0); i++) await new Promise((r) => setTimeout(r, 10))
    scheduler.stop()
    await db.close()
    if (options.dataDir !== undefined) rmSync(catalogUrlFile(options.dataDir), { force: true })
    unlock()
  }

  try {
    if (options.migrate !== false) {
      const admin = new Db({ url, connectionsMax: 1 })
      try {
        await migrate(admin)
      } finally {
        await admin.close()
      }
    }
    if (options.dataDir !== undefined) writeFileSync(catalogUrlFile(options.dataDir), `${url}\n`)
  } catch (error) {
    await stop()
    throw error
  }
  log.debug({ url, dataDir: options.dataDir ?? null }, 'embedded catalog ready')
  return {
    url,
    port,
    stats: () => ({ connections: clients.size, queuedMessages: scheduler.queued, units: scheduler.units, stalledClients: scheduler.stalled, fileSyncs: fileSyncs.syncs, checkpoints }),
    stop,
  }
}

// The one door to the catalog database: a postgres.js pool, the transaction helper
// every query goes through, and the mapping of driver errors to BlobfsError codes.
//
// Every transaction is SERIALIZABLE (CockroachDB runs nothing weaker by default, and
// PostgreSQL then gives the same guarantees); the one write outside a transaction is
// `alone`'s single-row insert (see there). Concurrent writers may be told to
// retry with SQLSTATE 40001 (or 40P01 on a deadlock). The helper re-runs the whole
// callback with jittered exponential backoff, a bounded number of times, then gives
// up with SerializationFailure. A callback must therefore do nothing but SQL: it may
// run more than once. Failing to reach the database is CatalogUnavailable, with the
// driver's error as the cause, and is never retried here (a COMMIT that lost its
// connection may or may not have happened; the caller decides).
import { setTimeout as sleep } from 'node:timers/promises'
import postgres from 'postgres'
import { BlobfsError, isBlobfsError } from '../errors.ts'
import {
  catalogConnectionsPerProcessDefault,
  catalogConnectTimeoutMsDefault,
  catalogTxBackoffMsBase,
  catalogTxBackoffMsMax,
  catalogTxTriesMax,
} from '../limits.ts'

/** Column values as the catalog reads them: every INT8 arrives as a bigint. */
export type Types = { bigint: bigint }
export type Sql = postgres.Sql<Types>
export type TxSql = postgres.TransactionSql<Types>
/** What a query function receives: the pool for one statement, or a transaction. */
export type Queryable = Sql | TxSql

export interface DbOptions {
  /** postgres://user:password@host:port/database?sslmode=... (CockroachDB, PostgreSQL, or the embedded catalog). */
  url: string
  /** Pool size of this process. */
  connectionsMax?: number
  connectTimeoutMs?: number
  /** Called with the text of every statement sent (the SQL audit test uses it). */
  onStatement?: (statement: string) => void
  /** Overrides the retry bound (tests). */
  txTriesMax?: number
  applicationName?: string
}

export interface TxStats {
  /** Transactions committed or failed, and how many attempts were retried on 40001/40P01. */
  transactions: number
  retries: number
  serializationFailures: number
}

const retryableSqlStates = new Set(['40001', '40P01'])

/** SQLSTATE of a foreign key violation: a row's parent (a bucket, an upload) is not there, or a parent being deleted still has rows. */
export const foreignKeyViolation = '23503'

// Errors that mean "the database is not there": the driver's own codes, the
// socket's, and the server saying it is shutting down or full.
const unavailableCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
])

function codeOf(error: unknown): string | undefined {
  if (error === null || typeof error !== 'object') return undefined
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string') return code
  // Node's happy-eyeballs connect reports an AggregateError whose parts carry the code.
  const inner = (error as { errors?: unknown[] }).errors
  return Array.isArray(inner) && inner.length > 0 ? codeOf(inner[0]) : undefined
}

export function sqlStateOf(error: unknown): string | undefined {
  return error instanceof postgres.PostgresError ? error.code : undefined
}

export function isRetryable(error: unknown): boolean {
  const state = sqlStateOf(error)
  return state !== undefined && retryableSqlStates.has(state)
}

export function isUnavailable(error: unknown): boolean {
  const code = codeOf(error)
  return code !== undefined && (unavailableCodes.has(code) || code.startsWith('08'))
}

/** Maps anything a query can throw to a BlobfsError (BlobfsErrors pass through). */
export function toBlobfsError(error: unknown): BlobfsError {
  if (isBlobfsError(error)) return error
  if (isUnavailable(error)) {
    return new BlobfsError('CatalogUnavailable', `catalog database is unreachable: ${(error as Error).message ?? error}`, { cause: error })
  }
  if (isRetryable(error)) return new BlobfsError('SerializationFailure', undefined, { cause: error })
  const state = sqlStateOf(error)
  const detail = state ? `SQLSTATE ${state}: ` : ''
  return new BlobfsError('Internal', `catalog query failed: ${detail}${(error as Error)?.message ?? error}`, { cause: error })
}

function backoffMs(attempt: number): number {
  const ceiling = Math.min(catalogTxBackoffMsMax, catalogTxBackoffMsBase * 2 ** attempt)
  return Math.random() * ceiling // "full jitter": contenders spread out instead of colliding again
}

export class Db {
  readonly sql: Sql
  readonly stats: TxStats = { transactions: 0, retries: 0, serializationFailures: 0 }
  private readonly txTriesMax: number

  constructor(options: DbOptions) {
    this.txTriesMax = options.txTriesMax ?? catalogTxTriesMax
    this.sql = postgres(options.url, {
      max: options.connectionsMax ?? catalogConnectionsPerProcessDefault,
      connect_timeout: Math.ceil((options.connectTimeoutMs ?? catalogConnectTimeoutMsDefault) / 1000),
      idle_timeout: 60,
      onnotice: () => {},
      types: { bigint: postgres.BigInt },
      connection: { application_name: options.applicationName ?? 'blobfs' },
      ...(options.onStatement ? { debug: (_connection: number, statement: string) => options.onStatement!(statement) } : {}),
    })
  }

  /**
   * Runs `fn` in one SERIALIZABLE transaction, retried on serialization failures.
   * `fn` may run several times; it must not have effects outside the database.
   */
  async tx<T>(fn: (tx: TxSql) => Promise<T>): Promise<T> {
    return this.retried(async () => (await this.sql.begin('isolation level serializable', fn)) as T)
  }

  /**
   * Runs one attempt of a SERIALIZABLE transaction, again after a backoff while it
   * fails with a retryable error (at most txTriesMax attempts), then SerializationFailure;
   * any other error is mapped by toBlobfsError. Counts every transaction once.
   */
  private async retried<T>(attempt: () => Promise<T>): Promise<T> {
    for (let tries = 1; ; tries++) {
      try {
        const result = await attempt()
        this.stats.transactions++
        return result
      } catch (error) {
        if (isRetryable(error) && tries < this.txTriesMax) {
          this.stats.retries++
          await sleep(backoffMs(tries))
          continue
        }
        this.stats.transactions++
        if (isRetryable(error)) {
          this.stats.serializationFailures++
          throw new BlobfsError('SerializationFailure', `transaction conflicted ${tries} times in a row`, { cause: error })
        }
        throw toBlobfsError(error)
      }
    }
  }

  /**
   * Runs one writing statement on its own, outside an explicit transaction: the
   * database commits it at once (an implicit transaction), one round trip and no
   * BEGIN or COMMIT to parse. `statement` issues exactly one statement. Only for a
   * statement whose whole effect is checked by locks at any isolation level: a
   * single-row INSERT ... ON CONFLICT DO NOTHING, whose existence check is the unique
   * index and whose parent check is the foreign key. CockroachDB runs it SERIALIZABLE
   * anyway; PostgreSQL at the session's default, so a SERIALIZABLE transaction that
   * read the key's or the bucket's absence before it committed is not told to retry
   * (Buckets.delete takes the foreign key's answer for BucketNotEmpty); the embedded
   * catalog runs one client's work at a time. Retried like `tx` on 40001/40P01 (a
   * statement that failed had no effect); other errors are mapped like `tx`'s, so the
   * caller turns the ones that mean something to it (a foreign key violation) into
   * BlobfsErrors inside `statement`.
   */
  async alone<T>(statement: (sql: Sql) => Promise<T>): Promise<T> {
    return this.retried(() => statement(this.sql))
  }

  /**
   * Runs a read-only statement outside an explicit transaction (one statement sees
   * one consistent snapshot at any isolation level). Anything that writes goes
   * through `tx`, so it is SERIALIZABLE whatever the session default is, except the
   * single-row insert `alone` sends.
   * A statement that failed with 40001 had no effect, so it is retried like `tx`.
   */
  async read<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(this.sql)
      } catch (error) {
        if (isRetryable(error) && attempt < this.txTriesMax) {
          this.stats.retries++
          await sleep(backoffMs(attempt))
          continue
        }
        throw toBlobfsError(error)
      }
    }
  }

  async close(timeoutMs = 5000): Promise<void> {
    await this.sql.end({ timeout: timeoutMs / 1000 })
  }
}

/** A bigint column value as a number, asserting it is exact (sizes, offsets, counts). */
export function toNumber(value: bigint | number | string): number {
  const n = typeof value === 'bigint' ? Number(value) : Number(value)
  if (!Number.isSafeInteger(n)) throw new BlobfsError('Internal', `catalog value ${value} does not fit a JavaScript number`)
  return n
}

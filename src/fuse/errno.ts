// The one table from BlobfsError codes to errno (STYLE.md item 3), and the error
// type the FUSE semantics layer throws: every failure carries its errno, a message
// and its cause. The adapter turns any thrown value into an FsError here, logs it,
// counts it and replies with it — in one function (adapter.ts, `fail`).
import { constants } from 'node:os'
import { BlobfsError, type ErrorCode } from '../errors.ts'

export const errno = constants.errno

/** Total over ErrorCode: adding a code to src/errors.ts without a row here fails the build. */
export const errnoByCode: Readonly<Record<ErrorCode, number>> = Object.freeze({
  // input
  InvalidArgument: errno.EINVAL,
  InvalidBucketName: errno.EINVAL,
  KeyTooLong: errno.ENAMETOOLONG,
  EntityTooLarge: errno.EFBIG,
  EntityTooSmall: errno.EINVAL,
  InvalidRange: errno.EINVAL,
  BadDigest: errno.EIO,
  IncompleteBody: errno.EIO,
  // namespace
  NoSuchBucket: errno.ENOENT,
  NoSuchKey: errno.ENOENT,
  BucketAlreadyExists: errno.EEXIST,
  BucketNotEmpty: errno.ENOTEMPTY,
  NoSuchUpload: errno.ENOENT,
  InvalidPart: errno.EINVAL,
  InvalidPartOrder: errno.EINVAL,
  PreconditionFailed: errno.EEXIST,
  NotModified: errno.EIO,
  AlreadyExists: errno.EEXIST,
  NotADirectory: errno.ENOTDIR,
  IsADirectory: errno.EISDIR,
  DirectoryNotEmpty: errno.ENOTEMPTY,
  CrossDevice: errno.EXDEV,
  NotSupported: errno.ENOTSUP,
  // auth
  AccessDenied: errno.EACCES,
  InvalidAccessKeyId: errno.EACCES,
  SignatureDoesNotMatch: errno.EACCES,
  // gateway framing and auth: the mount never produces these, but the table is total
  InvalidRequest: errno.EINVAL,
  MalformedXML: errno.EINVAL,
  MissingContentLength: errno.EINVAL,
  InvalidDigest: errno.EINVAL,
  PayloadHashMismatch: errno.EIO,
  MetadataTooLarge: errno.E2BIG,
  MethodNotAllowed: errno.EPERM,
  RequestTimeout: errno.ETIMEDOUT,
  RequestTimeTooSkewed: errno.EACCES,
  AuthorizationMalformed: errno.EACCES,
  BucketAlreadyOwnedByYou: errno.EEXIST,
  // data plane: never wrong bytes, so anything that could not be read back is EIO
  ChunkNotFound: errno.EIO,
  ChunkCorrupt: errno.EIO,
  ChunkConflict: errno.EIO,
  TooManyErasures: errno.EIO,
  NotEnoughNodes: errno.EIO,
  InsufficientStorage: errno.ENOSPC,
  NodeUnavailable: errno.EIO,
  // control plane
  CatalogUnavailable: errno.EIO,
  SerializationFailure: errno.EIO,
  SlowDown: errno.EAGAIN,
  Timeout: errno.ETIMEDOUT,
  Internal: errno.EIO,
})

const errnoNames = new Map<number, string>(Object.entries(errno).map(([name, value]) => [value, name]))

export function errnoName(value: number): string {
  return errnoNames.get(value) ?? `errno ${value}`
}

export class FsError extends Error {
  /** Positive errno (the adapter negates it for the binding). */
  readonly errno: number
  /** The BlobfsError code it came from, when it came from one. */
  readonly code: ErrorCode | null

  constructor(errnoValue: number, message: string, options?: { cause?: unknown; code?: ErrorCode }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'FsError'
    this.errno = errnoValue
    this.code = options?.code ?? null
  }

  get errnoName(): string {
    return errnoName(this.errno)
  }
}

export function fsError(errnoValue: number, message: string, cause?: unknown): FsError {
  return new FsError(errnoValue, message, { cause })
}

/**
 * Any thrown value as an FsError: FsErrors pass through, BlobfsErrors go through the
 * table, anything else (a bug, a Node error) is EIO with the value kept as the cause
 * (`unmapped` tells the caller to log it loudly).
 */
export function toFsError(error: unknown, context: string): FsError & { unmapped?: true } {
  if (error instanceof FsError) return error
  if (error instanceof BlobfsError) {
    return new FsError(errnoByCode[error.code], `${context}: ${error.message}`, { cause: error, code: error.code })
  }
  const wrapped: FsError & { unmapped?: true } = new FsError(errno.EIO, `${context}: unexpected error`, { cause: error })
  wrapped.unmapped = true
  return wrapped
}

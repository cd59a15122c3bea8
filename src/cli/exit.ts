// Exit statuses of every command, from BlobfsError codes in one table (STYLE.md
// item 3). Scripts can tell "not found" from "cluster down" from "bad input".
import { errorCodeOf, type ErrorCode } from '../errors.ts'
import { logger } from '../log.ts'

export const exitStatus = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  conflict: 4,
  unavailable: 5,
  integrity: 6,
} as const

const statusByCode: Partial<Record<ErrorCode, number>> = {
  InvalidArgument: exitStatus.usage,
  InvalidBucketName: exitStatus.usage,
  KeyTooLong: exitStatus.usage,
  InvalidRange: exitStatus.usage,
  EntityTooLarge: exitStatus.usage,
  NoSuchBucket: exitStatus.notFound,
  NoSuchKey: exitStatus.notFound,
  NoSuchUpload: exitStatus.notFound,
  BucketAlreadyExists: exitStatus.conflict,
  BucketAlreadyOwnedByYou: exitStatus.conflict,
  BucketNotEmpty: exitStatus.conflict,
  AlreadyExists: exitStatus.conflict,
  PreconditionFailed: exitStatus.conflict,
  CatalogUnavailable: exitStatus.unavailable,
  NodeUnavailable: exitStatus.unavailable,
  NotEnoughNodes: exitStatus.unavailable,
  Timeout: exitStatus.unavailable,
  SlowDown: exitStatus.unavailable,
  TooManyErasures: exitStatus.integrity,
  ChunkCorrupt: exitStatus.integrity,
  BadDigest: exitStatus.integrity,
}

/** Prints the error the way a user reads it (the log line keeps the cause) and exits. */
export function failAndExit(error: unknown): never {
  const code = errorCodeOf(error)
  const status = statusByCode[code] ?? exitStatus.failure
  if (code === 'Internal') logger('cli').error({ err: error }, 'internal error')
  process.stderr.write(`blobfs: ${code}: ${(error as Error)?.message ?? String(error)}\n`)
  process.exit(status)
}

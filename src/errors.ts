// One error type for the whole system, with stable `code` strings.
// Each edge (s3/, fuse/, cli/) maps codes once, in one table; library code never
// builds HTTP statuses or errnos itself. Anything unmapped becomes InternalError /
// EIO at the edge and is logged with its cause.

export const errorCodes = {
  // input
  InvalidArgument: 'an argument is out of range or malformed',
  InvalidBucketName: 'bucket name does not follow the S3 naming rules',
  KeyTooLong: 'object key is longer than the limit',
  EntityTooLarge: 'object or part is larger than the limit',
  EntityTooSmall: 'multipart part is smaller than the minimum',
  InvalidRange: 'requested range is not satisfiable',
  BadDigest: 'a checksum sent by the client does not match the body',
  IncompleteBody: 'the body ended before its declared length',
  // namespace
  NoSuchBucket: 'bucket does not exist',
  NoSuchKey: 'object does not exist',
  BucketAlreadyExists: 'bucket already exists',
  BucketNotEmpty: 'bucket is not empty',
  NoSuchUpload: 'multipart upload does not exist',
  InvalidPart: 'multipart part is missing or its etag does not match',
  InvalidPartOrder: 'multipart parts are not in ascending order',
  PreconditionFailed: 'a conditional header did not hold',
  NotModified: 'object not modified since the given condition',
  AlreadyExists: 'target exists',
  NotADirectory: 'a path component is not a directory',
  IsADirectory: 'target is a directory',
  DirectoryNotEmpty: 'directory is not empty',
  CrossDevice: 'operation would cross a bucket or mount boundary',
  NotSupported: 'operation is not supported',
  // auth
  AccessDenied: 'access denied',
  InvalidAccessKeyId: 'access key does not exist',
  SignatureDoesNotMatch: 'request signature does not match',
  // data plane
  ChunkNotFound: 'chunk is not on this node',
  ChunkCorrupt: 'chunk failed its checksum',
  ChunkConflict: 'a chunk with this id and different bytes exists',
  TooManyErasures: 'more shards are missing than parity can recover',
  NotEnoughNodes: 'too few healthy storage nodes to place a stripe',
  InsufficientStorage: 'storage node is out of space',
  NodeUnavailable: 'storage node did not answer',
  // control plane
  CatalogUnavailable: 'catalog database is unreachable',
  SerializationFailure: 'transaction kept conflicting after every retry',
  SlowDown: 'request rate limit exceeded',
  Timeout: 'operation timed out',
  // gateway (the S3 side-port and /api/v1): request framing and authentication
  InvalidRequest: 'the request is not valid for this operation',
  MalformedXML: 'the XML body is not well-formed or does not match the schema',
  MissingContentLength: 'a body needs Content-Length (or x-amz-decoded-content-length)',
  InvalidDigest: 'Content-MD5 or an x-amz-checksum header is not valid',
  PayloadHashMismatch: 'the body does not hash to x-amz-content-sha256',
  MetadataTooLarge: 'user metadata is larger than the limit',
  MethodNotAllowed: 'the method is not allowed on this resource',
  RequestTimeout: 'the client sent no body bytes for too long',
  RequestTimeTooSkewed: 'the request time is too far from the server time',
  AuthorizationMalformed: 'the Authorization header or presigned query is malformed',
  BucketAlreadyOwnedByYou: 'bucket already exists and is yours',
  Internal: 'internal error',
} as const

export type ErrorCode = keyof typeof errorCodes

export class BlobfsError extends Error {
  readonly code: ErrorCode

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? errorCodes[code], options)
    this.name = 'BlobfsError'
    this.code = code
  }
}

export function isBlobfsError(error: unknown, code?: ErrorCode): error is BlobfsError {
  return error instanceof BlobfsError && (code === undefined || error.code === code)
}

export function errorCodeOf(error: unknown): ErrorCode {
  return error instanceof BlobfsError ? error.code : 'Internal'
}

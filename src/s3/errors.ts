// The one place where blobfs errors become S3 errors (STYLE.md item 3): each
// BlobfsError code maps to an S3 code and an HTTP status. Anything unmapped — or not
// a BlobfsError at all — is InternalError 500, and the caller logs it with its cause.
import { BlobfsError, errorCodeOf, type ErrorCode } from '../errors.ts'
import { buildXml } from './xml.ts'

export interface S3ErrorSpec {
  code: string
  status: number
}

const table: Partial<Record<ErrorCode, S3ErrorSpec>> = {
  // input
  InvalidArgument: { code: 'InvalidArgument', status: 400 },
  InvalidBucketName: { code: 'InvalidBucketName', status: 400 },
  KeyTooLong: { code: 'KeyTooLongError', status: 400 },
  EntityTooLarge: { code: 'EntityTooLarge', status: 400 },
  EntityTooSmall: { code: 'EntityTooSmall', status: 400 },
  InvalidRange: { code: 'InvalidRange', status: 416 },
  BadDigest: { code: 'BadDigest', status: 400 },
  IncompleteBody: { code: 'IncompleteBody', status: 400 },
  // namespace
  NoSuchBucket: { code: 'NoSuchBucket', status: 404 },
  NoSuchKey: { code: 'NoSuchKey', status: 404 },
  BucketAlreadyExists: { code: 'BucketAlreadyExists', status: 409 },
  BucketAlreadyOwnedByYou: { code: 'BucketAlreadyOwnedByYou', status: 409 },
  BucketNotEmpty: { code: 'BucketNotEmpty', status: 409 },
  NoSuchUpload: { code: 'NoSuchUpload', status: 404 },
  InvalidPart: { code: 'InvalidPart', status: 400 },
  InvalidPartOrder: { code: 'InvalidPartOrder', status: 400 },
  PreconditionFailed: { code: 'PreconditionFailed', status: 412 },
  NotModified: { code: 'NotModified', status: 304 },
  NotSupported: { code: 'NotImplemented', status: 501 },
  // auth
  AccessDenied: { code: 'AccessDenied', status: 403 },
  InvalidAccessKeyId: { code: 'InvalidAccessKeyId', status: 403 },
  SignatureDoesNotMatch: { code: 'SignatureDoesNotMatch', status: 403 },
  RequestTimeTooSkewed: { code: 'RequestTimeTooSkewed', status: 403 },
  AuthorizationMalformed: { code: 'AuthorizationHeaderMalformed', status: 400 },
  // gateway framing
  InvalidRequest: { code: 'InvalidRequest', status: 400 },
  MalformedXML: { code: 'MalformedXML', status: 400 },
  MissingContentLength: { code: 'MissingContentLength', status: 411 },
  InvalidDigest: { code: 'InvalidDigest', status: 400 },
  PayloadHashMismatch: { code: 'XAmzContentSHA256Mismatch', status: 400 },
  MetadataTooLarge: { code: 'MetadataTooLarge', status: 400 },
  MethodNotAllowed: { code: 'MethodNotAllowed', status: 405 },
  RequestTimeout: { code: 'RequestTimeout', status: 400 },
  // capacity and availability: retryable, so SDKs back off and try again
  SlowDown: { code: 'SlowDown', status: 503 },
  NotEnoughNodes: { code: 'SlowDown', status: 503 },
  InsufficientStorage: { code: 'ServiceUnavailable', status: 503 },
  NodeUnavailable: { code: 'ServiceUnavailable', status: 503 },
  CatalogUnavailable: { code: 'ServiceUnavailable', status: 503 },
  SerializationFailure: { code: 'ServiceUnavailable', status: 503 },
  Timeout: { code: 'ServiceUnavailable', status: 503 },
}

export const internalError: S3ErrorSpec = Object.freeze({ code: 'InternalError', status: 500 })

/** The S3 code and status for any thrown value; `mapped` is false for InternalError. */
export function s3ErrorFor(error: unknown): S3ErrorSpec & { mapped: boolean } {
  const spec = error instanceof BlobfsError ? table[errorCodeOf(error)] : undefined
  return spec ? { ...spec, mapped: true } : { ...internalError, mapped: false }
}

export function s3ErrorTable(): Readonly<Partial<Record<ErrorCode, S3ErrorSpec>>> {
  return table
}

export interface ErrorDetails {
  resource: string
  requestId: string
}

export function errorXml(spec: S3ErrorSpec, message: string, details: ErrorDetails, extra: Record<string, string> = {}): string {
  return buildXml('Error', { Code: spec.code, Message: message, Resource: details.resource, RequestId: details.requestId, ...extra }, null)
}

/** Messages of mapped errors go to the client; an internal error's message stays in the log. */
export function clientMessage(error: unknown, spec: S3ErrorSpec & { mapped: boolean }): string {
  if (!spec.mapped) return 'We encountered an internal error. Please try again.'
  return error instanceof Error ? error.message : String(error)
}

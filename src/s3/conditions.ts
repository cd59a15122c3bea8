// Conditional requests and byte ranges (RFC 7232, RFC 7233), evaluated against the
// object the read actually returned, so the answer and the bytes agree.
//
// Precedence (RFC 7232 section 6): If-Match, else If-Unmodified-Since (412 when
// false); then If-None-Match, else If-Modified-Since (304 for GET/HEAD when false).
// The x-amz-copy-source-if-* variants follow the same order but answer 412 for
// every failure, If-Modified-Since included (S3's CopyObject semantics).
import type { IncomingHttpHeaders } from 'node:http'
import { BlobfsError } from '../errors.ts'
import type { ObjectInfo } from '../objects/types.ts'

export interface Preconditions {
  ifMatch?: string
  ifNoneMatch?: string
  ifModifiedSince?: number
  ifUnmodifiedSince?: number
}

function httpDateMs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const ms = Date.parse(value)
  return Number.isNaN(ms) ? undefined : ms // an invalid date is ignored (RFC 7232)
}

/** Reads If-* headers; `prefix` 'x-amz-copy-source-' reads the copy-source conditions. */
export function readPreconditions(headers: IncomingHttpHeaders, prefix = ''): Preconditions {
  const text = (name: string) => {
    const value = headers[prefix + name]
    return Array.isArray(value) ? value.join(',') : value
  }
  return {
    ifMatch: text('if-match'),
    ifNoneMatch: text('if-none-match'),
    ifModifiedSince: httpDateMs(text('if-modified-since')),
    ifUnmodifiedSince: httpDateMs(text('if-unmodified-since')),
  }
}

function opaque(tag: string): string {
  let t = tag.trim()
  if (t.startsWith('W/')) t = t.slice(2)
  if (t.length >= 2 && t.startsWith('"') && t.endsWith('"')) t = t.slice(1, -1)
  return t
}

/** Whether an If-Match / If-None-Match list names the etag ('*' names any). */
export function etagListMatches(list: string, etag: string): boolean {
  const wanted = opaque(etag)
  return list.split(',').some((item) => item.trim() === '*' || opaque(item) === wanted)
}

const seconds = (ms: number) => Math.floor(ms / 1000)

export type PreconditionOutcome = 'proceed' | 'not-modified' | 'failed'

/** `read`: GET/HEAD (304 where RFC 7232 says so); `copy`: a copy source (412 for any failure). */
export function evaluatePreconditions(pre: Preconditions, info: ObjectInfo, mode: 'read' | 'copy'): PreconditionOutcome {
  const notModified: PreconditionOutcome = mode === 'read' ? 'not-modified' : 'failed'
  const modified = seconds(info.lastModified.getTime())
  if (pre.ifMatch !== undefined) {
    if (!etagListMatches(pre.ifMatch, info.etag)) return 'failed'
  } else if (pre.ifUnmodifiedSince !== undefined && modified > seconds(pre.ifUnmodifiedSince)) {
    return 'failed'
  }
  if (pre.ifNoneMatch !== undefined) {
    if (etagListMatches(pre.ifNoneMatch, info.etag)) return notModified
  } else if (pre.ifModifiedSince !== undefined && modified <= seconds(pre.ifModifiedSince)) {
    return notModified
  }
  return 'proceed'
}

/** Throws PreconditionFailed unless the copy-source conditions hold. */
export function requireCopySourceConditions(pre: Preconditions, info: ObjectInfo, what: string): void {
  if (evaluatePreconditions(pre, info, 'copy') !== 'proceed') throw new BlobfsError('PreconditionFailed', `a condition on ${what} did not hold`)
}

export type RangeSpec = { kind: 'from'; start: number; end: number | null } | { kind: 'suffix'; length: number }

/**
 * A single-range `bytes=` header; null when absent, not a single byte range or
 * syntactically invalid (RFC 7233 lets the server ignore it and send everything).
 */
export function parseRange(value: string | undefined): RangeSpec | null {
  if (value === undefined) return null
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(value)
  if (!m) return null
  const [, first, last] = m
  if (first === '' && last === '') return null
  if (first === '') return { kind: 'suffix', length: Number(last) }
  const start = Number(first)
  const end = last === '' ? null : Number(last)
  if (end !== null && end < start) return null
  return { kind: 'from', start, end }
}

/** The inclusive byte span a range selects of `size` bytes; InvalidRange when none. */
export function resolveRange(spec: RangeSpec, size: number): { start: number; end: number } {
  if (spec.kind === 'suffix') {
    if (spec.length === 0 || size === 0) throw new BlobfsError('InvalidRange', `bytes=-${spec.length} selects nothing of ${size} bytes`)
    return { start: Math.max(0, size - spec.length), end: size - 1 }
  }
  if (spec.start >= size) throw new BlobfsError('InvalidRange', `bytes=${spec.start}- starts past the end of ${size} bytes`)
  return { start: spec.start, end: spec.end === null ? size - 1 : Math.min(spec.end, size - 1) }
}

import assert from 'node:assert/strict'
import { test } from 'node:test'
import { BlobfsError, errorCodeOf, errorCodes, isBlobfsError } from '../src/errors.ts'

test('BlobfsError carries a stable code and a default message from the table', () => {
  const error = new BlobfsError('NoSuchKey')
  assert.equal(error.code, 'NoSuchKey')
  assert.equal(error.message, errorCodes.NoSuchKey)
  assert.ok(isBlobfsError(error, 'NoSuchKey'))
  assert.ok(!isBlobfsError(error, 'NoSuchBucket'))
})

test('anything that is not a BlobfsError maps to Internal', () => {
  assert.equal(errorCodeOf(new Error('boom')), 'Internal')
  assert.equal(errorCodeOf('a string'), 'Internal')
  assert.equal(errorCodeOf(new BlobfsError('SlowDown', 'wait', { cause: new Error('x') })), 'SlowDown')
})

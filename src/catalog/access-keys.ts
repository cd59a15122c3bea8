// Access keys: the tenants of the S3 side-port. SigV4 signs with the secret itself
// (an HMAC key), so the server must be able to read it back: secrets are stored as
// they are, and the catalog database is therefore as sensitive as the keys. A key
// belongs to an owner; buckets record the owner that created them.
import { randomBytes } from 'node:crypto'
import type { Row } from 'postgres'
import { BlobfsError } from '../errors.ts'
import type { Db } from './db.ts'
import { checkName } from './validate.ts'

export interface AccessKeyRecord {
  accessKeyId: string
  secretAccessKey: string
  owner: string
  createdAt: Date
}

const keyColumns = 'access_key_id, secret_key, owner_id, created_at'
const idAlphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

function keyFromRow(row: Row): AccessKeyRecord {
  return { accessKeyId: row.access_key_id, secretAccessKey: row.secret_key, owner: row.owner_id, createdAt: row.created_at }
}

/** An AWS-shaped key id: 20 characters, upper-case letters and digits, starting with "BF". */
export function newAccessKeyId(): string {
  const bytes = randomBytes(18)
  return 'BF' + [...bytes].map((b) => idAlphabet[b % 32]).join('')
}

/** 40 characters from 30 random bytes, like an AWS secret access key. */
export function newSecretAccessKey(): string {
  return randomBytes(30).toString('base64')
}

export class AccessKeys {
  constructor(private readonly db: Db) {}

  /** Creates a key for `owner` (ids and secrets generated unless given); AlreadyExists if the id is taken. */
  async create(input: { owner: string; accessKeyId?: string; secretAccessKey?: string }): Promise<AccessKeyRecord> {
    const owner = checkName(input.owner, 'owner', 128)
    const id = checkName(input.accessKeyId ?? newAccessKeyId(), 'access key id', 128)
    const secret = checkName(input.secretAccessKey ?? newSecretAccessKey(), 'secret access key', 256)
    const rows = await this.db.tx(
      (q) => q`INSERT INTO access_keys (access_key_id, secret_key, owner_id) VALUES (${id}, ${secret}, ${owner})
        ON CONFLICT (access_key_id) DO NOTHING RETURNING ${q.unsafe(keyColumns)}`,
    )
    if (rows.length === 0) throw new BlobfsError('AlreadyExists', `access key ${id} already exists`)
    return keyFromRow(rows[0]!)
  }

  async get(accessKeyId: string): Promise<AccessKeyRecord | null> {
    if (typeof accessKeyId !== 'string' || accessKeyId.length === 0 || accessKeyId.length > 128) return null
    const rows = await this.db.read((q) => q`SELECT ${q.unsafe(keyColumns)} FROM access_keys WHERE access_key_id = ${accessKeyId}`)
    return rows.length === 0 ? null : keyFromRow(rows[0]!)
  }

  async list(options: { owner?: string } = {}): Promise<AccessKeyRecord[]> {
    const owner = options.owner === undefined ? undefined : checkName(options.owner, 'owner', 128)
    const rows = await this.db.read(
      (q) => q`SELECT ${q.unsafe(keyColumns)} FROM access_keys ${owner !== undefined ? q`WHERE owner_id = ${owner}` : q``} ORDER BY access_key_id`,
    )
    return rows.map(keyFromRow)
  }

  /** Deletes a key; false if it did not exist. */
  async delete(accessKeyId: string): Promise<boolean> {
    checkName(accessKeyId, 'access key id', 128)
    const rows = await this.db.tx((q) => q`DELETE FROM access_keys WHERE access_key_id = ${accessKeyId} RETURNING access_key_id`)
    return rows.length === 1
  }
}

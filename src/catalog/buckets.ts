// Buckets: S3-valid names, an owner (the access key owner who created it) and an
// access policy. A bucket is deleted only when it holds no object; multipart
// uploads still open in it are aborted in the same transaction (their chunks go to
// the deletion queue) so nothing is left pointing at a missing bucket.
import { BlobfsError } from '../errors.ts'
import { chunkDeletionDelayMsDefault } from '../limits.ts'
import { queueChunksOf } from './chunk-map.ts'
import { foreignKeyViolation, sqlStateOf, type Db } from './db.ts'
import { checkBucketName } from './keys.ts'
import { bucketColumns, bucketFromRow } from './rows.ts'
import { bucketPolicies, type BucketPolicy, type BucketRecord } from './types.ts'
import { checkName, invalid } from './validate.ts'

function checkPolicy(policy: BucketPolicy): BucketPolicy {
  if (!bucketPolicies.includes(policy)) throw invalid(`bucket policy must be one of ${bucketPolicies.join(', ')}`)
  return policy
}

export class Buckets {
  constructor(
    private readonly db: Db,
    private readonly config: { deletionDelayMs: number } = { deletionDelayMs: chunkDeletionDelayMsDefault },
  ) {}

  /** Creates a bucket; BucketAlreadyExists if the name is taken (by anyone). */
  async create(input: { name: string; owner: string; policy?: BucketPolicy }): Promise<BucketRecord> {
    const name = checkBucketName(input.name)
    const owner = checkName(input.owner, 'bucket owner', 128)
    const policy = checkPolicy(input.policy ?? 'PRIVATE')
    const rows = await this.db.tx(
      (q) => q`INSERT INTO storage_buckets (bucket_name, owner_id, access_control_policy) VALUES (${name}, ${owner}, ${policy})
        ON CONFLICT (bucket_name) DO NOTHING RETURNING ${q.unsafe(bucketColumns)}`,
    )
    if (rows.length === 0) throw new BlobfsError('BucketAlreadyExists', `bucket ${name} already exists`)
    return bucketFromRow(rows[0]!)
  }

  async get(name: string): Promise<BucketRecord | null> {
    checkBucketName(name)
    const rows = await this.db.read((q) => q`SELECT ${q.unsafe(bucketColumns)} FROM storage_buckets WHERE bucket_name = ${name}`)
    return rows.length === 0 ? null : bucketFromRow(rows[0]!)
  }

  /** Every bucket, or those of one owner, by name. */
  async list(options: { owner?: string } = {}): Promise<BucketRecord[]> {
    const owner = options.owner === undefined ? undefined : checkName(options.owner, 'bucket owner', 128)
    const rows = await this.db.read(
      (q) => q`SELECT ${q.unsafe(bucketColumns)} FROM storage_buckets
        ${owner !== undefined ? q`WHERE owner_id = ${owner}` : q``} ORDER BY bucket_name`,
    )
    return rows.map(bucketFromRow)
  }

  async setPolicy(name: string, policy: BucketPolicy): Promise<BucketRecord> {
    checkBucketName(name)
    checkPolicy(policy)
    const rows = await this.db.tx(
      (q) => q`UPDATE storage_buckets SET access_control_policy = ${policy} WHERE bucket_name = ${name} RETURNING ${q.unsafe(bucketColumns)}`,
    )
    if (rows.length === 0) throw new BlobfsError('NoSuchBucket', `bucket ${name} does not exist`)
    return bucketFromRow(rows[0]!)
  }

  /** Deletes an empty bucket: NoSuchBucket, or BucketNotEmpty while any object exists. */
  async delete(name: string): Promise<void> {
    checkBucketName(name)
    await this.db.tx(async (q) => {
      const [bucket, object, uploads] = await Promise.all([
        q`SELECT bucket_name FROM storage_buckets WHERE bucket_name = ${name} FOR UPDATE`,
        q`SELECT object_key FROM bucket_objects WHERE bucket_name = ${name} LIMIT 1`,
        q`SELECT upload_id, object_id FROM multipart_uploads WHERE bucket_name = ${name}`,
      ])
      if (bucket.length === 0) throw new BlobfsError('NoSuchBucket', `bucket ${name} does not exist`)
      if (object.length > 0) throw new BlobfsError('BucketNotEmpty', `bucket ${name} is not empty`)
      for (const upload of uploads) {
        await queueChunksOf(q, upload.object_id, 'UPLOAD_ABORTED', this.config.deletionDelayMs)
        await Promise.all([
          q`DELETE FROM multipart_parts WHERE upload_id = ${upload.upload_id}`.execute(),
          q`DELETE FROM multipart_uploads WHERE upload_id = ${upload.upload_id}`.execute(),
        ])
      }
      // An object committed beside this transaction by a lone statement (Db.alone; on
      // PostgreSQL not SERIALIZABLE) is not in this snapshot, but its row holds the
      // bucket: the foreign key stops the delete.
      await q`DELETE FROM storage_buckets WHERE bucket_name = ${name}`.catch((error: unknown) => {
        if (sqlStateOf(error) === foreignKeyViolation) throw new BlobfsError('BucketNotEmpty', `bucket ${name} is not empty`)
        throw error
      })
    })
  }
}

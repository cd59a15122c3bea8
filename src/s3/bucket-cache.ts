// The buckets object operations are authorized against, kept for a short time so a
// GET or PUT of an object does not read its bucket from the catalog every time (on a
// 4 KiB GET that read was one of the two catalog statements; the catalog is the
// slowest part of a small request). A bucket's owner and policy never change while
// it exists, so an entry can only be stale across a delete: for up to the TTL after
// a bucket is deleted through another gateway, object requests to it are authorized
// as before (and then fail in the object layer, which finds no such bucket or key;
// a bucket must be empty to be deleted). S3's own bucket operations are eventually
// consistent the same way. Bucket-level operations (HeadBucket, listings, ACLs,
// DeleteBucket) always read the bucket afresh; a DeleteBucket or a NoSuchBucket
// answer through this gateway drops its entry at once. Missing buckets are not kept.
import type { BucketInfo } from '../objects/types.ts'

export class BucketCache {
  private readonly entries = new Map<string, { bucket: BucketInfo; expiresMs: number }>()

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number,
    private readonly entriesMax = 10_000,
  ) {}

  /** The cached bucket, or what `load` returns (kept for the TTL). */
  async get(name: string, load: (name: string) => Promise<BucketInfo>): Promise<BucketInfo> {
    const cached = this.entries.get(name)
    const now = this.now()
    if (cached && cached.expiresMs > now) return cached.bucket
    const bucket = await load(name)
    if (this.ttlMs > 0) {
      this.entries.delete(name)
      if (this.entries.size >= this.entriesMax) this.entries.delete(this.entries.keys().next().value!)
      this.entries.set(name, { bucket, expiresMs: now + this.ttlMs })
    }
    return bucket
  }

  forget(name: string): void {
    this.entries.delete(name)
  }
}

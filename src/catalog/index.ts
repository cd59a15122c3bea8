// The catalog: blobfs's control plane in SQL (DESIGN.md, "Catalog"). Buckets,
// object versions and their chunk map, multipart sessions, the storage-node
// registry, access keys and the work queues, on CockroachDB, PostgreSQL or the
// embedded PGlite — one schema, one client (postgres.js), one dialect (the
// CockroachDB rules, checked by test/catalog/sql-audit.test.ts).
//
//   const embedded = await startEmbeddedCatalog({ dataDir })   // `blobfs up` only
//   const catalog = await openCatalog(embedded.url)            // or 'postgres://...'
//   await catalog.objects.commit({ bucket, key, objectId, ... })
//   const found = await catalog.objects.lookup(bucket, key, { offsetBytes, lengthBytes })
//
// Every method validates its input before any SQL (bad input writes nothing),
// runs as one statement or one SERIALIZABLE transaction retried on conflicts, and
// fails with a BlobfsError code (NoSuchBucket, KeyTooLong, CatalogUnavailable,
// SerializationFailure, ...). See docs/catalog.md.
export { Catalog, openCatalog, type CatalogOptions } from './catalog.ts'
export { startEmbeddedCatalog, runningCatalogUrl, catalogUrlFile, type EmbeddedCatalog, type EmbeddedCatalogOptions } from './embedded.ts'
export { Db, type DbOptions, type TxStats } from './db.ts'
export { migrate, migrations, latestSchemaVersion, type MigrationResult } from './migrations.ts'
export { bucketNameProblem, checkBucketName, encodeKey } from './keys.ts'
export { parseScheme, type ErasureScheme } from './validate.ts'
export { multipartEtag, type UploadRecord, type PartRecord, type CreateUploadInput, type CompleteUploadInput, type CompleteUploadResult } from './multipart.ts'
export { nodeStates, type NodeRecord, type NodeState, type HeartbeatInput } from './nodes.ts'
export { newAccessKeyId, newSecretAccessKey, type AccessKeyRecord } from './access-keys.ts'
export type { StripeKey, RepairTask, RepairReason, DeletionTask, Lease, ClaimOptions, QueueStats } from './queues.ts'
export type { StripeState, ChunkLocation, DegradedSummary, ReplaceResult } from './chunks.ts'
export type { AttributeChanges, RenameOptions, RenamePrefixOptions, RenameResult } from './objects.ts'
export type { DeletionReason } from './chunk-map.ts'
export * from './types.ts'

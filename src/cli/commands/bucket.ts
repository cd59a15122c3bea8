// `blobfs bucket create|ls|rm`: buckets in the catalog.
import type { Argv, CommandModule } from 'yargs'
import { BlobfsError } from '../../errors.ts'
import { clusterOptions, withCluster, type ClusterArgs } from '../options.ts'

interface BucketArgs extends ClusterArgs {
  action: string
  name?: string
  owner: string
  public: boolean
  json: boolean
}

export const bucketCommand: CommandModule<object, BucketArgs> = {
  command: 'bucket <action> [name]',
  describe: 'create, list or remove buckets',
  builder: (yargs) =>
    clusterOptions(yargs)
      .positional('action', { choices: ['create', 'ls', 'rm'] as const, describe: 'what to do' })
      .positional('name', { type: 'string', describe: 'bucket name (S3 naming rules)' })
      .option('owner', { type: 'string', default: 'admin', describe: 'owner (tenant) of a new bucket; filter for ls' })
      .option('public', { type: 'boolean', default: false, describe: 'create the bucket PUBLIC_READ (anonymous GET over S3)' })
      .option('json', { type: 'boolean', default: false, describe: 'print JSON for scripts' })
      .example('$0 bucket create photos', 'a private bucket owned by admin')
      .example('$0 bucket ls --json', 'every bucket, as JSON')
      .example('$0 bucket rm photos --catalog postgres://db:5432/blobfs', 'remove an empty bucket') as unknown as Argv<BucketArgs>,
  handler: (argv) =>
    withCluster(argv, async ({ objects }) => {
      if (argv.action === 'ls') {
        const buckets = await objects.listBuckets()
        if (argv.json) console.log(JSON.stringify(buckets))
        else for (const b of buckets) console.log(`${b.createdAt.toISOString()}  ${b.policy.padEnd(11)}  ${b.owner.padEnd(12)}  ${b.name}`)
        return
      }
      if (!argv.name) throw new BlobfsError('InvalidArgument', `bucket ${argv.action} needs a bucket name`)
      if (argv.action === 'create') {
        const bucket = await objects.createBucket(argv.name, argv.owner, argv.public ? 'PUBLIC_READ' : 'PRIVATE')
        console.log(argv.json ? JSON.stringify(bucket) : `created bucket ${bucket.name}`)
      } else {
        await objects.deleteBucket(argv.name)
        console.log(argv.json ? JSON.stringify({ removed: argv.name }) : `removed bucket ${argv.name}`)
      }
    }),
}

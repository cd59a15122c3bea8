// `blobfs key create|ls|rm`: S3 access keys (tenants) in the catalog.
import type { Argv, CommandModule } from 'yargs'
import { BlobfsError } from '../../errors.ts'
import { clusterOptions, withCluster, type ClusterArgs } from '../options.ts'

interface KeyArgs extends ClusterArgs {
  action: string
  id?: string
  owner: string
  'access-key'?: string
  'secret-key'?: string
  json: boolean
}

export const keyCommand: CommandModule<object, KeyArgs> = {
  command: 'key <action> [id]',
  describe: 'create, list or remove S3 access keys',
  builder: (yargs) =>
    clusterOptions(yargs)
      .positional('action', { choices: ['create', 'ls', 'rm'] as const, describe: 'what to do' })
      .positional('id', { type: 'string', describe: 'access key id (for rm)' })
      .option('owner', { type: 'string', default: 'admin', describe: 'tenant the key acts as' })
      .option('access-key', { type: 'string', describe: 'choose the key id instead of generating one' })
      .option('secret-key', { type: 'string', describe: 'choose the secret instead of generating one' })
      .option('json', { type: 'boolean', default: false, describe: 'print JSON for scripts' })
      .example('$0 key create --owner alice', 'a new key for tenant alice (the secret is printed once)')
      .example('$0 key ls --json', 'every key id and owner (secrets are not listed)')
      .example('$0 key rm BFABCDEFGHIJKLMNOPQR', 'revoke a key') as unknown as Argv<KeyArgs>,
  handler: (argv) =>
    withCluster(argv, async ({ catalog }) => {
      if (argv.action === 'create') {
        const key = await catalog.accessKeys.create({
          owner: argv.owner,
          ...(argv['access-key'] ? { accessKeyId: argv['access-key'] } : {}),
          ...(argv['secret-key'] ? { secretAccessKey: argv['secret-key'] } : {}),
        })
        if (argv.json) console.log(JSON.stringify(key))
        else console.log(`access key id:     ${key.accessKeyId}\nsecret access key: ${key.secretAccessKey}\nowner:             ${key.owner}`)
      } else if (argv.action === 'ls') {
        const keys = (await catalog.accessKeys.list()).map(({ accessKeyId, owner, createdAt }) => ({ accessKeyId, owner, createdAt }))
        if (argv.json) console.log(JSON.stringify(keys))
        else for (const k of keys) console.log(`${k.accessKeyId}  ${k.owner.padEnd(12)}  ${k.createdAt.toISOString()}`)
      } else {
        if (!argv.id) throw new BlobfsError('InvalidArgument', 'key rm needs the access key id')
        if (!(await catalog.accessKeys.delete(argv.id))) throw new BlobfsError('InvalidAccessKeyId', `no access key ${argv.id}`)
        console.log(argv.json ? JSON.stringify({ removed: argv.id }) : `removed access key ${argv.id}`)
      }
    }),
}

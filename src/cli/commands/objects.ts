// `blobfs cp|ls|cat|rm`: objects from the command line, through the object layer
// (the same path the mount and the S3 port take). Remote paths are written
// blobfs://BUCKET/KEY; cp streams both ways with a progress bar.
import { createReadStream, createWriteStream } from 'node:fs'
import { rename, stat, unlink } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import type { Argv, CommandModule } from 'yargs'
import { BlobfsError } from '../../errors.ts'
import { clusterOptions, parseRemote, withCluster, type ClusterArgs } from '../options.ts'
import { humanBytes, progressBar } from '../progress.ts'

interface CpArgs extends ClusterArgs {
  source: string
  target: string
  progress?: boolean
  'content-type'?: string
}

export const cpCommand: CommandModule<object, CpArgs> = {
  command: 'cp <source> <target>',
  describe: 'copy a file into the cluster, out of it, or between keys',
  builder: (yargs) =>
    clusterOptions(yargs)
      .positional('source', { type: 'string', demandOption: true, describe: 'local path or blobfs://BUCKET/KEY' })
      .positional('target', { type: 'string', demandOption: true, describe: 'local path or blobfs://BUCKET/KEY (a trailing / keeps the name)' })
      .option('progress', { type: 'boolean', describe: 'show a progress bar (default: when stderr is a terminal)' })
      .option('content-type', { type: 'string', describe: 'Content-Type to store with an upload' })
      .example('$0 cp ./video.mp4 blobfs://media/2026/video.mp4', 'upload')
      .example('$0 cp blobfs://media/2026/video.mp4 /tmp/', 'download into a directory')
      .example('$0 cp blobfs://media/a blobfs://archive/a', 'copy between buckets') as unknown as Argv<CpArgs>,
  handler: (argv) =>
    withCluster(argv, async ({ objects }) => {
      const from = parseRemote(argv.source)
      const to = parseRemote(argv.target)
      if (!from && to) {
        const source = await stat(argv.source).catch((error: NodeJS.ErrnoException) => {
          throw new BlobfsError('InvalidArgument', `${argv.source}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`, { cause: error })
        })
        if (!source.isFile()) throw new BlobfsError('InvalidArgument', `${argv.source} is not a regular file`)
        const size = source.size
        const key = to.key === '' || to.key.endsWith('/') ? to.key + argv.source.split('/').pop() : to.key
        const bar = progressBar(size, 'upload  ', argv.progress)
        try {
          const body = createReadStream(argv.source).pipe(bar.meter())
          const info = await objects.putObject(to.bucket, key, body, {
            expectedLengthBytes: size,
            ...(argv['content-type'] ? { contentType: argv['content-type'] } : {}),
          })
          bar.stop()
          console.log(`${argv.source} -> blobfs://${to.bucket}/${key} (${humanBytes(info.sizeBytes)}, etag ${info.etag})`)
        } finally {
          bar.stop()
        }
      } else if (from && !to) {
        const read = await objects.getObject(from.bucket, from.key)
        let target = argv.target
        if (target.endsWith('/') || (await stat(target).then((s) => s.isDirectory(), () => false))) {
          target = `${target.replace(/\/$/, '')}/${from.key.split('/').pop()}`
        }
        // Written beside the target and renamed: an interrupted download leaves no half file.
        const partial = `${target}.blobfs-partial-${process.pid}`
        const bar = progressBar(read.info.sizeBytes, 'download', argv.progress)
        try {
          await pipeline(read.body, bar.meter(), createWriteStream(partial))
          await rename(partial, target)
        } catch (error) {
          await unlink(partial).catch(() => {})
          throw error
        } finally {
          bar.stop()
        }
        console.log(`blobfs://${from.bucket}/${from.key} -> ${target} (${humanBytes(read.info.sizeBytes)})`)
      } else if (from && to) {
        const info = await objects.copyObject(from, to)
        console.log(`blobfs://${from.bucket}/${from.key} -> blobfs://${to.bucket}/${to.key} (${humanBytes(info.sizeBytes)})`)
      } else {
        throw new BlobfsError('InvalidArgument', 'one side of cp must be blobfs://BUCKET/KEY')
      }
    }),
}

interface LsArgs extends ClusterArgs {
  path?: string
  recursive: boolean
  json: boolean
}

export const lsCommand: CommandModule<object, LsArgs> = {
  command: 'ls [path]',
  describe: 'list buckets, or the keys under blobfs://BUCKET/PREFIX',
  builder: (yargs) =>
    clusterOptions(yargs)
      .positional('path', { type: 'string', describe: 'blobfs://BUCKET[/PREFIX]; without it, the buckets' })
      .option('recursive', { alias: 'r', type: 'boolean', default: false, describe: 'every key below the prefix, not one level' })
      .option('json', { type: 'boolean', default: false, describe: 'one JSON object per line' })
      .example('$0 ls', 'the buckets')
      .example('$0 ls blobfs://media/2026/', 'one directory level')
      .example('$0 ls -r blobfs://media --json', 'every key, as JSON lines') as unknown as Argv<LsArgs>,
  handler: (argv) =>
    withCluster(argv, async ({ objects }) => {
      const remote = argv.path ? parseRemote(argv.path) : null
      if (argv.path && !remote) throw new BlobfsError('InvalidArgument', `${argv.path} is not blobfs://BUCKET[/PREFIX]`)
      if (!remote) {
        for (const b of await objects.listBuckets()) console.log(argv.json ? JSON.stringify(b) : `${b.name}/`)
        return
      }
      let continuationToken: string | undefined
      do {
        const page = await objects.listObjects(remote.bucket, {
          prefix: remote.key,
          ...(argv.recursive ? {} : { delimiter: '/' }),
          ...(continuationToken ? { continuationToken } : {}),
        })
        for (const prefix of page.commonPrefixes) console.log(argv.json ? JSON.stringify({ prefix }) : `${''.padStart(30)}  ${prefix}`)
        for (const o of page.objects) {
          console.log(argv.json ? JSON.stringify(o) : `${o.lastModified.toISOString()}  ${String(o.sizeBytes).padStart(12)}  ${o.key}`)
        }
        continuationToken = page.nextContinuationToken ?? undefined
      } while (continuationToken)
    }),
}

interface KeyPathArgs extends ClusterArgs {
  path: string
}

function remoteOrThrow(path: string): { bucket: string; key: string } {
  const remote = parseRemote(path)
  if (!remote || remote.key === '') throw new BlobfsError('InvalidArgument', `${path} is not blobfs://BUCKET/KEY`)
  return remote
}

export const catCommand: CommandModule<object, KeyPathArgs> = {
  command: 'cat <path>',
  describe: 'write an object to stdout',
  builder: (yargs) =>
    clusterOptions(yargs)
      .positional('path', { type: 'string', demandOption: true, describe: 'blobfs://BUCKET/KEY' })
      .example('$0 cat blobfs://logs/today.txt | grep ERROR', 'stream an object') as unknown as Argv<KeyPathArgs>,
  handler: (argv) =>
    withCluster(argv, async ({ objects }) => {
      const { bucket, key } = remoteOrThrow(argv.path)
      const read = await objects.getObject(bucket, key)
      await pipeline(read.body, process.stdout, { end: false })
    }),
}

export const rmCommand: CommandModule<object, KeyPathArgs> = {
  command: 'rm <path>',
  describe: 'delete an object (its chunks are reclaimed by the GC)',
  builder: (yargs) =>
    clusterOptions(yargs)
      .positional('path', { type: 'string', demandOption: true, describe: 'blobfs://BUCKET/KEY' })
      .example('$0 rm blobfs://logs/old.txt', 'delete one object') as unknown as Argv<KeyPathArgs>,
  handler: (argv) =>
    withCluster(argv, async ({ objects }) => {
      const { bucket, key } = remoteOrThrow(argv.path)
      await objects.headObject(bucket, key) // rm of a missing key is an error on the command line
      await objects.deleteObject(bucket, key)
      console.log(`removed blobfs://${bucket}/${key}`)
    }),
}

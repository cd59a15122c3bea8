// The child process of the real-mount tests: the real `blobfs mount` / `blobfs umount`
// commands, with the object-layer factory answering an in-memory layer persisted in
// --data (so a killed daemon's store is still there for the remount). The test drives
// the layer through IPC messages: it never touches the mount from its own process.
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import yargs from 'yargs'
import { BlobfsError, type ErrorCode } from '../../../src/errors.ts'
import { createMountCommand, umountCommand } from '../../../src/cli/commands/mount.ts'
import { MemoryObjectLayer, type ObjectOp } from './memory-objects.ts'

export const testBucket = 'b'

let layer: MemoryObjectLayer | null = null

const mountCommand = createMountCommand(async ({ data }) => {
  layer = new MemoryObjectLayer(data ? { persistDir: data } : {})
  if (!(await layer.listBuckets()).some((b) => b.name === testBucket)) await layer.createBucket(testBucket, 'tester')
  return { objects: layer, close: async () => {} }
})

export type DaemonRequest =
  | { cmd: 'counters' }
  | { cmd: 'reset' }
  | { cmd: 'keys' }
  | { cmd: 'put'; key: string; base64: string }
  | { cmd: 'putMany'; prefix: string; count: number }
  | { cmd: 'sha256'; key: string }
  | { cmd: 'head'; key: string }
  | { cmd: 'fault'; op: ObjectOp | null; code?: ErrorCode }

async function answer(request: DaemonRequest): Promise<unknown> {
  if (!layer) throw new Error('the object layer is not open yet')
  switch (request.cmd) {
    case 'counters':
      return layer.counters
    case 'reset':
      layer.resetCounters()
      return null
    case 'keys':
      return layer.keys(testBucket)
    case 'put':
      return layer.putObject(testBucket, request.key, Readable.from([Buffer.from(request.base64, 'base64')]))
    case 'putMany':
      for (let i = 0; i < request.count; i++) await layer.putObject(testBucket, `${request.prefix}${i}`, Readable.from([Buffer.from(`entry ${i}\n`)]))
      return null
    case 'sha256': {
      const data = layer.peek(testBucket, request.key)
      return data ? createHash('sha256').update(data).digest('hex') : null
    }
    case 'head':
      return layer.headObject(testBucket, request.key)
    case 'fault': {
      const { op, code } = request
      layer.fault = op ? (called) => (called === op ? new BlobfsError(code ?? 'Internal') : null) : null
      return null
    }
  }
}

process.on('message', (message: { id: number; request: DaemonRequest }) => {
  answer(message.request).then(
    (result) => process.send?.({ id: message.id, result }),
    (error: unknown) => process.send?.({ id: message.id, error: String(error) }),
  )
})

await yargs(process.argv.slice(2)).command(mountCommand).command(umountCommand).strict().demandCommand(1).parseAsync()

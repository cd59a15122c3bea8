// Starts the real gateway on 127.0.0.1:0 over the in-memory object layer, with two
// tenants' access keys, and hands out AWS SDK clients (default settings apart from
// endpoint, credentials and path style) for the tests. Call close() in finally.
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3'
import { createCipheriv } from 'node:crypto'
import { Agent } from 'node:http'
import { pino } from 'pino'
import type { AccessKey } from '../../src/objects/types.ts'
import { createS3Server, type S3Gateway } from '../../src/s3/index.ts'
import type { S3GatewayOptions } from '../../src/s3/config.ts'
import { MemoryObjectLayer } from './memory-objects.ts'

export const alice: AccessKey = { accessKeyId: 'AKIAALICEEXAMPLE0001', secretAccessKey: 'alice/secret+key/0123456789abcdefEXAMPLE', owner: 'alice' }
export const bob: AccessKey = { accessKeyId: 'AKIABOBEXAMPLE000002', secretAccessKey: 'bob/secret+key/0123456789abcdefEXAMPLEXX', owner: 'bob' }

export interface GatewayHarness {
  gateway: S3Gateway
  endpoint: string
  port: number
  client(key?: AccessKey, config?: Partial<S3ClientConfig>): S3Client
  close(): Promise<void>
}

export interface Harness extends GatewayHarness {
  objects: MemoryObjectLayer
}

export const silentLogger = pino({ level: 'silent' })

/** The gateway over any object layer (its access keys are the caller's business). */
export async function startGateway(options: S3GatewayOptions): Promise<GatewayHarness> {
  const gateway = createS3Server({ logger: silentLogger, ...options })
  const { endpoint, port } = await gateway.listen(0, '127.0.0.1')
  const clients: S3Client[] = []
  return {
    gateway,
    endpoint,
    port,
    client(key = alice, config = {}) {
      const client = new S3Client({
        endpoint,
        region: 'us-east-1',
        forcePathStyle: true,
        credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
        maxAttempts: 1,
        ...config,
      })
      clients.push(client)
      return client
    },
    async close() {
      for (const c of clients) c.destroy()
      await gateway.close()
    },
  }
}

/** The gateway over the in-memory object layer, with alice's and bob's keys. */
export async function startHarness(options: Partial<S3GatewayOptions> = {}): Promise<Harness> {
  const objects = (options.objects as MemoryObjectLayer | undefined) ?? new MemoryObjectLayer()
  objects.addAccessKey(alice)
  objects.addAccessKey(bob)
  return { ...(await startGateway({ ...options, objects })), objects }
}

/** An http.Agent that sends every host name to 127.0.0.1 (virtual-hosted-style tests). */
export function loopbackAgent(): Agent {
  return new Agent({
    keepAlive: true,
    lookup: ((_host: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
      if (options?.all) callback(null, [{ address: '127.0.0.1', family: 4 }])
      else callback(null, '127.0.0.1', 4)
    }) as never,
  })
}

export async function collect(body: AsyncIterable<Uint8Array> | undefined): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const part of body ?? []) parts.push(Buffer.from(part))
  return Buffer.concat(parts)
}

/** Deterministic bytes (AES-CTR keyed by the seed; no Math.random, so a failure replays). */
export function patternBytes(length: number, seed = 1): Buffer {
  const key = Buffer.alloc(16)
  key.writeUInt32BE(seed >>> 0)
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16))
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()])
}

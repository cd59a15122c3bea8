// A TCP proxy in front of a catalog database that can hold back the server's
// replies. While they are held, a client that waits on an answer before sending
// more is stuck; so what the server has answered by then shows what the client sent
// without waiting (one flight), e.g. the COMMIT of a pipelined transaction.
import { createServer, connect, type Socket } from 'node:net'

export interface ReplyHoldingProxy {
  /** The catalog URL with the proxy's address in place of the server's. */
  readonly url: string
  /** From now on, replies are kept here instead of being forwarded. */
  hold(): void
  /** Forwards what was held and stops holding. */
  release(): void
  /** The held replies, as latin1 text (protocol tags such as `COMMIT\0` are readable in it). */
  heldText(): string
  /** Resolves once `predicate(heldText())` is true; rejects after `boundMs` (a liveness bound, not a speed check). */
  waitForHeld(predicate: (text: string) => boolean, boundMs?: number): Promise<void>
  close(): Promise<void>
}

export async function replyHoldingProxy(targetUrl: string): Promise<ReplyHoldingProxy> {
  const target = new URL(targetUrl)
  const pairs: { client: Socket; server: Socket; held: Buffer[] }[] = []
  let holding = false
  const proxy = createServer((client) => {
    const server = connect(Number(target.port), target.hostname)
    const pair = { client, server, held: [] as Buffer[] }
    pairs.push(pair)
    client.on('data', (data) => server.write(data))
    server.on('data', (data) => {
      if (holding) pair.held.push(data)
      else client.write(data)
    })
    const end = () => {
      client.destroy()
      server.destroy()
    }
    client.on('close', end)
    server.on('close', end)
    client.on('error', end)
    server.on('error', end)
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  const address = proxy.address()
  const url = new URL(targetUrl)
  url.hostname = '127.0.0.1'
  url.port = String(typeof address === 'object' && address !== null ? address.port : 0)
  const heldText = () => pairs.map((p) => Buffer.concat(p.held).toString('latin1')).join('')
  return {
    url: url.toString(),
    hold: () => {
      holding = true
    },
    release: () => {
      holding = false
      for (const pair of pairs) {
        for (const data of pair.held.splice(0)) pair.client.write(data)
      }
    },
    heldText,
    waitForHeld: async (predicate, boundMs = 20_000) => {
      const deadline = Date.now() + boundMs
      while (!predicate(heldText())) {
        if (Date.now() > deadline) throw new Error(`the held replies never matched (held: ${JSON.stringify(heldText())})`)
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    },
    close: async () => {
      for (const pair of pairs) {
        pair.client.destroy()
        pair.server.destroy()
      }
      await new Promise<void>((resolve) => proxy.close(() => resolve()))
    },
  }
}

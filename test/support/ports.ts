// A TCP port free on 127.0.0.1 now (for a server a test starts next: PostgreSQL, a
// daemon's --metrics). Another process may take it before the caller binds it; the
// callers that can retry do.
import { createServer } from 'node:net'

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

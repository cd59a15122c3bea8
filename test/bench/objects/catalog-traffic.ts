// What an idle cluster sends its catalog. 12 `blobfs node` processes in 4 racks run
// against an embedded catalog (PGlite, the one `blobfs up` starts) that this process
// serves behind a counting TCP proxy: every statement the nodes execute (simple
// Query, or Bind of a prepared statement) is tallied by its text, every explicit
// transaction by how long its client kept it open (from BEGIN to COMMIT/ROLLBACK
// passing the proxy: the embedded catalog serves nobody else meanwhile). The
// nodes are started, left alone to settle, then watched idle for a while.
// npx tsx test/bench/objects/catalog-traffic.ts [--quick] [--json]
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createConnection, createServer, type Socket } from 'node:net'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { startEmbeddedCatalog } from '../../../src/catalog/embedded.ts'
import { blobfsBin } from '../../support/cluster.ts'
import { emitJson, formatNumber, percentile, parseBenchArgs, printTable, type Figures } from '../report.ts'

const options = parseBenchArgs()
const nodeCount = 12
const racks = 4
const settleMs = options.quick ? 8_000 : 15_000
const watchMs = options.quick ? 15_000 : 30_000

interface Tally {
  statements: Map<string, number>
  transactions: number
  holdMs: number[]
}

const tally: Tally = { statements: new Map(), transactions: 0, holdMs: [] }
let counting = false

/** A statement's kind: its first words, whitespace collapsed, parameters as they are. */
function kindOf(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim()
  const lower = flat.toLowerCase()
  if (lower.startsWith('begin')) return 'BEGIN'
  if (lower === 'commit' || lower === 'rollback') return lower.toUpperCase()
  const with_ = /^WITH picked AS MATERIALIZED \( SELECT \S+(?:, \S+)* FROM (\w+)/i.exec(flat)
  if (with_) return `claim from ${with_[1]}`
  return flat.slice(0, 70)
}

/** Reads frontend messages off one client connection and tallies them. */
function watchClient(client: Socket, server: Socket): void {
  let pending: Buffer = Buffer.alloc(0)
  let startup = true
  const named = new Map<string, string>()
  let txStart: number | null = null
  const executed = (text: string) => {
    const kind = kindOf(text)
    if (kind === 'BEGIN') txStart = performance.now()
    if ((kind === 'COMMIT' || kind === 'ROLLBACK') && txStart !== null) {
      if (counting) {
        tally.transactions++
        tally.holdMs.push(performance.now() - txStart)
      }
      txStart = null
    }
    if (counting) tally.statements.set(kind, (tally.statements.get(kind) ?? 0) + 1)
  }
  client.on('data', (data: Buffer) => {
    server.write(data)
    pending = pending.length === 0 ? data : Buffer.concat([pending, data])
    for (;;) {
      if (startup) {
        if (pending.length < 4) return
        const length = pending.readInt32BE(0)
        if (pending.length < length) return
        pending = pending.subarray(length)
        startup = false
        continue
      }
      if (pending.length < 5) return
      const length = pending.readInt32BE(1)
      if (pending.length < 1 + length) return
      const type = String.fromCharCode(pending[0]!)
      const body = pending.subarray(5, 1 + length)
      pending = pending.subarray(1 + length)
      if (type === 'Q') {
        executed(body.toString('utf8', 0, body.indexOf(0)))
      } else if (type === 'P') {
        const nameEnd = body.indexOf(0)
        const textEnd = body.indexOf(0, nameEnd + 1)
        named.set(body.toString('utf8', 0, nameEnd), body.toString('utf8', nameEnd + 1, textEnd))
      } else if (type === 'B') {
        const portalEnd = body.indexOf(0)
        const nameEnd = body.indexOf(0, portalEnd + 1)
        executed(named.get(body.toString('utf8', portalEnd + 1, nameEnd)) ?? '?')
      }
    }
  })
}

async function main(): Promise<void> {
  const figures: Figures = { load_average_1m_at_start: loadavg()[0]! }
  const root = mkdtempSync(join(tmpdir(), 'blobfs-bench-catalog-traffic-'))
  const catalog = await startEmbeddedCatalog({ dataDir: join(root, 'catalog') })
  const proxy = createServer((client) => {
    const server = createConnection({ host: '127.0.0.1', port: catalog.port })
    watchClient(client, server)
    server.on('data', (data) => client.write(data))
    const end = () => {
      client.destroy()
      server.destroy()
    }
    client.on('close', end).on('error', end)
    server.on('close', end).on('error', end)
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  const proxyUrl = `postgres://postgres@127.0.0.1:${(proxy.address() as { port: number }).port}/postgres`
  const children: ChildProcess[] = []
  try {
    await Promise.all(
      Array.from({ length: nodeCount }, async (_, i) => {
        const child = spawn(
          process.execPath,
          [blobfsBin, 'node', '--data', join(root, `node-${i}`), '--listen', '127.0.0.1:0', '--rack', `rack-${i % racks}`, '--catalog', proxyUrl, '--block-size', '64MiB', '--log-level', 'info'],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        )
        children.push(child)
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`node ${i} did not start in 120 s`)), 120_000)
          child.once('exit', (code) => reject(new Error(`node ${i} exited (${code})`)))
          createInterface({ input: child.stderr! }).on('line', (line) => {
            if (line.includes('"msg":"storage node listening"')) {
              clearTimeout(timer)
              resolve()
            }
          })
          child.stdout!.resume()
        })
      }),
    )
    await new Promise((r) => setTimeout(r, settleMs))
    counting = true
    const started = performance.now()
    const units0 = catalog.stats().units
    await new Promise((r) => setTimeout(r, watchMs))
    counting = false
    const seconds = (performance.now() - started) / 1000
    const units = catalog.stats().units - units0
    const statements = [...tally.statements.values()].reduce((a, b) => a + b, 0)
    figures.watch_s = seconds
    figures.units_per_s = units / seconds
    figures.statements_per_s = statements / seconds
    figures.transactions_per_s = tally.transactions / seconds
    figures.tx_hold_ms_per_s = tally.holdMs.reduce((a, b) => a + b, 0) / seconds
    if (tally.holdMs.length > 0) {
      figures.tx_hold_p50_ms = percentile(tally.holdMs, 50)
      figures.tx_hold_p99_ms = percentile(tally.holdMs, 99)
      figures.tx_hold_max_ms = Math.max(...tally.holdMs)
    }
    figures.load_average_1m_at_end = loadavg()[0]!
    printTable(
      `Catalog traffic of ${nodeCount} idle nodes, ${formatNumber(seconds)} s (load ${formatNumber(Number(figures.load_average_1m_at_start))} -> ${formatNumber(Number(figures.load_average_1m_at_end))})`,
      ['statement', 'per second'],
      [...tally.statements.entries()].sort((a, b) => b[1] - a[1]).map(([kind, n]) => [`\`${kind}\``, n / seconds]),
    )
    printTable('Totals', ['measure', 'value'], [
      ['units of work (statements or transactions) per second', Number(figures.units_per_s)],
      ['statements per second', Number(figures.statements_per_s)],
      ['explicit transactions per second', Number(figures.transactions_per_s)],
      ['session held open by a transaction, ms per second', Number(figures.tx_hold_ms_per_s)],
      ['one transaction held open, p50 / p99 / max (ms)', tally.holdMs.length > 0 ? `${formatNumber(Number(figures.tx_hold_p50_ms))} / ${formatNumber(Number(figures.tx_hold_p99_ms))} / ${formatNumber(Number(figures.tx_hold_max_ms))}` : '-'],
    ])
    emitJson(options, figures)
  } finally {
    for (const child of children) child.kill('SIGTERM')
    await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? undefined : new Promise((r) => c.once('exit', r)))))
    proxy.close()
    await catalog.stop()
    rmSync(root, { recursive: true, force: true })
  }
}

await main()

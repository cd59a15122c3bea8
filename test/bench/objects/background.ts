// How much the cluster's own catalog traffic adds to a GET's time to first byte.
// A 4 KiB object is inline: its GET is one catalog lookup and nothing else. The
// embedded catalog is one PGlite session that serves one client's unit of work at a
// time (a transaction holds it from BEGIN to COMMIT, across round trips to a
// process that may not be running), and 12 nodes and the gateway keep it busy with
// heartbeats, registry refreshes and queue polls. Here the same GETs run in
// alternating phases with those processes running and SIGSTOPped (frozen, so they
// send nothing; SIGCONT resumes them), on one `blobfs up`, in one run.
// npx tsx test/bench/objects/background.ts [--quick] [--json]
import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Readable } from 'node:stream'
import { randomBytes } from 'node:crypto'
import { openCluster } from '../../../src/cli/cluster.ts'
import { startUp } from '../../support/up.ts'
import { emitJson, formatNumber, parseBenchArgs, percentile, printTable, type Figures } from '../report.ts'

const options = parseBenchArgs()
const phases = 6
const getsPerPhase = options.quick ? 100 : 200

/** The node and gateway processes `blobfs up` started (its direct children). */
function partsOf(upPid: number): number[] {
  const found: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const ppid = Number(readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ')[1])
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0')[2]
      if (ppid === upPid && (command === 'node' || command === 'gateway')) found.push(Number(entry))
    } catch {
      // the process went away
    }
  }
  return found
}

async function main(): Promise<void> {
  const figures: Figures = { load_average_1m_at_start: loadavg()[0]! }
  const root = mkdtempSync(join(tmpdir(), 'blobfs-bench-background-'))
  const up = await startUp(join(root, 'up'), ['--block-size', '256MiB'])
  const parts = partsOf(up.child.pid!)
  const signal = (name: 'SIGSTOP' | 'SIGCONT') => {
    for (const pid of parts) {
      try {
        process.kill(pid, name)
      } catch {
        // gone
      }
    }
  }
  try {
    const cluster = await openCluster(up.cluster.catalogUrl)
    try {
      cluster.membership.stop() // this process's own registry refresh would be background too
      await cluster.objects.createBucket('background', 'bench')
      const data = randomBytes(4096)
      const keys = Array.from({ length: 20 }, (_, i) => `small-${i}`)
      for (const key of keys) await cluster.objects.putObject('background', key, Readable.from([data]))
      const samples: Record<'running' | 'frozen', number[]> = { running: [], frozen: [] }
      for (let phase = 0; phase < phases; phase++) {
        const state = phase % 2 === 0 ? 'running' : 'frozen'
        signal(state === 'frozen' ? 'SIGSTOP' : 'SIGCONT')
        await new Promise((resolve) => setTimeout(resolve, 2000)) // let what was in flight finish
        for (let i = 0; i < getsPerPhase; i++) {
          const started = performance.now()
          for await (const _ of (await cluster.objects.getObject('background', keys[i % keys.length]!)).body) {
            // one inline piece
          }
          samples[state].push(performance.now() - started)
        }
      }
      signal('SIGCONT')
      for (const state of ['running', 'frozen'] as const) {
        figures[`get_4kib_nodes_${state}_p50_ms`] = percentile(samples[state], 50)
        figures[`get_4kib_nodes_${state}_p90_ms`] = percentile(samples[state], 90)
        figures[`get_4kib_nodes_${state}_p99_ms`] = percentile(samples[state], 99)
      }
    } finally {
      await cluster.close()
    }
  } finally {
    signal('SIGCONT')
    await up.stop()
    rmSync(root, { recursive: true, force: true })
  }
  figures.load_average_1m_at_end = loadavg()[0]!
  const f = (name: string) => formatNumber(figures[name] as number)
  printTable(`4 KiB (inline) GET, ${phases / 2} x ${getsPerPhase} per state, alternating; load ${f('load_average_1m_at_start')} at the start, ${f('load_average_1m_at_end')} at the end`, ['12 nodes and the gateway', 'p50 ms', 'p90 ms', 'p99 ms'], [
    ['running (heartbeats, polls)', figures.get_4kib_nodes_running_p50_ms as number, figures.get_4kib_nodes_running_p90_ms as number, figures.get_4kib_nodes_running_p99_ms as number],
    ['frozen (SIGSTOP)', figures.get_4kib_nodes_frozen_p50_ms as number, figures.get_4kib_nodes_frozen_p90_ms as number, figures.get_4kib_nodes_frozen_p99_ms as number],
  ])
  emitJson(options, figures)
}

await main()

// CPU time of the processes behind each benchmark column, from /proc: where the
// cycles go per GiB moved (the FUSE daemon, s3fs and the gateway, the storage nodes,
// the catalog). On a small shared machine throughput follows CPU, so this says why
// one column is faster than another better than the wall clock alone.
import { readdir, readFile } from 'node:fs/promises'

/** Process groups by name, e.g. { 'mount daemon': [pid], nodes: [pids...] }. */
export type ProcessGroups = Record<string, number[]>

const clockTicksPerSecond = 100 // getconf CLK_TCK on Linux x86-64 and arm64

interface ProcessInfo {
  pid: number
  ppid: number
  cmdline: string
}

async function processInfo(pid: number): Promise<ProcessInfo | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replaceAll('\0', ' ').trim()
    return { pid, ppid: Number(fields[1]), cmdline }
  } catch {
    return null // exited meanwhile
  }
}

export async function allProcesses(): Promise<ProcessInfo[]> {
  const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number)
  return (await Promise.all(pids.map(processInfo))).filter((p): p is ProcessInfo => p !== null)
}

/** `root` and every process below it. */
export async function descendants(root: number): Promise<ProcessInfo[]> {
  const all = await allProcesses()
  const children = new Map<number, ProcessInfo[]>()
  for (const p of all) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p])
  const out: ProcessInfo[] = []
  const queue = all.filter((p) => p.pid === root)
  while (queue.length > 0) {
    const p = queue.shift()!
    out.push(p)
    queue.push(...(children.get(p.pid) ?? []))
  }
  return out
}

/** The parts of a `blobfs up` (its pid is the root): the catalog is the up process itself. */
export async function blobfsUpGroups(upPid: number): Promise<ProcessGroups> {
  const groups: ProcessGroups = { 'mount daemon': [], gateway: [], nodes: [], catalog: [upPid] }
  for (const p of await descendants(upPid)) {
    if (/ node --data /.test(p.cmdline)) groups.nodes!.push(p.pid)
    else if (/ gateway /.test(p.cmdline)) groups.gateway!.push(p.pid)
    else if (/ mount /.test(p.cmdline)) groups['mount daemon']!.push(p.pid)
  }
  return groups
}

/** User + system CPU seconds used so far by each process (exited ones count 0). */
async function cpuSecondsOf(pids: number[]): Promise<Map<number, number>> {
  const out = new Map<number, number>()
  await Promise.all(
    pids.map(async (pid) => {
      try {
        const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
        // utime and stime are fields 14 and 15 of stat(5); fields[] starts at field 3.
        out.set(pid, (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond)
      } catch {
        out.set(pid, 0)
      }
    }),
  )
  return out
}

/** Starts counting; `stop()` returns CPU seconds per group used in between. */
export async function cpuMeter(groups: ProcessGroups): Promise<{ stop(): Promise<Record<string, number>> }> {
  const pids = Object.values(groups).flat()
  const before = await cpuSecondsOf(pids)
  return {
    async stop() {
      const after = await cpuSecondsOf(pids)
      const out: Record<string, number> = {}
      for (const [name, members] of Object.entries(groups)) {
        out[name] = members.reduce((sum, pid) => sum + Math.max(0, (after.get(pid) ?? 0) - (before.get(pid) ?? 0)), 0)
      }
      return out
    },
  }
}

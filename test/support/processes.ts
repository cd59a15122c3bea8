// Other processes' CPU time and children, read from Linux /proc: for benchmarks that
// report CPU seconds per GiB of each process of a cluster (test/bench/objects,
// test/bench/s3), since on a shared machine wall time says how loaded it was and
// CPU time says what each part of the path costs.
import { readdirSync, readFileSync } from 'node:fs'

/** User + system CPU seconds of process `pid` so far. */
export function cpuSecondsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100 // utime + stime, in clock ticks of 1/100 s
}

/** CPU seconds of the children this process has waited for (cutime + cstime), e.g. curl processes a benchmark ran. */
export function waitedChildrenCpuSeconds(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[13]) + Number(fields[14])) / 100
}

/** Direct children of `pid` whose argv[2] (after node and bin.mjs) is `command`, e.g. the `node` or `gateway` processes of `blobfs up`. */
export function childrenRunning(pid: number, command: string): number[] {
  const found: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const ppid = Number(readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ')[1])
      if (ppid === pid && readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0')[2] === command) found.push(Number(entry))
    } catch {
      // the process went away
    }
  }
  return found
}

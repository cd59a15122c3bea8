// Shared output for benchmark suites: a human table, and with --json one JSON
// object (every figure of the table) as the very last line printed.

export interface BenchOptions {
  quick: boolean
  json: boolean
}

export function parseBenchArgs(argv: string[] = process.argv.slice(2)): BenchOptions {
  return { quick: argv.includes('--quick'), json: argv.includes('--json') }
}

/** The value after `--name VALUE` on the command line, if given. */
export function benchFlag(name: string, argv: string[] = process.argv.slice(2)): string | undefined {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}

export type Figures = Record<string, number | string | boolean>

export function median(values: number[]): number {
  if (values.length === 0) throw new RangeError('median of no values')
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) throw new RangeError('percentile of no values')
  const sorted = [...values].sort((a, b) => a - b)
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[index]!
}

/** Prints rows as a Markdown table (ready to paste into docs/benchmarks.md). */
export function printTable(title: string, header: string[], rows: (string | number)[][]): void {
  console.log(`\n### ${title}\n`)
  console.log(`| ${header.join(' | ')} |`)
  console.log(`|${header.map(() => '---').join('|')}|`)
  for (const row of rows) console.log(`| ${row.map((c) => (typeof c === 'number' ? formatNumber(c) : c)).join(' | ')} |`)
}

export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n)
  if (Math.abs(n) >= 100) return n.toFixed(0)
  if (Math.abs(n) >= 10) return n.toFixed(1)
  return n.toFixed(2)
}

export function emitJson(options: BenchOptions, figures: Figures): void {
  if (options.json) console.log(JSON.stringify(figures))
}

// npm run bench -- SUITE [--quick] [--json]
// Runs test/bench/SUITE/index.ts. With --json the suite prints, as its last line,
// one JSON object holding every figure of its table (see test/bench/report.ts).
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const suites = readdirSync(here, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(here, d.name, 'index.ts')))
  .map((d) => d.name)
const [suite, ...rest] = process.argv.slice(2)
if (!suite || suite === '--help' || suite === '-h') {
  console.log(`usage: npm run bench -- SUITE [--quick] [--json]\n\nsuites: ${suites.join(', ')}\n\n` +
    `examples:\n  npm run bench -- codec\n  npm run bench -- codec --quick --json`)
  process.exit(suite ? 0 : 2)
}
if (!suites.includes(suite)) {
  console.error(`unknown benchmark suite '${suite}'; suites: ${suites.join(', ')}`)
  process.exit(2)
}
const result = spawnSync(process.execPath, ['--import', 'tsx', join(here, suite, 'index.ts'), ...rest], { stdio: 'inherit' })
process.exit(result.status ?? 1)

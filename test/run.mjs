// Runs every test file (test/**/*.test.ts, not benchmarks) with node's test runner
// through tsx, so the runner's summary is printed. Arguments narrow the set:
//   node test/run.mjs test/codec        # one folder
//   node test/run.mjs test/codec/rs.test.ts
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'

function collect(path, out) {
  const stat = statSync(path)
  if (stat.isFile()) {
    if (path.endsWith('.test.ts')) out.push(path)
    return out
  }
  for (const entry of readdirSync(path).sort()) {
    if (entry === 'node_modules' || entry === 'bench') continue
    collect(join(path, entry), out)
  }
  return out
}

const roots = process.argv.slice(2).filter((a) => !a.startsWith('--'))
const flags = process.argv.slice(2).filter((a) => a.startsWith('--'))
const files = (roots.length > 0 ? roots : ['test']).flatMap((r) => collect(resolve(r), []))
if (files.length === 0) {
  console.error('no test files found under', roots.join(' ') || 'test')
  process.exit(1)
}
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...flags, ...files],
  { stdio: 'inherit' },
)
process.exit(result.status ?? 1)

// The package's root directory, found from this module whether it runs from src/
// or from the compiled tree in node_modules/.cache/blobfs/ (src/cli/compiled.mjs):
// the nearest directory above that holds blobfs's package.json.
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

function findPackageRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json')
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'blobfs') return dir
    if (dirname(dir) === dir) throw new Error(`blobfs's package.json was not found above ${fileURLToPath(import.meta.url)}`)
  }
}

export const packageRoot = findPackageRoot()

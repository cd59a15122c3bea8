// docs/posix-semantics.md promises that every POSIX behaviour it lists is held by a
// test, and names that test. This keeps the promise checkable: every row of a table
// with a Test column names at least one test, and every name it gives (FILE: *title*,
// where "..." elides part of the title) is the title of a test that exists in that file.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../../', import.meta.url))
const docPath = 'docs/posix-semantics.md'

/** The short names the page uses for test files. */
const testFiles: Record<string, string> = {
  'fs-namespace': 'test/fuse/fs-namespace.test.ts',
  'fs-data': 'test/fuse/fs-data.test.ts',
  adapter: 'test/fuse/adapter.test.ts',
  'mount-basic': 'test/fuse/mount-basic.test.ts',
  'mount-tools': 'test/fuse/mount-tools.test.ts',
  'mount-cache': 'test/fuse/mount-cache.test.ts',
  'mount-attrs': 'test/fuse/mount-attrs.test.ts',
  'mount-cluster': 'test/fuse/mount-cluster.test.ts',
  'mount-helper': 'test/fuse/mount-helper.test.ts',
  'cli/up': 'test/cli/up.test.ts',
}

/** The titles of the tests declared in a file: test('...'), test("..."), test(`...`). */
export function testTitles(source: string): string[] {
  const titles: string[] = []
  for (const match of source.matchAll(/\btest\(\s*(['"`])((?:\\.|(?!\1)[^\\])*)\1/g)) {
    titles.push(match[2]!.replace(/\\(.)/g, '$1'))
  }
  return titles
}

/** A reference matches a title when its parts, split at "...", appear in order and the first starts it. */
export function refersTo(reference: string, title: string): boolean {
  const parts = reference.split(/\.\.\.|…/).map((part) => part.trim().replace(/^,\s*|,\s*$/g, '').trim())
  let at = 0
  for (const [i, part] of parts.entries()) {
    if (part === '') continue
    const found = title.indexOf(part, at)
    if (found < 0 || (i === 0 && found !== 0)) return false
    at = found + part.length
  }
  return parts.some((part) => part !== '')
}

interface Reference {
  line: number
  file: string
  title: string
}

/** Every FILE: *title* reference in a piece of text; a file name carries over to the titles after it. */
export function referencesIn(text: string, line: number): Reference[] {
  const labels = Object.keys(testFiles).map((label) => label.replace('/', '\\/')).join('|')
  const out: Reference[] = []
  let file: string | null = null
  for (const match of text.matchAll(new RegExp(`(?<![\\w-])(${labels}):\\s*|\\*([^*]+)\\*`, 'g'))) {
    if (match[1]) file = match[1]
    else if (file) out.push({ line, file, title: match[2]! })
  }
  return out
}

function tableRows(doc: string): { line: number; behaviour: string; testCell: string }[] {
  const rows: { line: number; behaviour: string; testCell: string }[] = []
  let testColumn = -1
  doc.split('\n').forEach((text, index) => {
    if (!text.startsWith('|')) {
      testColumn = -1
      return
    }
    const cells = text.replace(/^\||\|$/g, '').split('|').map((cell) => cell.trim())
    if (testColumn < 0) {
      testColumn = cells.indexOf('Test')
      if (testColumn < 0) testColumn = -2 // a table without a Test column
      return
    }
    if (testColumn === -2 || /^-+$/.test(cells[0] ?? '')) return
    rows.push({ line: index + 1, behaviour: cells[0]!, testCell: cells.slice(testColumn).join('|') })
  })
  return rows
}

test('posix-semantics.md: every behaviour names a test, and every test it names exists', () => {
  const doc = readFileSync(root + docPath, 'utf8')
  const titles = new Map(Object.entries(testFiles).map(([label, path]) => [label, testTitles(readFileSync(root + path, 'utf8'))]))
  for (const [label, list] of titles) assert.ok(list.length > 0, `no test titles found in ${testFiles[label]}`)

  const rows = tableRows(doc)
  assert.ok(rows.length >= 50, `only ${rows.length} behaviour rows found: is the page still tables with a Test column?`)
  const problems: string[] = []
  for (const row of rows) {
    if (referencesIn(row.testCell, row.line).length === 0) problems.push(`line ${row.line} (${row.behaviour}): names no test`)
  }
  const references = doc.split('\n').flatMap((text, index) => referencesIn(text, index + 1))
  for (const ref of references) {
    if (!titles.get(ref.file)!.some((title) => refersTo(ref.title, title))) {
      problems.push(`line ${ref.line}: ${ref.file}: "${ref.title}" is no test in ${testFiles[ref.file]}`)
    }
  }
  assert.deepEqual(problems, [])
})

test('the checker itself: titles are read with their quotes, and "..." elides', () => {
  assert.deepEqual(testTitles(`test('it\\'s one', () => {})\ntest("two: a, b", async () => {})\n  test(\`three\`, { timeout }, f)`), ["it's one", 'two: a, b', 'three'])
  assert.ok(refersTo('mount: what the kernel sees ...', 'mount: what the kernel sees or is refused: FIFOs'))
  assert.ok(refersTo('what ..., FIFOs, ...', 'what the kernel sees or is refused: nlink, FIFOs, xattrs'))
  assert.ok(!refersTo('the kernel sees', 'mount: what the kernel sees'), 'a reference starts where the title starts')
  assert.ok(!refersTo('what ..., sockets, ...', 'what the kernel sees or is refused: nlink, FIFOs'))
  assert.deepEqual(
    referencesIn('fs-data: *a*, *b ...*; mount-basic: *c* (and more)', 7).map((r) => `${r.file}:${r.title}`),
    ['fs-data:a', 'fs-data:b ...', 'mount-basic:c'],
  )
})

// Real mounts on /dev/fuse: libfuse 2.9 follows a successful create, mkdir, chmod,
// chown, truncate or utimens with a getattr of the same path, to fill its reply to the
// kernel. The patched binding answers that getattr from the attributes the
// operation replied with (src/fuse/binding/build.mjs, attrMemoPatches), so it
// never reaches the daemon; and what it answers is always that path's attributes
// for that request, never another's, never after a failure.
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { bindingAnswersFollowUpGetattr } from '../../src/fuse/binding.ts'
import { freePort } from '../support/ports.ts'
import { countsByOp, fuseOpsCounts, ok, sh, withMount } from './helpers/mount.ts'

const timeout = 120_000

/** `blobfs_fuse_followup_getattr_answered_total` by operation. */
function followUps(port: number): Promise<Record<string, number>> {
  return countsByOp(port, 'blobfs_fuse_followup_getattr_answered_total')
}

const delta = (after: Record<string, number>, before: Record<string, number>, op: string): number => (after[op] ?? 0) - (before[op] ?? 0)

test('the binding built here answers the follow-up getattr (npm run build:fuse)', () => {
  assert.equal(bindingAnswersFollowUpGetattr(), true)
})

/**
 * Python that makes `calls` on N files, one kind at a time, and prints how many
 * getattrs reached the daemon during each kind (its --metrics read from inside, so
 * the interpreter's own start-up calls on the mount are not counted).
 */
function countingScript(port: number, files: number, calls: Record<string, string>): string {
  const steps = Object.entries(calls).map(([name, call]) => `step(${JSON.stringify(name)}, lambda p, i: ${call})`)
  return [
    'import json, os, re, urllib.request',
    `files = ${files}`,
    'out = {}',
    'def getattrs():',
    `    text = urllib.request.urlopen('http://127.0.0.1:${port}/metrics').read().decode()`,
    '    m = re.search(r\'^blobfs_fuse_ops_total{op="getattr"} (\\d+)$\', text, re.M)',
    '    return int(m.group(1)) if m else 0',
    'def step(name, call):',
    '    before = getattrs()',
    '    for i in range(files):',
    "        call('d/f%d' % i, i)",
    '    out[name] = getattrs() - before',
    ...steps,
    'print(json.dumps(out))',
  ].join('\n')
}

test('mount: create, chmod, chown, truncate, utime and mkdir cost no getattr of their own: only the kernel\'s (a lookup of each new name, chown\'s check for set-id bits) reach the daemon', { timeout }, async () => {
  const port = await freePort()
  const files = 12
  await withMount(
    async (_mount, { mnt, work }) => {
      await ok('mkdir d && stat d > /dev/null', { cwd: mnt })
      const answeredBefore = await followUps(port)
      const before = await fuseOpsCounts(port)
      await writeFile(join(work, 'count.py'), countingScript(port, files, {
        create: 'os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))',
        chmod: 'os.chmod(p, 0o640)',
        chown: 'os.chown(p, 1000 + i, 2000 + i)',
        truncate: 'os.truncate(p, 3 + i)',
        utimens: 'os.utime(p, ns=(1500000000000000000, 1600000000000000000 + i * 1000000000))',
        mkdir: "os.mkdir(p + '.d', 0o750)",
      }))
      // Path-based calls, each one FUSE request: the names stay in the kernel's cache (TTL 60 s).
      const getattrs = JSON.parse(await ok(`python3 '${join(work, 'count.py')}'`, { cwd: mnt })) as Record<string, number>
      const after = await fuseOpsCounts(port)
      const answered = await followUps(port)
      // What is left is the kernel's own: the lookup of each new name; the directory's
      // attributes, which each create or mkdir makes stale, asked again by the next call's path
      // walk (so the first chmod pays for the last create); chown's look at the set-id
      // bits it must clear. Before the patch each of these was `files` more: libfuse's
      // getattr after each call.
      assert.deepEqual(getattrs, { create: 2 * files - 1, chmod: 1, chown: files, truncate: 0, utimens: 0, mkdir: 2 * files - 1 }, 'getattrs that reached the daemon, by call')
      for (const op of ['create', 'chmod', 'chown', 'truncate', 'utimens', 'mkdir']) {
        assert.equal(delta(after, before, op), files, `${op} per file`)
        assert.equal(delta(answered, answeredBefore, op), files, `${op}'s follow-up getattr answered with its reply, per file`)
      }
      const stats = await ok(`for i in $(seq 0 ${files - 1}); do stat -c '%a %u %g %s %Y' d/f$i; stat -c '%F %a' d/f$i.d; done`, { cwd: mnt })
      assert.deepEqual(
        stats.trim().split('\n'),
        Array.from({ length: files }, (_, i) => [`640 ${1000 + i} ${2000 + i} ${3 + i} ${1600000000 + i}`, 'directory 750']).flat(),
      )
    },
    ['--cache-ttl-ms', '60000', '--metrics', `127.0.0.1:${port}`],
  )
})

test('mount: stat right after chmod, chown, touch -d, truncate and a write shows the new values, asked of the kernel or of the daemon', { timeout }, async () => {
  for (const ttl of ['60000', '0']) {
    await withMount(
      async (_mount, { mnt }) => {
        const out = await ok(
          [
            'printf hello > f',
            "stat -c '%a %u %g %s' f",
            'chmod 751 f',
            "stat -c '%a' f",
            'chown 4242:4343 f',
            "stat -c '%u %g' f",
            'touch -d @1234567890 f',
            "stat -c '%Y' f",
            'touch -m -d @1234567999 f',
            "stat -c '%Y' f",
            'truncate -s 2 f',
            "stat -c '%s' f",
            'truncate -s 10000 f',
            "stat -c '%s' f",
            'printf abc >> f',
            "stat -c '%s %a %u %g' f",
            "python3 -c \"import os; fd = os.open('f', os.O_RDWR); os.ftruncate(fd, 7); print(os.fstat(fd).st_size); os.close(fd)\"",
            "stat -c '%s' f",
          ].join(' && '),
          { cwd: mnt },
        )
        assert.deepEqual(out.trim().split('\n'), ['644 0 0 5', '751', '4242 4343', '1234567890', '1234567999', '2', '10000', '10003 751 4242 4343', '7', '7'], `ttl ${ttl}`)
      },
      ['--cache-ttl-ms', ttl],
    )
  }
})

test('mount: an operation that fails leaves nothing behind: the next stat of that path or another is the daemon\'s answer', { timeout }, async () => {
  const port = await freePort()
  await withMount(
    async (mount, { mnt }) => {
      await ok('printf a > a && printf bb > b && chmod 600 a && chmod 604 b', { cwd: mnt })
      // The kernel's cache is bypassed below (TTL 0): every stat is a getattr the daemon answers, or a memo would.
      await mount.request({ cmd: 'fault', op: 'updateAttributes', code: 'AccessDenied' })
      const failed = await sh('chmod 700 a; chown 7:7 b; touch -d @1000000000 a; stat -c "%n %a %u %Y" b a b a', { cwd: mnt })
      await mount.request({ cmd: 'fault', op: null })
      assert.match(failed.stderr, /chmod: changing permissions of 'a': Permission denied/)
      assert.match(failed.stderr, /chown: changing ownership of 'b': Permission denied/)
      assert.match(failed.stderr, /touch: setting times of 'a': Permission denied/)
      const lines = failed.stdout.trim().split('\n')
      assert.equal(lines.length, 4)
      assert.match(lines[0]!, /^b 604 0 \d+$/)
      assert.match(lines[1]!, /^a 600 0 \d+$/)
      assert.notEqual(lines[1]!.split(' ')[3], '1000000000')
      assert.equal(lines[2], lines[0])
      assert.equal(lines[3], lines[1])
      // A missing path: the lookup fails before any chmod; the next stat of another path is right.
      const missing = await sh('chmod 700 nothing; stat -c "%n %a" a', { cwd: mnt })
      assert.match(missing.stderr, /No such file or directory/)
      assert.equal(missing.stdout.trim(), 'a 600')
      // After a success whose attributes were answered, the other path is still its own.
      assert.deepEqual((await ok('chmod 640 a && stat -c "%n %a" b a b', { cwd: mnt })).trim().split('\n'), ['b 604', 'a 640', 'b 604'])
      // One process, so one requester: a failed chmod, then the stat of that path and of another.
      await mount.request({ cmd: 'fault', op: 'updateAttributes', code: 'AccessDenied' })
      const oneProcess = await sh(
        `python3 -c "
import os
try:
    os.chmod('a', 0o755)
except PermissionError:
    print('refused')
print('%o %o' % (os.stat('a').st_mode & 0o7777, os.stat('b').st_mode & 0o7777))
"`,
        { cwd: mnt },
      )
      await mount.request({ cmd: 'fault', op: null })
      assert.equal(oneProcess.stdout, 'refused\n640 604\n', oneProcess.stderr)
      assert.equal(
        await ok(`python3 -c "import os; os.chmod('a', 0o620); os.chown('b', 9, 9); print('%o %d %o %d' % (os.stat('b').st_mode & 0o7777, os.stat('b').st_uid, os.stat('a').st_mode & 0o7777, os.stat('a').st_uid))"`, { cwd: mnt }),
        '604 9 620 0\n',
      )
      // Every one of those stats was the daemon's (TTL 0), none answered for another path.
      assert.ok(((await fuseOpsCounts(port)).getattr ?? 0) > 0)
    },
    ['--cache-ttl-ms', '0', '--metrics', `127.0.0.1:${port}`],
  )
})

test('mount: chmod, chown and touch from several processes at once on their own paths: every stat shows that path\'s own values', { timeout }, async () => {
  await withMount(
    async (_mount, { mnt }) => {
      const workers = 4
      const rounds = 25
      await ok(`for w in $(seq 1 ${workers}); do printf x > f$w; done`, { cwd: mnt })
      // Worker w gives its file modes, owners and times no other worker uses, and checks each at once.
      const script = (w: number): string =>
        `for r in $(seq 1 ${rounds}); do ` +
        `m=$(( (r % 2) * 20 + 6${w}${w} )); chmod $m f${w} || exit 1; a=$(stat -c %a f${w}); [ "$a" = "$m" ] || { echo "f${w} mode $a want $m"; exit 1; }; ` +
        `u=$(( ${w} * 1000 + r )); chown $u:$u f${w} || exit 1; o=$(stat -c '%u %g' f${w}); [ "$o" = "$u $u" ] || { echo "f${w} owner $o want $u"; exit 1; }; ` +
        `t=$(( 1000000000 + ${w} * 100000 + r )); touch -d @$t f${w} || exit 1; y=$(stat -c %Y f${w}); [ "$y" = "$t" ] || { echo "f${w} mtime $y want $t"; exit 1; }; ` +
        'done'
      const runs = await Promise.all(Array.from({ length: workers }, (_, i) => sh(script(i + 1), { cwd: mnt, timeoutMs: 100_000 })))
      for (const [i, run] of runs.entries()) assert.equal(run.code, 0, `worker ${i + 1}: ${run.stdout}${run.stderr}`)
    },
    ['--cache-ttl-ms', '0'],
  )
})

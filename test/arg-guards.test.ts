/**
 * An argument never becomes an option, and never carries a second line past a
 * pattern: the leading-"-" guard covers every argv element that begins with a
 * template (not only whole-template ones), and the Unicode line separators
 * count as control characters.
 */
import t from 'tap'
import { join } from 'node:path'
import { ActionFileSchema, PackCatalog, prepareInvocation, validateArgs, type ActionFile } from '@writ/packs'
import { REPO_ROOT } from './helpers/runner-harness.js'

const EMISAR = join(REPO_ROOT, '..', 'shared', 'emisar-packs')

function execAction(argv: string[], args: unknown[]): ActionFile {
  return ActionFileSchema.parse({
    schema_version: 1, id: 'guard.test', title: 'guard', kind: 'exec', risk: 'low', args,
    execution: { command: { binary: 'docker', argv }, timeout: '5s' },
  })
}

t.test('an element that begins with a template refuses a value starting with "-"', async (t) => {
  const mount = execAction(['run', '-v', '{{ args.a }}:rw', 'img'], [{ name: 'a', type: 'string', required: true }])
  const bad = prepareInvocation(mount, { a: '-x' })
  t.equal(bad.ok, false, '"{{ args.a }}:rw" with a = "-x" is refused')
  if (!bad.ok) t.match(bad.errors, [{ arg: 'a', code: 'looks_like_flag', message: /may not start with "-"/ }])
  const good = prepareInvocation(mount, { a: '/data' })
  t.ok(good.ok && good.invocation.kind === 'exec' && good.invocation.argv.includes('/data:rw'), 'a plain value renders into the element')

  const twoParts = execAction(['{{ args.a }}{{ args.b }}'], [{ name: 'a', type: 'string', default: '' }, { name: 'b', type: 'string', required: true }])
  t.equal(prepareInvocation(twoParts, { b: '--help' }).ok, false, 'an empty first part does not let the second one lead with "-"')

  const afterDashes = execAction(['run', '--', '{{ args.a }}:rw'], [{ name: 'a', type: 'string', required: true }])
  const allowed = prepareInvocation(afterDashes, { a: '-x' })
  t.ok(allowed.ok && allowed.invocation.kind === 'exec' && allowed.invocation.argv.at(-1) === '-x:rw', 'after a literal "--" it is data')

  const inside = execAction(['--name={{ args.a }}'], [{ name: 'a', type: 'string', required: true }])
  t.ok(prepareInvocation(inside, { a: '-x' }).ok, 'an element that begins with literal text is not guarded')

  const number = execAction(['kill', '{{ args.pid }}'], [{ name: 'pid', type: 'integer', required: true }])
  t.equal(prepareInvocation(number, { pid: -1 }).ok, false, 'a negative number in its own element is an option too ("kill -1")')
})

t.test('the emisar catalog: which actions the wider guard covers, and the two it closes', async (t) => {
  const catalog = PackCatalog.fromDirs([EMISAR])
  const covered: string[] = []
  for (const { action } of catalog.allActions()) {
    if (action.spec.kind !== 'exec') continue
    const argv = action.spec.execution.command.argv
    const dd = argv.indexOf('--')
    if (argv.some((el, i) => (dd < 0 || i < dd) && el.startsWith('{{') && !/^\{\{[^}]*\}\}$/.test(el))) covered.push(action.id)
  }
  t.comment(`emisar exec actions with an element that begins with a template and goes on: ${covered.length}: ${covered.join(', ')}`)
  t.ok(covered.includes('nfs.exportfs_unexport_path') && covered.includes('redis.cluster_check'))
  const unexport = catalog.lookup('nfs.exportfs_unexport_path')
  t.ok(unexport.ok)
  if (unexport.ok) {
    // exportfs -u "{{ client }}:{{ path }}": the client pattern allows a leading "-".
    const r = prepareInvocation(unexport.action.spec, { client: '-r', path: '/srv/nfs' }, unexport.pack.dir)
    t.equal(r.ok, false, 'exportfs -u "-r:/srv/nfs" is refused (it would be read as exportfs -r)')
    t.ok(prepareInvocation(unexport.action.spec, { client: '10.0.0.0/24', path: '/srv/nfs' }, unexport.pack.dir).ok, 'a real client still works')
  }
})

t.test('U+2028 / U+2029 (and the C1 controls) are control characters, even under an inline (?m)', async (t) => {
  const specs = [{ name: 'unit', type: 'string' as const, required: false, validation: { pattern: '(?m)^[a-z.-]+$' } }]
  t.ok(validateArgs(specs, { unit: 'nginx.service' }).ok, 'an ordinary value passes')
  for (const sep of ['\u2028', '\u2029', '\u0085']) {
    const r = validateArgs(specs, { unit: `nginx${sep}--help` })
    t.equal(r.ok, false, `U+${sep.codePointAt(0)!.toString(16).padStart(4, '0').toUpperCase()} is refused`)
    if (!r.ok) t.equal(r.errors[0]?.code, 'control_chars')
  }
  // The whole value must match whatever flags the pack's pattern carries.
  const multi = [{ name: 'x', type: 'string' as const, required: false, validation: { pattern: '(?m)^ok$' } }]
  t.equal(validateArgs(multi, { x: 'ok\u2028rm' }).ok, false)
})

t.test('a bidi override or isolate in an argument is refused like a control character, on both daemons (one rule)', async (t) => {
  const specs = [
    { name: 'path', type: 'string' as const, required: false },
    { name: 'token', type: 'string' as const, required: false, sensitive: true },
  ]
  for (const ch of ['\u202e', '\u202d', '\u2066', '\u2067', '\u2068', '\u2069', '\u200f', '\u061c']) {
    const code = `U+${ch.codePointAt(0)!.toString(16).padStart(4, '0').toUpperCase()}`
    const r = validateArgs(specs, { path: `/var/log/${ch}gol.txt` })
    t.equal(r.ok, false, `${code} is refused`)
    if (!r.ok) t.match(r.errors[0], { arg: 'path', code: 'control_chars', message: new RegExp(`got ${code.replace('+', '\\+')}.* at character 9`) }, `${code}: the message names the code point and where`)
    const secret = validateArgs(specs, { token: `s3cret${ch}` })
    if (!secret.ok) t.match(secret.errors[0]?.message, /got \[redacted\]$/, 'a sensitive value gives nothing away, not even where')
    else t.fail(`${code} in a sensitive value is refused`)
  }
  t.ok(validateArgs(specs, { path: '/var/log/שלום.txt' }).ok, 'right-to-left letters themselves are text, not formatting')
})

/**
 * A command line that reaches a shell or an interpreter anywhere — as the
 * binary, behind a wrapper, through `find -exec`, or by a versioned or full
 * path — is a shell action: `packs check` names it with the reason, and a
 * runner without allowShellPacks refuses it before anything runs.
 */
import t from 'tap'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadPacks, shellReasons } from '@writ/packs'
import { signWrit } from '@writ/packs/protocol'
import { REPO_ROOT, startRunnerHarness } from './helpers/runner-harness.js'
import { eventually } from './helpers/cp-fake-runner.js'

/** The issue's list: each wrapper put in front of `sh -c` with an argument in the shell text. */
const WRAPPED: Array<{ name: string, binary: string, argv: string[] }> = [
  { name: 'timeout', binary: 'timeout', argv: ['5', 'sh', '-c', 'echo {{ args.m }}'] },
  { name: 'env', binary: 'env', argv: ['LANG=C', 'sh', '-c', 'echo {{ args.m }}'] },
  { name: 'nice', binary: 'nice', argv: ['-n', '10', 'sh', '-c', 'echo {{ args.m }}'] },
  { name: 'nohup', binary: 'nohup', argv: ['bash', '-c', 'echo {{ args.m }}'] },
  { name: 'setsid', binary: '/usr/bin/setsid', argv: ['dash', '-c', 'echo {{ args.m }}'] },
  { name: 'stdbuf', binary: 'stdbuf', argv: ['-oL', 'sh', '-c', 'echo {{ args.m }}'] },
  { name: 'sudo', binary: 'sudo', argv: ['-n', '/bin/sh', '-c', 'echo {{ args.m }}'] },
  { name: 'doas', binary: 'doas', argv: ['sh', '-c', 'echo {{ args.m }}'] },
  { name: 'xargs', binary: 'xargs', argv: ['-0', 'sh', '-c', 'echo {{ args.m }}'] },
  { name: 'nsenter', binary: 'nsenter', argv: ['-t', '1', '-m', '-u', '-i', '-n', '-p', 'sh', '-c', 'echo {{ args.m }}'] },
  { name: 'chroot', binary: 'chroot', argv: ['/host', 'sh', '-c', 'echo {{ args.m }}'] },
  { name: 'unshare', binary: 'unshare', argv: ['-r', 'zsh', '-c', 'echo {{ args.m }}'] },
  { name: 'ionice', binary: 'ionice', argv: ['-c3', 'sh', '-c', 'echo {{ args.m }}'] },
  { name: 'taskset', binary: 'taskset', argv: ['-c', '0', 'sh', '-c', 'echo {{ args.m }}'] },
  { name: 'busybox', binary: 'busybox', argv: ['sh', '-c', 'echo {{ args.m }}'] },
  { name: 'find -exec', binary: 'find', argv: ['/var/log', '-name', '*.log', '-exec', 'sh', '-c', 'echo {{ args.m }}', ';'] },
  { name: 'versioned interpreter', binary: 'python3.11', argv: ['-c', 'print("{{ args.m }}")'] },
  { name: 'interpreter by path', binary: '/usr/bin/perl', argv: ['-e', 'print "{{ args.m }}"'] },
  { name: 'versioned interpreter behind a wrapper', binary: 'timeout', argv: ['5', '/opt/python/bin/python3.12', '-c', 'print(1)'] },
  { name: 'wrapper whose program is an argument', binary: 'timeout', argv: ['5', '{{ args.m }}'] },
  { name: 'find -exec whose program is an argument', binary: 'find', argv: ['/tmp', '-exec', '{{ args.m }}', '{}', ';'] },
  { name: 'wrapper behind a wrapper', binary: 'sudo', argv: ['nice', 'env', 'FOO=1', 'ruby', '-e', 'puts 1'] },
  { name: 'shell in an --opt=value element', binary: 'tar', argv: ['-xf', 'a.tar', '--to-command=/bin/bash'] },
]

/** Command lines that only look like it: they must stay plain exec actions. */
const PLAIN: Array<{ name: string, binary: string, argv: string[] }> = [
  { name: 'nomad node status', binary: 'nomad', argv: ['node', 'status', '-verbose'] },
  { name: 'iscsiadm -m node', binary: 'iscsiadm', argv: ['-m', 'node'] },
  { name: 'systemctl restart ssh', binary: 'systemctl', argv: ['restart', 'ssh'] },
  { name: 'find without -exec', binary: 'find', argv: ['{{ args.m }}', '-maxdepth', '2', '-name', '*.log', '-print'] },
  { name: 'docker logs', binary: 'docker', argv: ['logs', '--tail', '100', '{{ args.m }}'] },
  { name: 'journalctl', binary: '/usr/bin/journalctl', argv: ['-u', '{{ args.m }}', '--no-pager'] },
]

function actionYaml(id: string, binary: string, argv: string[]): string {
  return `schema_version: 1
id: ${id}
title: ${id}
kind: exec
risk: low
args:
  - name: m
    type: string
    required: true
    validation: { max_length: 200 }
execution:
  command:
    binary: ${JSON.stringify(binary)}
    argv: ${JSON.stringify(argv)}
  timeout: 10s
`
}

function writePack(dir: string, id: string, lines: Array<{ binary: string, argv: string[] }>): void {
  mkdirSync(join(dir, 'actions'), { recursive: true })
  writeFileSync(join(dir, 'pack.yaml'), `schema_version: 1\nid: ${id}\nname: ${id}\nversion: 1.0.0\nactions:\n${lines.map((_, i) => `  - actions/a${i}.yaml`).join('\n')}\n`)
  lines.forEach((l, i) => writeFileSync(join(dir, 'actions', `a${i}.yaml`), actionYaml(`${id}.a${i}`, l.binary, l.argv)))
}

t.test('every wrapper, find -exec, versioned and path interpreters make a shell action, with the reason', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'writ-shells-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writePack(join(dir, 'wrapped'), 'wrapped', WRAPPED)
  writePack(join(dir, 'plain'), 'plain', PLAIN)
  const result = loadPacks([dir])
  t.same(result.errors, [], 'every test action loads')
  const wrapped = result.packs.find((p) => p.id === 'wrapped')!
  WRAPPED.forEach((w, i) => {
    const a = wrapped.actions.get(`wrapped.a${i}`)!
    t.equal(a.usesShell, true, `${w.name}: ${w.binary} ${w.argv.join(' ')} is a shell action`)
    t.ok(a.shellReasons.length > 0, `${w.name}: reason given (${a.shellReasons.join('; ')})`)
  })
  t.match(wrapped.actions.get('wrapped.a0')!.shellReasons.join(), /argv\[1\] "sh" names a shell \(sh\) run by the wrapper "timeout"/)
  t.match(wrapped.actions.get('wrapped.a16')!.shellReasons.join(), /the binary "python3\.11" is an interpreter \(python\)/)
  t.match(wrapped.actions.get('wrapped.a19')!.shellReasons.join(), /argument could choose the program/)
  const plain = result.packs.find((p) => p.id === 'plain')!
  PLAIN.forEach((p, i) => t.same(plain.actions.get(`plain.a${i}`)!.shellReasons, [], `${p.name} stays a plain exec action`))
})

t.test('a database client with a shell escape, given a command an argument writes, is a shell action', async (t) => {
  const escapes: Array<[string, string, string[], RegExp]> = [
    ['psql -c {{sql}}', 'psql', ['-XAt', '-c', '{{ args.sql }}'], /argv\[2\] "\{\{ args\.sql \}\}" is a command psql runs, and psql's \\! runs a shell/],
    ['psql, SQL around the argument', '/usr/bin/psql', ['-XAt', '-c', "ANALYZE VERBOSE {{ args.table }};"], /is a command psql runs/],
    ['psql -XAtc cluster', 'psql', ['-XAtc', '{{ args.sql }}'], /is a command psql runs/],
    ['psql --command=', 'psql', ['--command={{ args.sql }}'], /is a command psql runs/],
    ['psql -f', 'psql', ['-f', '{{ args.file }}'], /is a command psql runs/],
    ['versioned mysql -e', 'mysql8.0', ['-N', '-e', 'SHOW DATABASES LIKE "{{ args.m }}"'], /mysql's \\! and system run a shell/],
    ['mariadb --execute=', 'mariadb', ['--execute=SELECT {{ args.m }}'], /is a command mariadb runs/],
    ['sqlite3 SQL', 'sqlite3', ['-readonly', '/var/lib/app.db', 'SELECT * FROM t WHERE id = {{ args.m }}'], /may be a command sqlite3 runs/],
    ['mongosh --eval', 'mongosh', ['--quiet', '--eval', 'db.getCollection("{{ args.m }}").stats()'], /mongosh's its JavaScript runs anything|is a command mongosh runs/],
  ]
  for (const [name, binary, argv, why] of escapes) t.match(shellReasons(binary, argv).join('; '), why, `${name}: shell action`)
  const literal: Array<[string, string, string[]]> = [
    ['psql with a literal command', 'psql', ['-XAt', '-c', 'SELECT pg_postmaster_start_time();']],
    ['psql with an argument that is not a command', 'psql', ['-XAt', '-d', '{{ args.db }}', '-c', 'SELECT 1']],
    ['redis-cli (no shell escape)', 'redis-cli', ['-h', '{{ args.host }}', 'INFO']],
  ]
  for (const [name, binary, argv] of literal) t.same(shellReasons(binary, argv), [], `${name}: stays a plain exec action`)
})

t.test('a templated loader variable in execution.env is a shell action too', async (t) => {
  t.match(shellReasons('ls', [], { LD_PRELOAD: '{{ args.lib }}' }).join(), /execution\.env\.LD_PRELOAD takes an argument/)
  t.same(shellReasons('ls', [], { LANG: '{{ args.lang }}', LD_PRELOAD: '/usr/lib/fixed.so' }), [])
})

t.test('packs check names every shell action and why', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'writ-shells-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writePack(join(dir, 'wrapped'), 'wrapped', WRAPPED.slice(0, 3))
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'node-runner', 'dist', 'cli.js'), 'packs', 'check', dir], { encoding: 'utf8' })
  t.equal(r.status, 0, r.stdout)
  t.match(r.stdout, /^shell: wrapped\.a0 \(.*a0\.yaml\): argv\[1\] "sh" names a shell \(sh\) run by the wrapper "timeout"/m)
  t.match(r.stdout, /^shell: wrapped\.a1 .*run by the wrapper "env"/m)
  t.match(r.stdout, /^shell: wrapped\.a2 .*run by the wrapper "nice"/m)
  t.match(r.stdout, /^note: 3 shell action\(s\)/m)
})

t.test('a runner refuses `timeout 5 sh -c "echo {{ args.m }}"` and "$(…)" in m runs nothing', async (t) => {
  const h = await startRunnerHarness()
  t.teardown(() => h.stop())
  const marker = join(h.dir, 'pwned-by-timeout')
  writePack(join(h.dir, 'packs', 'wrapped'), 'wrapped', [WRAPPED[0]!, WRAPPED[15]!])
  const digest = loadPacks([join(h.dir, 'packs', 'wrapped')]).packs[0]!.digest
  for (const action of ['wrapped.a0', 'wrapped.a1']) {
    const ack = await h.send(signWrit(h.writ(action, { m: `$(touch ${marker})` }, { pack: 'wrapped', pack_digest: digest }), h.key))
    t.equal(ack.accepted, false, `${action}: refused`)
    if (!ack.accepted) {
      t.equal(ack.refusal.code, 'shell_not_allowed')
      t.match(ack.refusal.message, /shell action \(argv\[\d\] "sh" names a shell \(sh\) run by (the wrapper "timeout"|find -exec)/)
    }
  }
  // Both refusals are on the runner's journal: it has finished with these writs, and never ran them.
  await eventually(() => {
    const text = existsSync(h.journal) ? readFileSync(h.journal, 'utf8') : ''
    return (text.match(/"code":"shell_not_allowed"/g) ?? []).length >= 2
  }, 10_000, 'both refusals journaled')
  t.notOk(existsSync(marker), 'the command substitution never ran')
})

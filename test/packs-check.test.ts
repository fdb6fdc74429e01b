/**
 * `writ-node-runner packs check`, as a pack author runs it: on our stock packs,
 * on broken packs (every error names file and field), and on the public emisar
 * catalog (compatibility figure).
 */
import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { REPO_ROOT, STOCK_PACKS } from './helpers/runner-harness.js'

const CLI = join(REPO_ROOT, 'node-runner', 'dist', 'cli.js')
const EMISAR = join(REPO_ROOT, '..', 'shared', 'emisar-packs')
const check = (...dirs: string[]) => spawnSync(process.execPath, [CLI, 'packs', 'check', ...dirs], { encoding: 'utf8' })

t.test('the stock packs check clean', async (t) => {
  const r = check(STOCK_PACKS)
  t.equal(r.status, 0, r.stdout)
  t.match(r.stdout, /^packs: \d+ loaded, 0 failed; actions: \d+ loaded, 0 failed$/m)
})

t.test('every error names the file and the field; the exit code is non-zero', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'writ-packs-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'broken', 'actions'), { recursive: true })
  writeFileSync(join(dir, 'broken', 'pack.yaml'), 'schema_version: 1\nid: broken\nname: Broken\nversion: 1.0.0\nactions: [actions/a.yaml, actions/b.yaml, actions/c.yaml, actions/missing.yaml]\n')
  writeFileSync(join(dir, 'broken', 'actions', 'a.yaml'), 'schema_version: 1\nid: broken.a\ntitle: A\nkind: exec\nrisk: extreme\nexecution: { command: { binary: ls }, timeout: 5s }\n')
  writeFileSync(join(dir, 'broken', 'actions', 'b.yaml'), 'schema_version: 1\nid: broken.b\ntitle: B\nkind: script\nrisk: low\nexecution: { script: { path: scripts/b.sh, interpreter: /bin/sh }, timeout: 5s }\n')
  writeFileSync(join(dir, 'broken', 'actions', 'c.yaml'), 'schema_version: 1\nid: broken.c\ntitle: C\nkind: exec\nrisk: low\nexecution: { command: { binary: ls, argv: ["{{ args.nope }}"] }, timeout: soon }\n')
  const r = check(dir)
  t.equal(r.status, 1)
  t.match(r.stdout, /a\.yaml: risk: /, 'bad enum value names file and field')
  t.match(r.stdout, /b\.yaml: execution\.script\.path: script file "scripts\/b\.sh" is missing/, 'a kind: script whose script is absent is reported, not a crash')
  t.match(r.stdout, /c\.yaml: execution\.timeout: expected a duration/)
  t.match(r.stdout, /missing\.yaml: action file listed in pack\.yaml does not exist/)
  t.match(r.stdout, /packs: 1 loaded, 0 failed; actions: 0 loaded, 4 failed/)
})

t.test('the public emisar catalog loads through packs check', async (t) => {
  const r = check(EMISAR)
  const summary = /packs: (\d+) loaded, (\d+) failed; actions: (\d+) loaded, (\d+) failed/.exec(r.stdout)
  t.ok(summary, 'summary line printed')
  const [, packs, packsFailed, actions, actionsFailed] = summary!.map(Number)
  t.comment(`emisar catalog: packs ${packs}/${packs! + packsFailed!} loaded; actions ${actions}/${actions! + actionsFailed!} loaded`)
  const errors = r.stdout.split('\n').filter((l) => l.startsWith('error: '))
  const scriptMissing = errors.filter((l) => /script file .* is missing/.test(l)).length
  t.comment(`not loaded: ${scriptMissing} kind: script actions whose script file is absent from the catalog copy; ${errors.length - scriptMissing} other: ${errors.filter((l) => !/script file/.test(l)).map((l) => l.replace(/^error: .*emisar-packs\//, '')).join(' | ')}`)
  t.equal(packsFailed, 0, 'every pack manifest loads')
  // Every kind: exec action loads except the few whose own example breaks its contract
  // (an example value that is a --flag, an integer past 2^53): those are reported by name.
  const execTotal = Number(execFileSync('sh', ['-c', `grep -l '^kind: exec' ${EMISAR}/*/actions/*.yaml | wc -l`], { encoding: 'utf8' }).trim())
  const execFailed = errors.length - scriptMissing
  t.comment(`kind: exec actions: ${execTotal - execFailed}/${execTotal} load`)
  t.ok(execFailed <= 4, `at most 4 exec actions refused (${execFailed})`)
  t.equal(r.status, 1, 'the catalog copy has failures, so the exit code says so')
})

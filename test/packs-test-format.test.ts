/**
 * The case file format as `packs test` reads it, and the judgements it makes
 * on what came back: every case file of the shared emisar catalog loads
 * unchanged, a misspelt key anywhere is an error naming file and path, and
 * the expectation checks say what a pack author needs to hear.
 */
import t from 'tap'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadCaseFile } from '../node-runner/dist/packs-test/case-file.js'
import { unmet, withDefaults } from '../node-runner/dist/packs-test/expectations.js'
import { runnerErrors } from '../node-runner/dist/packs-test/case-execution.js'
import { mapExternalAddresses } from '../node-runner/dist/packs-test/services/index.js'
import { REPO_ROOT, STOCK_PACKS } from './helpers/runner-harness.js'

const EMISAR = join(REPO_ROOT, '..', 'shared', 'emisar-packs')
const work = mkdtempSync(join(tmpdir(), 'writ-case-format-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))

function caseFile(name: string, yaml: string): string {
  const dir = join(work, name)
  mkdirSync(join(dir, 'test'), { recursive: true })
  writeFileSync(join(dir, 'test', 'cases.yaml'), yaml)
  return dir
}

t.test('every case file of the shared catalog and of the stock packs loads, whole', async (t) => {
  const dirs = [...readdirSync(EMISAR).map((d) => join(EMISAR, d)), ...readdirSync(STOCK_PACKS).map((d) => join(STOCK_PACKS, d))]
    .filter((d) => existsSync(join(d, 'test', 'cases.yaml')))
  t.ok(dirs.length > 70, `${dirs.length} case files`)
  let cases = 0
  for (const d of dirs) {
    try { cases += loadCaseFile(d)?.cases.length ?? 0 } catch (e) { t.fail(`${d}: ${(e as Error).message}`) }
  }
  t.ok(cases > 900, `${cases} cases read`)
})

t.test('an unknown key is an error naming the file and the path, at any depth', async (t) => {
  const bad: Array<[string, string, RegExp]> = [
    ['top', 'servces: [redis]\ncases: []\n', /cases\.yaml: servces: unknown key "servces"$/],
    ['case', 'cases:\n  - action: a.b\n    expct: {}\n', /cases\.yaml: cases\[0\]\.expct: unknown key "expct"$/],
    ['step', 'cases:\n  - action: a.b\n    cleanup:\n      - argv: [rm]\n        retry: 1s\n', /cases\[0\]\.cleanup\[0\]\.retry: unknown key "retry"$/],
    ['resolve', 'cases:\n  - action: a.b\n    resolve_args:\n      pid: { argv: [cat], retry_fro: 1s }\n', /cases\[0\]\.resolve_args\.pid\.retry_fro: unknown key/],
    ['duration', 'cases:\n  - action: a.b\n    probes:\n      - argv: [ls]\n        retry_for: ten seconds\n', /cases\[0\]\.probes\[0\]\.retry_for: expected a duration/],
    ['status', 'cases:\n  - action: a.b\n    expect: { status: failed }\n', /cases\[0\]\.expect\.status: /],
    ['duplicate', 'env: {A: "1"}\nenv: {B: "2"}\ncases: []\n', /not valid YAML: Map keys must be unique/],
  ]
  for (const [name, yaml, want] of bad) t.throws(() => loadCaseFile(caseFile(name, yaml)), { name: 'CaseFileError', message: want }, name)
  t.equal(loadCaseFile(join(work, 'no-such-pack')), undefined, 'a pack without test/cases.yaml has no cases')
})

t.test('a text list item YAML reads as a one-key map is the text its author wrote', async (t) => {
  const f = loadCaseFile(caseFile('flow', 'cases:\n  - action: a.b\n    expect:\n      stdout_contains: [paused:, 1, h1:]\n'))
  t.same(f?.cases[0]?.expect?.stdout_contains, ['paused:', '1', 'h1:'])
})

t.test('expectations say what was expected and what came back', async (t) => {
  const ran = { status: 'success' as const, exitCode: 0, stdout: '{"a":[{"b":"x"}],"n":null}', stderr: '' }
  t.same(unmet({ json: { '/a/0/b': 'x', '/n': null } }, ran), [], 'JSON pointers into stdout')
  t.same(unmet({ json: { '/a/1/b': 'x' } }, ran), ['expected JSON at /a/1/b to be "x", found nothing there'])
  t.same(unmet({ status: 'failure' }, ran), ['expected failure, got success'])
  const refused = { status: 'failure' as const, exitCode: null, stdout: '', stderr: '', reason: 'refused by runner: bad_args: argument "x" is required' }
  t.same(unmet({ status: 'failure', exit: [0] }, refused), ['expected exit code 0, got none (no process ran to an exit)'], 'a refused run has no exit code')
  t.same(unmet(undefined, refused), [`expected success, got failure (${refused.reason})`], 'a run is expected to succeed unless the case says otherwise')
  t.same(unmet(undefined, { exitCode: 3, stdout: '', stderr: '' }), ['expected exit 0, got exit 3'], 'a plain command is expected to exit 0')
  t.same(withDefaults({ stdout_not_empty: true, stdout_not_contains: ['secret'] }, { stdout_not_contains: ['x'] }), { stdout_not_empty: true, stdout_not_contains: ['secret', 'x'] }, 'defaults add up with the case')
  t.same(withDefaults({ stdout_not_empty: true }, { status: 'failure' }), { status: 'failure' }, 'and describe a success: a failure case takes none of them')
})

t.test('an error the runner logs during a run fails the case, whatever it expected', async (t) => {
  const log = [
    JSON.stringify({ level: 30, msg: 'run started' }),
    JSON.stringify({ level: 50, msg: 'internal error; the runner goes on', where: 'run run_1 (a.b)', err: 'TypeError: boom' }),
    'not json',
  ].join('\n')
  t.same(runnerErrors(log), ['the runner logged an error: internal error; the runner goes on (run run_1 (a.b)): TypeError: boom'])
  t.same(runnerErrors(JSON.stringify({ level: 40, msg: 'writ refused: x' })), [], 'a warning is not an error')
})

t.test('--service maps the case file\'s host names to the given addresses', async (t) => {
  const env = { WRIT_DOCKER_SOCKET: 'docker', NOMAD_ADDR: 'http://nomad:4646', API: 'http://api:8080/v2/x', OTHER: 'http://nomadic:1', PLAIN: 'docker-compose' }
  t.same(mapExternalAddresses(env, [{ name: 'docker', address: 'unix:///run/d/docker.sock' }, { name: 'nomad', address: 'unix:///run/n/api.sock' }, { name: 'api', address: 'http://127.0.0.1:9999' }]), {
    WRIT_DOCKER_SOCKET: '/run/d/docker.sock', NOMAD_ADDR: 'unix:///run/n/api.sock', API: 'http://127.0.0.1:9999/v2/x', OTHER: 'http://nomadic:1', PLAIN: 'docker-compose',
  })
})

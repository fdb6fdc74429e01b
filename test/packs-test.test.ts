/**
 * `writ-node-runner packs test` as a pack author runs it: small packs with
 * their own test/cases.yaml, run through the command (a child process), each
 * case a signed writ to a real runner over a private nats-server. What is
 * asserted is what the author reads: one line per case, what was expected
 * and what came back, the skips with their reasons, the closing counts, the
 * exit code — and that a secret never shows up, anywhere.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { REPO_ROOT } from './helpers/runner-harness.js'

const CLI = join(REPO_ROOT, 'node-runner', 'dist', 'cli.js')
const work = mkdtempSync(join(tmpdir(), 'writ-packs-test-suite-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))

function packsTest(args: string[]): Promise<{ code: number | null, out: string, err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'packs', 'test', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    child.once('close', (code) => resolve({ code, out, err }))
  })
}

/** Writes a pack: `actions` maps a file name to its YAML, `cases` is test/cases.yaml. */
function writePack(id: string, actions: Record<string, string>, cases: string): string {
  const dir = join(work, id)
  mkdirSync(join(dir, 'actions'), { recursive: true })
  mkdirSync(join(dir, 'test'), { recursive: true })
  writeFileSync(join(dir, 'pack.yaml'), `schema_version: 1\nid: ${id}\nname: ${id}\nversion: 1.0.0\nactions: [${Object.keys(actions).map((a) => `actions/${a}.yaml`).join(', ')}]\n`)
  for (const [name, yaml] of Object.entries(actions)) writeFileSync(join(dir, 'actions', `${name}.yaml`), `schema_version: 1\nid: ${id}.${name}\n${yaml}`)
  writeFileSync(join(dir, 'test', 'cases.yaml'), cases)
  return dir
}

const lines = (out: string): string[] => out.trim().split('\n')
const lineFor = (out: string, name: string): string | undefined => lines(out).find((l) => /^(ok|FAIL|skip) /.test(l) && l.includes(`: ${name}`))

const echo = `title: Echo a word
kind: exec
risk: low
side_effects: [None.]
args:
  - { name: word, type: string, required: true, validation: { pattern: "^[a-z0-9/._-]{1,80}$" } }
execution:
  command: { binary: printf, argv: ["%s", "{{ args.word }}"] }
  timeout: 5s
examples: [{ title: hi, args: { word: hi } }]
`

t.test('each case is one line: ok, FAIL with what was expected and what came back, skip with why; then the counts; exit 1', async (t) => {
  const dir = writePack('basics', {
    echo,
    cat: `title: Print a file
kind: exec
risk: low
side_effects: [None.]
args:
  - { name: path, type: string, required: true, validation: { pattern: "^/tmp/[A-Za-z0-9._/-]+$" } }
execution:
  command: { binary: cat, argv: ["--", "{{ args.path }}"] }
  timeout: 5s
examples: [{ title: one, args: { path: /tmp/x } }]
`,
    missing: `title: Needs a program this host lacks
kind: exec
risk: low
side_effects: [None.]
execution:
  command: { binary: writ-no-such-program, argv: [] }
  timeout: 5s
examples: [{ title: run, args: {} }]
`,
  }, `cases:
  - action: basics.echo
    args: { word: hello }
    expect: { stdout_contains: [hello], stdout_not_contains: [goodbye] }
  - name: basics.echo-wrong-word
    action: basics.echo
    args: { word: hello }
    expect: { stdout_contains: [goodbye] }
  - name: basics.echo-bad-argument
    action: basics.echo
    args: { word: "Not A Word!" }
    expect: { status: failure, reason_contains: [bad_args] }
  - name: basics.cat-arranged-file
    action: basics.cat
    arrange:
      - argv: [/bin/sh, -c, "mkdir -p ${work}/scene && printf 'arranged-content' > ${work}/scene/file && printf '%s' ${work}/scene/file > ${work}/scene/path"]
    resolve_args:
      path: { argv: [cat, ${work}/scene/path] }
    expect: { stdout_contains: [arranged-content] }
    probes:
      - name: the file is still there
        argv: [ls, ${work}/scene/file]
        expect: { stdout_contains: [file] }
    cleanup:
      - argv: [rm, -rf, ${work}/scene]
  - action: basics.missing
`)
  const r = await packsTest([dir])
  t.equal(r.code, 1, 'a failed case makes the exit code 1')
  t.match(lineFor(r.out, 'basics.echo'), /^ok {4}basics: basics\.echo$/, 'a passing case')
  t.match(lineFor(r.out, 'basics.echo-wrong-word'), /^FAIL {2}basics: basics\.echo-wrong-word: expected stdout to contain "goodbye", got "hello"$/, 'a failing case says what it expected and what came back')
  t.match(lineFor(r.out, 'basics.echo-bad-argument'), /^ok /, 'an argument the runner refuses is a failure the case can expect')
  t.match(lineFor(r.out, 'basics.cat-arranged-file'), /^ok /, 'arrange sets the scene, resolve_args reads an argument from it, the probe looks at it')
  t.notOk(existsSync(join(work, 'scene')), 'and cleanup ran')
  t.match(lineFor(r.out, 'basics.missing'), /^skip {2}basics: basics\.missing: writ-no-such-program is not installed on this host$/, 'a case this host cannot run is skipped with the reason')
  t.match(lines(r.out).at(-1), /^cases: 3 passed, 1 failed, 1 skipped$/, 'the closing line counts them')
})

t.test('a command that exits non-zero fails with the reason cases written for emisar\'s runner expect', async (t) => {
  const dir = writePack('exits', {
    fail: `title: Always fails
kind: exec
risk: low
side_effects: [None.]
execution:
  command: { binary: "false", argv: [] }
  timeout: 5s
examples: [{ title: run, args: {} }]
`,
  }, `cases:
  - action: exits.fail
    expect: { status: failure, exit: [1], reason_contains: [process exited with code 1] }
`)
  const r = await packsTest([dir])
  t.equal(r.code, 0, r.out)
  t.match(lineFor(r.out, 'exits.fail'), /^ok /, 'the run failed with exit code 1, and its reason says so in those words')
})

t.test('--case runs only the named case', async (t) => {
  const dir = join(work, 'basics')
  const r = await packsTest([dir, '--case', 'basics.echo-wrong-word'])
  t.equal(r.code, 1)
  t.same(lines(r.out).filter((l) => /^(ok|FAIL|skip) /.test(l)).map((l) => l.split(':')[1]?.trim()), ['basics.echo-wrong-word'])
  const none = await packsTest([dir, '--case', 'basics.nope'])
  t.equal(none.code, 2, 'a case name that matches nothing is a usage error')
  t.match(none.err, /no case named "basics\.nope"/)
})

t.test('a case file is read whole: an unknown key is an error naming the file and the path to it', async (t) => {
  const bad = writePack('typo', { echo }, `cases:
  - action: typo.echo
    args: { word: hi }
    expct: { stdout_contains: [hi] }
`)
  const good = writePack('fine', { echo }, 'cases:\n  - action: fine.echo\n    args: { word: hi }\n    expect: { stdout_contains: [hi] }\n')
  const r = await packsTest([bad, good])
  t.equal(r.code, 1)
  t.match(r.out, new RegExp(`^error: ${bad}/test/cases\\.yaml: cases\\[0\\]\\.expct: unknown key "expct"$`, 'm'), 'file, path and key')
  t.match(lineFor(r.out, 'fine.echo'), /^ok /, 'the other pack still runs')
  const deep = writePack('deeptypo', { echo }, 'cases:\n  - action: deeptypo.echo\n    args: { word: hi }\n    probes:\n      - argv: [ls]\n        expect: { stdout_contain: [x] }\n')
  const d = await packsTest([deep])
  t.match(d.out, /cases\[0\]\.probes\[0\]\.expect\.stdout_contain: unknown key "stdout_contain"/, 'however deep it is')
})

t.test('a secret_env value found anywhere the run left it fails the case as leaked, and is never printed', async (t) => {
  const secret = 'packtest-canary-suite-5f2e91'
  const dir = writePack('leaky', {
    show: `title: Print the token
kind: exec
risk: low
side_effects: [None.]
execution:
  command: { binary: printenv, argv: [LEAKY_TOKEN] }
  timeout: 5s
examples: [{ title: show, args: {} }]
`,
    quiet: `title: Use the token without printing it
kind: exec
risk: low
side_effects: [None.]
execution:
  command: { binary: printenv, argv: [LEAKY_OTHER] }
  timeout: 5s
examples: [{ title: quiet, args: {} }]
`,
  }, `secret_env: [LEAKY_TOKEN]
env:
  LEAKY_TOKEN: ${secret}
  LEAKY_OTHER: harmless
cases:
  - action: leaky.show
    expect: { stdout_contains: [something-else] }
  - action: leaky.quiet
    expect: { stdout_contains: [harmless] }
`)
  const r = await packsTest([dir])
  t.equal(r.code, 1)
  const line = lineFor(r.out, 'leaky.show') ?? ''
  t.match(line, /^FAIL /)
  t.match(line, /leaked LEAKY_TOKEN in stdout, run record, live output, NATS messages/, 'names the variable and every place it turned up')
  t.match(line, /expected stdout to contain "something-else", got "\[LEAKY_TOKEN\]\\n"/, 'the output is quoted with the value hidden')
  t.notOk(r.out.includes(secret) || r.err.includes(secret), 'the value itself is printed nowhere')
  t.match(lineFor(r.out, 'leaky.quiet'), /^ok /, 'a declared variable the action uses without printing is no leak')
})

t.test('risk accountability: a high or critical action with neither a case nor a declared reason fails; a declared reason is a skip', async (t) => {
  const risky = (risk: string): string => `title: Risky ${risk}
kind: exec
risk: ${risk}
side_effects: [Pretends to change something.]
execution:
  command: { binary: "true", argv: [] }
  timeout: 5s
examples: [{ title: run, args: {} }]
`
  const dir = writePack('risky', { stop: risky('high'), wipe: risky('critical'), tune: risky('medium'), ok: risky('high') }, `risk_accountability:
  mode: complete
  exceptions:
    risky.wipe: requires_privileged_host
cases:
  - action: risky.ok
`)
  const r = await packsTest([dir])
  t.equal(r.code, 1)
  t.match(r.out, /^FAIL {2}risky: risk_accountability: risky\.stop \(high\) has no case and no declared reason$/m)
  t.notMatch(r.out, /risky\.tune \(medium\)/, 'medium risk needs no case')
  t.match(lineFor(r.out, 'risky.wipe'), /^skip {2}risky: risky\.wipe: requires_privileged_host \(risk_accountability exception: no case\)$/)
  t.match(lineFor(r.out, 'risky.ok'), /^ok /)
})

t.test('services: a private redis in the run\'s own network namespace, reached by the case file\'s host name, seeded with its password', async (t) => {
  const secret = 'packtest-canary-redis-suite-41'
  const dir = writePack('rds', {
    dir: `title: Where the server keeps its data
kind: exec
risk: low
side_effects: [None.]
execution:
  command: { binary: redis-cli, argv: [CONFIG, GET, dir] }
  timeout: 10s
examples: [{ title: dir, args: {} }]
`,
    ping: `title: Ping a named host
kind: exec
risk: low
side_effects: [None.]
execution:
  command: { binary: redis-cli, argv: [-h, redis, PING] }
  timeout: 10s
examples: [{ title: ping, args: {} }]
`,
  }, `services: [redis]
secret_env: [REDISCLI_AUTH]
env:
  REDISCLI_AUTH: ${secret}
cases:
  - action: rds.dir
    expect: { stdout_contains: [writ-packs-test-] }
  - action: rds.ping
    expect: { stdout_contains: [PONG] }
  - name: rds.ping-without-password
    action: rds.ping
    unset_env: [REDISCLI_AUTH]
    expect: { stdout_contains: [NOAUTH] }
`)
  const r = await packsTest([dir])
  t.equal(r.code, 0, r.out)
  t.match(r.out, /^# rds: service redis: redis-server \S+ on 127\.0\.0\.1:6379$/m, 'which server, where')
  t.match(lineFor(r.out, 'rds.dir'), /^ok /, 'the server the action reached keeps its data in the run\'s temp folder: not the machine\'s own instance on the same port')
  t.match(lineFor(r.out, 'rds.ping'), /^ok /, 'the case file\'s host name resolves to it, and the inherited password opens it')
  t.match(lineFor(r.out, 'rds.ping-without-password'), /^ok /, 'without the password it is refused: it was really seeded with one')
  t.match(lines(r.out).at(-1), /^cases: 3 passed, 0 failed, 0 skipped$/)
  t.notOk(r.out.includes(secret))
})

t.test('usage errors exit 2 and say what is wrong', async (t) => {
  const none = await packsTest([])
  t.equal(none.code, 2)
  t.match(none.err, /usage: writ-node-runner packs test/)
  const service = await packsTest([join(work, 'basics'), '--service', 'nomad'])
  t.equal(service.code, 2)
  t.match(service.err, /--service "nomad": expected NAME=unix:\/\/\/path\/to\.sock or NAME=http:\/\/host:port/)
  const nodir = await packsTest([join(work, 'no-such-pack')])
  t.equal(nodir.code, 2)
  t.match(nodir.err, /no-such-pack: not a pack folder/)
  t.notOk(existsSync(join(work, 'no-such-pack')))
  t.ok(readFileSync(join(work, 'basics', 'test', 'cases.yaml'), 'utf8').length > 0)
})

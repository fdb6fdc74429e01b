/**
 * Reviewing and deciding from a terminal: `writ show` tells the whole run
 * (summary, arguments, expected outcome, evidence, approvals, output);
 * `writ approve` on a real terminal (a pty from util-linux `script`) asks
 * y/N after printing the run and decides nothing on "no", while a script
 * (stdin not a terminal) is never asked; a denied run has its own exit code;
 * a usage error is one line that points to --help.
 */
import t from 'tap'
import { execFile, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { auth, startCpSuite } from './helpers/cp-fixtures.js'
import { eventually, startFakeRunner } from './helpers/cp-fake-runner.js'

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'control-plane', 'dist', 'cli.js')

function writ(args: string[], env: Record<string, string>): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, WRIT_TOKEN: '', ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 99) : 0, stdout, stderr })
    })
  })
}

/** `writ` on a terminal: util-linux `script` gives it a pty; `typed` is what the person types. */
function writOnTerminal(args: string[], env: Record<string, string>, typed: string): Promise<{ code: number, output: string }> {
  const command = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ')
  return new Promise((resolve) => {
    const child = execFile('script', ['-qec', command, '/dev/null'], { env: { ...process.env, WRIT_TOKEN: '', ...env }, timeout: 30_000 }, (err, stdout) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 99) : 0, output: stdout })
    })
    child.stdin?.end(typed)
  })
}

t.test('writ show, writ approve on a terminal, exit codes', async (t) => {
  const { nats, fx, app } = await startCpSuite(t)
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const runner = await startFakeRunner({ natsUrl: nats.url, nodeId: 'web-1', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('web-1')?.online, 5000, 'node online')
  const request = async (payload: Record<string, unknown>) => (await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { node: 'web-1', args: {}, session_id: 's-1', ...payload } })).json() as { id: string, status: string }
  const echo = await request({ action: 'testops.echo', args: { message: 'load is normal' }, reason: 'rule out load', wait: 10 })
  t.equal(echo.status, 'succeeded')
  const restart = await request({ action: 'testops.restart', reason: 'the worker is wedged', expected: 'the worker comes back', evidence: [echo.id] })
  const other = await request({ action: 'testops.restart', reason: 'a second one' })
  const ops = { WRIT_URL: url, WRIT_OPERATOR_TOKEN: fx.tokens.operator }

  await t.test('approve on a terminal asks after printing the run; "no" decides nothing', async (t) => {
    const no = await writOnTerminal(['approve', restart.id], ops, 'n\n')
    t.equal(no.code, 6, no.output)
    t.match(no.output, `approving run ${restart.id}: Restart a service (pretend) on web-1`)
    t.match(no.output, /reason: {3}the worker is wedged[\s\S]*Approve this run\? \[y\/N\]/, 'the question comes after the run it is about')
    t.match(no.output, 'not approved: nothing was decided')
    t.equal((await app.writ.store.get(restart.id))?.run.status, 'pending_approval', 'the run still waits')
    const yes = await writOnTerminal(['approve', restart.id, '--comment', 'go'], ops, 'y\n')
    t.equal(yes.code, 0, yes.output)
    await eventually(async () => (await app.writ.store.get(restart.id))?.run.status === 'succeeded', 10_000, 'the approved run to finish')
    const skip = await writOnTerminal(['deny', other.id, '--reason', 'one at a time'], ops, '')
    t.equal(skip.code, 0, `deny asks nothing: ${skip.output}`)
    t.notMatch(skip.output, '[y/N]')
  })

  await t.test('writ show tells the whole run', async (t) => {
    const shown = await writ(['show', restart.id], ops)
    t.equal(shown.code, 0, shown.stderr)
    const out = shown.stdout
    t.match(out, `run ${restart.id}: Restart a service (pretend) on web-1\n`)
    t.match(out, '  status:    succeeded')
    t.match(out, '  reason:    the worker is wedged\n')
    t.match(out, '  expected:  the worker comes back\n')
    t.match(out, '  args:      none\n')
    t.match(out, `  evidence:  ${echo.id}  Echo a message on web-1 (message=load is normal) — succeeded\n`, 'the cited run, by its summary and status')
    t.match(out, /  approvals: 1 of 1 approvals from oncall; binding [0-9a-f]{16}…\n {13}✓ ops-1 at .*: “go”\n/)
    t.match(out, /  result: {4}exit 0 after \d+\.\d s\n  output:\ntestops\.restart \{\}\n/)
    const json = JSON.parse((await writ(['show', restart.id, '--json'], ops)).stdout) as { summary: string }
    t.equal(json.summary, 'Restart a service (pretend) on web-1')
  })

  await t.test('a denied run has its own exit code', async (t) => {
    const denied = await writ(['status', other.id], { WRIT_URL: url, WRIT_TOKEN: fx.tokens.operator })
    t.equal(denied.code, 5, denied.stdout)
    t.equal((await writ(['status', restart.id], { WRIT_URL: url, WRIT_TOKEN: fx.tokens.operator })).code, 0, 'a succeeded one is 0')
  })

  await t.test('usage errors are one line that points to --help', async (t) => {
    for (const args of [['approve'], ['show'], ['frobnicate'], ['run', 'testops.echo', '--frobnicate'], ['status', 'x', '--wait']]) {
      const r = await writ(args, ops)
      t.equal(r.code, 2, `writ ${args.join(' ')}`)
      t.equal(r.stderr.trimEnd().split('\n').length, 1, `writ ${args.join(' ')}: one line (${r.stderr.trimEnd()})`)
      t.match(r.stderr, /--help\)$/m)
    }
    const help = await writ(['approve', '--help'], ops)
    t.equal(help.code, 0)
    t.match(help.stdout, /^usage:\n {2}writ approve <run>.*\n.*on a terminal asks y\/N first/)
    t.notMatch(help.stdout, 'writ audit verify', 'only that command\'s usage')
  })
})

t.test('writ dev --help prints its usage and starts nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'writ-dev-help-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const state = join(dir, 'state')
  const r = spawnSync(process.execPath, [CLI, 'dev', '--state-dir', state, '--help'], { encoding: 'utf8', timeout: 30_000 })
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, /^usage:\n {2}writ dev \[--port N\]/)
  t.notOk(existsSync(state), 'no state directory, no NATS, no control plane')
})

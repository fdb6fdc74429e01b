/**
 * Standing grants from a terminal: `writ grant` gives one (typed arguments
 * from the action's contract), `writ grants` lists, `writ grant approve`
 * co-signs, `writ revoke` ends it; refusals come back as the server's typed
 * codes with exit code 2.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { auth, startCpSuite } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'control-plane', 'dist', 'cli.js')

function writ(args: string[], env: Record<string, string>): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, WRIT_TOKEN: '', ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 99) : 0, stdout, stderr })
    })
  })
}

t.test('writ grant, writ grants, writ revoke', async (t) => {
  const { nats, fx, app } = await startCpSuite(t)
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const runner = await startRealRunner(fx, nats.url, 'host-1')
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('host-1')?.online, 10_000, 'runner heartbeat')
  const ops = { WRIT_URL: url, WRIT_OPERATOR_TOKEN: fx.tokens.operator }
  const request = () => app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.unlock', node: 'host-1', args: { vault: 'main', pin: '1234' }, reason: 'open the vault', wait: 10 } })

  const given = await writ(['grant', 'testops.unlock', '--to', 'agent-1', '--node', 'host-1', '--arg', 'vault=main', '--arg', 'pin=1234', '--for', '1h', '--uses', '3', '--reason', 'incident 4711'], ops)
  t.equal(given.code, 0, given.stderr)
  t.match(given.stdout, /^g[0-9a-z]{17}  active  testops.unlock for agent-1 on host-1 \(vault=main  pin=\[redacted\]\), 3\/3 uses left, until .*, 1\/1 approvals \(ops-1\)\n    reason: incident 4711\n$/)
  t.comment(`$ writ grant testops.unlock --to agent-1 --node host-1 --arg vault=main --arg pin=… --for 1h --uses 3 --reason "incident 4711"\n${given.stdout.trimEnd()}`)
  const id = given.stdout.slice(0, 18)
  t.match((await request()).json(), { status: 'succeeded', grant: { id, uses_left: 2 } })

  const listed = await writ(['grants', '--status', 'active'], ops)
  t.equal(listed.code, 0, listed.stderr)
  t.match(listed.stdout, new RegExp(`^${id}  active  .* 2/3 uses left`))
  t.notMatch(listed.stdout, /1234/, 'the pin is never printed')

  const revoked = await writ(['revoke', id, '--reason', 'incident over'], ops)
  t.equal(revoked.code, 0, revoked.stderr)
  t.equal(revoked.stdout, `grant ${id}: revoked by ops-1; it covers nothing from the next request on\n`)
  t.comment(`$ writ revoke ${id} --reason "incident over"\n${revoked.stdout.trimEnd()}`)
  t.match((await request()).json(), { status: 'pending_approval' }, 'the next request waits')

  const quorum = await writ(['grant', 'testops.deploy', '--to', 'agent-1', '--node', '*', '--any-args', '--for', '30m', '--reason', 'release day'], ops)
  t.equal(quorum.code, 0, quorum.stderr)
  t.match(quorum.stdout, /  pending  testops.deploy for agent-1 on \* \(any args\), unlimited uses, .* 1\/2 approvals/)
  t.match(quorum.stderr, /needs 1 more approval\(s\): writ grant approve g/)
  const cosigned = await writ(['grant', 'approve', quorum.stdout.slice(0, 18)], { WRIT_URL: url, WRIT_OPERATOR_TOKEN: fx.tokens.operator2 })
  t.equal(cosigned.code, 0, cosigned.stderr)
  t.match(cosigned.stdout, /  active  .* 2\/2 approvals \(ops-1, ops-2\)/)

  const refused = await writ(['grant', 'testops.restart', '--to', 'agent-1', '--node', 'host-1', '--any-args', '--for', '12h', '--reason', 'too long'], ops)
  t.equal(refused.code, 2)
  t.match(refused.stderr, /WRIT_ERR_GRANT_LIFETIME/)
  const asAgent = await writ(['grants'], { WRIT_URL: url, WRIT_TOKEN: fx.tokens.agent })
  t.equal(asAgent.code, 2)
  t.match(asAgent.stderr, /WRIT_ERR_FORBIDDEN/)
  const both = await writ(['grant', 'testops.restart', '--to', 'agent-1', '--node', 'host-1', '--for', '1h', '--reason', 'x'], ops)
  t.equal(both.code, 2)
  t.match(both.stderr, /--any-args/)
})

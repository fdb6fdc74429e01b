import t from 'tap'
import { auth, startCpSuite } from './helpers/cp-fixtures.js'
import { startFakeRunner, eventually } from './helpers/cp-fake-runner.js'

const SECRET = 'hunter2Hunter2xyz'

t.test('an argument declared sensitive reaches the runner and nothing a caller reads back', async (t) => {
  const { nats, fx, app } = await startCpSuite(t)
  const runner = await startFakeRunner({ natsUrl: nats.url, nodeId: 'node-1', nodeName: 'web-1', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('web-1')?.online, 3000, 'node online')

  const res = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.login', node: 'web-1', args: { user: 'deploy', password: SECRET }, reason: 'log in', wait: 5 } })
  t.equal(res.statusCode, 200, res.body)
  const run = res.json()
  t.same(run.args, { user: 'deploy', password: '[redacted]' }, 'the POST answer')
  t.equal(runner.writs[0]?.writ.args.password, SECRET, 'the signed writ carries the value the runner needs')

  const got = await app.inject({ method: 'GET', url: `/v1/runs/${run.id}?wait=1`, headers: auth(fx.tokens.operator) })
  t.same(got.json().args, { user: 'deploy', password: '[redacted]' }, 'GET, even for an operator')
  const list = await app.inject({ method: 'GET', url: '/v1/runs', headers: auth(fx.tokens.operator) })
  t.notMatch(list.body, SECRET, 'the run list')
  const audit = await app.inject({ method: 'GET', url: `/v1/audit?run_id=${run.id}`, headers: auth(fx.tokens.operator) })
  t.notMatch(audit.body, SECRET, 'the audit chain')
  t.match(audit.body, /"password":"\[redacted\]"/)

  // An arguments error names the argument and the rule, never the value.
  const bad = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.login', node: 'web-1', args: { user: 'deploy', password: 'short!', attempts: 97 }, reason: 'log in' } })
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().error.code, 'WRIT_ERR_BAD_ARGS')
  t.match(bad.json().error.message, /argument "password": does not match the declared pattern/)
  t.match(bad.json().error.message, /argument "attempts": must be ≤ 3, got \[redacted\]/)
  t.notMatch(bad.body, /short!|97/, 'neither bad value is echoed')
  const typed = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.login', node: 'web-1', args: { user: 'deploy', password: { value: SECRET } }, reason: 'log in' } })
  t.match(typed.json().error.message, /argument "password": expected a string, got \[redacted\]/)
  t.notMatch(typed.body, SECRET)
  const rejected = await app.inject({ method: 'GET', url: '/v1/audit?type=request.rejected', headers: auth(fx.tokens.operator) })
  t.notMatch(rejected.body, /short!|hunter2/, 'nor audited')
  t.equal(runner.writs.length, 1, 'the bad requests dispatched nothing')
})

/**
 * The freeze fails closed: a freeze record in the bucket that does not read
 * (a bug, a hand edit, tampering) counts as every agent frozen — the switch
 * may have been thrown — with a reason that says so; reads go on, and an
 * operator's unfreeze writes a well-formed record and lifts it.
 */
import t from 'tap'
import { Kvm } from '@nats-io/kv'
import { auth, startCpSuite } from './helpers/cp-fixtures.js'
import { eventually, startFakeRunner } from './helpers/cp-fake-runner.js'

t.test('an unreadable freeze record refuses changes until an operator writes it anew', async (t) => {
  const { nats, fx, app } = await startCpSuite(t)
  const runner = await startFakeRunner({ natsUrl: nats.url, nodeId: 'n1', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile, runDelayMs: 5 })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.onlineCount === 1, 5000, 'n1 online')
  const run = (action: string, args: Record<string, unknown>) => app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action, node: 'n1', args, reason: 'freeze record test', wait: 10 } })

  t.equal((await run('testops.sleep', { seconds: 0 })).json().status, 'succeeded', 'nothing frozen at first')
  const kv = await new Kvm(app.writ.nc).open('WRIT_BRAKES')
  await kv.put('freeze', '{"v":1,"freezes":[{"scope":')
  await eventually(() => app.writ.brakes.freezes.length === 1, 5000, 'the watch to deliver the unreadable record')

  const refused = await run('testops.sleep', { seconds: 0 })
  t.equal(refused.statusCode, 423, refused.body)
  t.match(refused.json().error, { code: 'WRIT_ERR_FROZEN', message: /freeze record is unreadable/ })
  t.equal((await run('testops.echo', { message: 'still reading' })).json().status, 'succeeded', 'reads go on')

  const lifted = await app.inject({ method: 'DELETE', url: '/v1/freeze', headers: auth(fx.tokens.operator) })
  t.equal(lifted.statusCode, 200, lifted.body)
  t.same(JSON.parse((await kv.get('freeze'))?.string() ?? 'null'), { v: 1, freezes: [] }, 'the unfreeze wrote a well-formed record')
  t.equal((await run('testops.sleep', { seconds: 0 })).json().status, 'succeeded', 'changes run again')
})

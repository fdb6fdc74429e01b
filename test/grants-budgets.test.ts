/**
 * A standing grant does not lift a budget: a run a grant covers is a
 * dispatch, so it spends its requester's budget like any other, and when the
 * budget is spent the request is refused 429 and the grant keeps the use it
 * would have spent — a later request, once the budget allows, still has it.
 */
import t from 'tap'
import { buildApp, parseConfig } from '@writ/control-plane'
import { startNatsServer } from './helpers/nats-server.js'
import { auth, makeCpFixture } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'

const HOUR = 3_600_000

t.test('a grant covers approval, not the budget; a refused request keeps the grant use', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  const config = parseConfig({ ...fx.config, principals: fx.config.principals.map((p) => (p.id === 'agent-1' ? { ...p, budgets: { mutations_per_hour: 1 } } : p)) })
  const app = await buildApp(config)
  t.teardown(() => app.close())
  const runner = await startRealRunner(fx, nats.url, 'host-1')
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('host-1')?.online, 10_000, 'runner heartbeat')
  // The budget lives in the clock's hour: start with room for the test left in it.
  await eventually(() => HOUR - (Date.now() % HOUR) > 60_000, HOUR, 'an hour with room left')

  const created = await app.inject({
    method: 'POST', url: '/v1/grants', headers: auth(fx.tokens.operator),
    payload: { principal: 'agent-1', action: 'testops.restart', node: 'host-1', args: 'any', uses: 3, expires_in: '1h', reason: 'incident 4711: restart as needed' },
  })
  t.equal(created.statusCode, 201, created.body)
  const id = created.json().id as string
  const request = () => app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.restart', node: 'host-1', args: {}, reason: 'the worker is stuck again', wait: 10 } })

  const first = await request()
  t.equal(first.json().status, 'succeeded', first.body)
  t.equal(first.json().grant?.uses_left, 2, 'the first request spends a grant use and the budget')
  const second = await request()
  t.equal(second.statusCode, 429, second.body)
  t.equal(second.json().error.code, 'WRIT_ERR_BUDGET_EXHAUSTED')
  t.ok(second.headers['retry-after'], 'Retry-After says when the budget comes back')
  const shown = (await app.inject({ method: 'GET', url: `/v1/grants/${id}`, headers: auth(fx.tokens.operator) })).json()
  t.equal(shown.uses_left, 2, 'the refused request gave its grant use back')
  const used = (await app.inject({ method: 'GET', url: '/v1/audit?type=grant.used&limit=1000', headers: auth(fx.tokens.operator) })).body.trim().split('\n').filter(Boolean)
  t.equal(used.length, 1, 'one grant.used on the chain: the refused request used nothing')
})

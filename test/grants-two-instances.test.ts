/**
 * Two control planes on one nats-server share the grants bucket: a grant
 * given on A covers requests on B, every use is spent once whichever
 * replica spends it, and a revocation on A holds for B's very next dispatch
 * (B reads the bucket on every dispatch; nothing is cached).
 */
import t from 'tap'
import { buildApp, parseConfig } from '@writ/control-plane'
import { startNatsServer } from './helpers/nats-server.js'
import { auth, makeCpFixture } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'

t.test('a grant revoked on instance A covers nothing on instance B', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  const [a, b] = await Promise.all([
    buildApp(parseConfig({ ...fx.config, instance_id: 'cp-a' })),
    buildApp(parseConfig({ ...fx.config, instance_id: 'cp-b' })),
  ])
  t.teardown(() => a.close())
  t.teardown(() => b.close())
  const runner = await startRealRunner(fx, nats.url, 'host-1')
  t.teardown(() => runner.close())
  await eventually(() => a.writ.fleet.find('host-1')?.online && b.writ.fleet.find('host-1')?.online, 10_000, 'both see the runner')
  const request = (app: typeof a) => app.inject({
    method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent),
    payload: { action: 'testops.restart', node: 'host-1', args: {}, reason: 'the worker is stuck again', wait: 10 },
  })

  const g = (await a.inject({
    method: 'POST', url: '/v1/grants', headers: auth(fx.tokens.operator),
    payload: { principal: 'agent-1', action: 'testops.restart', node: 'host-1', args: 'any', uses: 20, expires_in: '1h', reason: 'incident 4711' },
  })).json()
  t.equal(g.status, 'active')
  t.comment(`A: POST /v1/grants → ${g.id} active, 20 uses`)

  const onB = (await request(b)).json()
  t.match(onB, { status: 'succeeded', grant: { id: g.id, uses_left: 19 } }, 'a grant given on A covers a request on B at once')
  t.comment(`B: POST /v1/runs → ${onB.status}, grant ${onB.grant.id} uses_left ${onB.grant.uses_left}`)

  // Both replicas spend uses at once: each use is spent exactly once.
  const burst = await Promise.all([...Array(8).keys()].map((i) => request(i % 2 === 0 ? a : b)))
  const left = burst.map((r) => r.json().grant?.uses_left as number).sort((x, y) => x - y)
  t.same(left, [11, 12, 13, 14, 15, 16, 17, 18], 'eight parallel requests over two replicas spent eight distinct uses')

  const revokedAt = performance.now()
  const revoked = await a.inject({ method: 'DELETE', url: `/v1/grants/${g.id}`, headers: auth(fx.tokens.operator), payload: { reason: 'incident over' } })
  t.equal(revoked.json().status, 'revoked')
  const next = await request(b)
  const elapsed = performance.now() - revokedAt
  t.equal(next.statusCode, 202)
  t.match(next.json(), { status: 'pending_approval' }, 'B\'s very next request after the revocation on A waits for approval')
  t.notOk(next.json().grant)
  t.comment(`A: DELETE /v1/grants/${g.id} → revoked; B: next POST /v1/runs → ${next.statusCode} ${next.json().status} (${elapsed.toFixed(0)} ms after the revocation was sent)`)
  const listedOnB = (await b.inject({ method: 'GET', url: `/v1/grants/${g.id}`, headers: auth(fx.tokens.operator2) })).json()
  t.match(listedOnB, { status: 'revoked', revoked_by: 'ops-1', uses_left: 11 })
})

/**
 * Break-glass on two control-plane instances: the review item and the
 * open-review slot live in JetStream KV, so a break-glass on instance A
 * blocks the same person's next one on instance B until another approver
 * acknowledges it — on either instance.
 */
import t from 'tap'
import { buildApp, parseConfig } from '@writ/control-plane'
import { startNatsServer } from './helpers/nats-server.js'
import { auth, makeCpFixture } from './helpers/cp-fixtures.js'
import { eventually, startFakeRunner } from './helpers/cp-fake-runner.js'

const NODE = 'bg-replica-host'

t.test('the review blocks the next break-glass on every replica', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url, {
    policy: { rules: [
      { name: 'deploys-need-two', match: { actions: ['testops.deploy'] }, decision: 'require_approval', approver_groups: ['oncall'], quorum: 2, ttl: '15m', break_glass: true },
      { name: 'agents-low-risk', match: { groups: ['sre-agents'], max_risk: 'medium' }, decision: 'allow' },
    ] },
  })
  t.teardown(() => fx.cleanup())
  const [a, b] = await Promise.all([buildApp(parseConfig({ ...fx.config, instance_id: 'cp-a' })), buildApp(parseConfig({ ...fx.config, instance_id: 'cp-b' }))])
  t.teardown(() => Promise.all([a.close(), b.close()]))
  const runner = await startFakeRunner({ natsUrl: nats.url, nodeId: NODE, packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile })
  t.teardown(() => runner.close())
  await eventually(() => a.writ.fleet.find(NODE)?.online && b.writ.fleet.find(NODE)?.online, 10_000, 'heartbeats on both')
  const ask = async () => (await a.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.deploy', node: NODE, args: {}, reason: 'hotfix' } })).json() as { id: string }
  const breakGlass = (app: typeof a, id: string) => app.inject({ method: 'POST', url: `/v1/runs/${id}/break-glass`, headers: auth(fx.tokens.operator), payload: { reason: 'the second approver is asleep' } })

  const [first, second] = [await ask(), await ask()]
  const onA = await breakGlass(a, first.id)
  t.equal(onA.statusCode, 200, onA.body)
  await eventually(async () => (await b.inject({ method: 'GET', url: `/v1/runs/${second.id}`, headers: auth(fx.tokens.operator) })).json().status === 'pending_approval', 5000, 'the second run on B')
  const onB = await breakGlass(b, second.id)
  t.equal(onB.statusCode, 409, onB.body)
  t.equal(onB.json().error.code, 'WRIT_ERR_BREAK_GLASS_UNREVIEWED')
  t.comment(`break-glass on A → 200; the same operator on B → ${onB.statusCode} ${onB.json().error.code}`)

  const reviewId = onA.json().review.id as string
  const ack = await b.inject({ method: 'POST', url: `/v1/reviews/${reviewId}/ack`, headers: auth(fx.tokens.operator2), payload: {} })
  t.equal(ack.statusCode, 200, ack.body)
  const again = await breakGlass(b, second.id)
  t.equal(again.statusCode, 200, again.body)
  t.comment(`ops-2 acknowledges on B; ops-1's break-glass on B → ${again.statusCode}`)
})

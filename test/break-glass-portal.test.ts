/**
 * Break-glass in the portal: the run page offers it only where the policy
 * rule permits it, behind a confirmation that names the action and the node;
 * the reviews page lists the item, and another approver acknowledges it there.
 */
import t from 'tap'
import { buildApp } from '@writ/control-plane'
import { startNatsServer } from './helpers/nats-server.js'
import { auth, makeCpFixture } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'
import { PortalVisitor } from './helpers/portal-visitor.js'

const NODE = 'bg-portal-host'

t.test('break-glass from the run page, acknowledged on the reviews page', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url, {
    policy: {
      rules: [
        { name: 'deploys-need-two', match: { actions: ['testops.deploy'] }, decision: 'require_approval', approver_groups: ['oncall'], quorum: 2, ttl: '15m', break_glass: true },
        { name: 'high-risk-needs-a-person', match: { risk: ['high', 'critical'] }, decision: 'require_approval', approver_groups: ['oncall'], quorum: 1, ttl: '15m' },
        { name: 'agents-low-risk', match: { groups: ['sre-agents'], max_risk: 'medium' }, decision: 'allow' },
      ],
    },
  })
  t.teardown(() => fx.cleanup())
  const app = await buildApp(fx.config)
  t.teardown(() => app.close())
  const runner = await startRealRunner(fx, nats.url, NODE)
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find(NODE)?.online, 10_000, 'runner heartbeat')
  const ask = async (action: string, args: Record<string, unknown> = {}) =>
    (await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action, node: NODE, args, reason: 'release 4.2 fixes the outage' } })).json() as { id: string }
  const status = async (id: string, wait = 0) => (await app.inject({ method: 'GET', url: `/v1/runs/${id}${wait ? `?wait=${wait}` : ''}`, headers: auth(fx.tokens.operator) })).json().status as string

  const deploy = await ask('testops.deploy')
  const unlock = await ask('testops.unlock', { vault: 'prod', pin: '1234' })
  const ops1 = new PortalVisitor(app)
  await ops1.signIn(fx.tokens.operator)

  const other = await ops1.get(`/ui/runs/${unlock.id}`)
  t.notMatch(other.body, /Break the glass/, 'not offered where the rule does not permit it')

  const page = await ops1.get(`/ui/runs/${deploy.id}`)
  const phrase = `testops.deploy on ${NODE}`
  t.match(page.body, /Break the glass/)
  t.match(page.body, `I run ${phrase} alone`)
  const form = { _csrf: PortalVisitor.field(page.body, '_csrf'), binding: PortalVisitor.field(page.body, 'binding'), reason: 'the second approver is unreachable' }

  const unconfirmed = await ops1.post(`/ui/runs/${deploy.id}/break-glass`, form)
  t.equal(unconfirmed.statusCode, 400)
  t.match(unconfirmed.body, /WRIT_ERR_VALIDATION.*confirm: tick the box that names what runs alone/s)
  const wrongBox = await ops1.post(`/ui/runs/${deploy.id}/break-glass`, { ...form, confirm: `testops.deploy on some-other-node` })
  t.equal(wrongBox.statusCode, 400, 'a confirmation naming another node does not count')
  t.equal(await status(deploy.id), 'pending_approval', 'nothing ran')
  t.comment(`without the confirmation: ${unconfirmed.statusCode}`)

  const done = await ops1.post(`/ui/runs/${deploy.id}/break-glass`, { ...form, confirm: phrase })
  t.equal(done.statusCode, 303, done.body.slice(0, 500))
  t.equal(await status(deploy.id, 10), 'succeeded')
  t.comment(`confirmed "${phrase}": 303, the run ${await status(deploy.id)}`)

  const mine = await ops1.get('/ui/reviews')
  t.match(mine.body, /waiting for another approver/)
  t.notMatch(mine.body, /Acknowledge<\/button>/, 'its author gets no acknowledge button')

  const ops2 = new PortalVisitor(app)
  await ops2.signIn(fx.tokens.operator2)
  const theirs = await ops2.get('/ui/reviews')
  t.match(theirs.body, /Acknowledge<\/button>/)
  const reviewId = /action="\/ui\/reviews\/(v[0-9a-z]+)\/ack"/.exec(theirs.body)?.[1] as string
  const ack = await ops2.post(`/ui/reviews/${reviewId}/ack`, { _csrf: PortalVisitor.field(theirs.body, '_csrf'), comment: 'looked at it; fine' })
  t.equal(ack.statusCode, 303)
  const after = await ops2.get('/ui/reviews?done=1')
  t.match(after.body, /acknowledged by <strong>ops-2<\/strong>/)
  const again = await ops2.post(`/ui/reviews/${reviewId}/ack`, { _csrf: PortalVisitor.field(after.body, '_csrf') })
  t.equal(again.statusCode, 409)
  t.match(again.body, /WRIT_ERR_REVIEW_ACKNOWLEDGED/)
})

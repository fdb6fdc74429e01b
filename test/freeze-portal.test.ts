/**
 * The freeze in the portal: the Nodes page has the switch (a form with the
 * session's CSRF token), every page carries a banner while something is
 * frozen, unfreezing is a form too; a form without its token, or an empty
 * reason, changes nothing. Through the portal's pages as a visitor with
 * cookies (portal-visitor.ts).
 */
import t from 'tap'
import { auth, startCpSuite } from './helpers/cp-fixtures.js'
import { PortalVisitor } from './helpers/portal-visitor.js'

t.test('freeze and unfreeze from the Nodes page; a banner on every page meanwhile', async (t) => {
  const { fx, app } = await startCpSuite(t)
  const ops = new PortalVisitor(app)
  await ops.signIn(fx.tokens.operator)

  const nodes = await ops.get('/ui/nodes')
  t.equal(nodes.statusCode, 200)
  t.match(nodes.body, /<form method="post" action="\/ui\/freeze"/, 'the Nodes page has the freeze form')
  t.match(nodes.body, /<option value="agent-1">agent-1<\/option>/, 'one agent can be frozen alone')
  t.notMatch(nodes.body, /<option value="ops-1">/, 'operators are not offered')
  t.notMatch(nodes.body, /frozen-banner/, 'no banner while nothing is frozen')
  const csrf = PortalVisitor.field(nodes.body, '_csrf')

  const noToken = await ops.post('/ui/freeze', { reason: 'no token', scope: 'agents' })
  t.equal(noToken.statusCode, 403, 'a form without its CSRF token is refused')
  t.match(noToken.body, /WRIT_ERR_CSRF/)
  const empty = await ops.post('/ui/freeze', { _csrf: csrf, reason: '   ', scope: 'agents' })
  t.equal(empty.statusCode, 400)
  t.match(empty.body, /WRIT_ERR_VALIDATION/)
  const unknown = await ops.post('/ui/freeze', { _csrf: csrf, reason: 'x', scope: 'someone-else' })
  t.equal(unknown.statusCode, 400)
  t.match(unknown.body, /WRIT_ERR_UNKNOWN_PRINCIPAL/)
  t.equal(app.writ.brakes.freezes.length, 0, 'none of them froze anything')

  const frozen = await ops.post('/ui/freeze', { _csrf: csrf, reason: 'storage <b>incident</b>', scope: 'agents' })
  t.equal(frozen.statusCode, 303, frozen.body)
  t.equal(frozen.headers.location, '/ui/nodes?brakes=frozen#freeze')
  t.match(app.writ.brakes.freezes, [{ scope: 'agents', by: 'ops-1', reason: 'storage <b>incident</b>' }])

  const api = await app.inject({ method: 'GET', url: '/v1/freeze', headers: auth(fx.tokens.agent) })
  t.match(api.json(), { frozen: true, freezes: [{ scope: 'agents', by: 'ops-1' }] }, 'the API sees the same freeze')

  for (const page of ['/ui', '/ui/runs', '/ui/audit']) {
    const res = await ops.get(page)
    t.match(res.body, /class="frozen-banner" role="alert"/, `${page} carries the banner`)
    t.match(res.body, /every agent — by ops-1/)
    t.match(res.body, /storage &lt;b&gt;incident&lt;\/b&gt;/, 'the reason is escaped, never markup')
  }
  const after = await ops.get('/ui/nodes?brakes=frozen')
  t.match(after.body, /Frozen\. Every replica refuses/)
  t.match(after.body, /<input type="hidden" name="scope" value="agents">/, 'an unfreeze form for the freeze in force')

  const lifted = await ops.post('/ui/unfreeze', { _csrf: PortalVisitor.field(after.body, '_csrf'), scope: 'agents' })
  t.equal(lifted.statusCode, 303, lifted.body)
  t.equal(app.writ.brakes.freezes.length, 0)
  const again = await ops.post('/ui/unfreeze', { _csrf: PortalVisitor.field(after.body, '_csrf'), scope: 'agents' })
  t.equal(again.statusCode, 409, 'unfreezing what is not frozen is refused')
  t.match(again.body, /WRIT_ERR_NOT_FROZEN/)
  t.notMatch((await ops.get('/ui')).body, /frozen-banner/, 'the banner is gone')

  const audit = await app.inject({ method: 'GET', url: '/v1/audit?limit=1000', headers: auth(fx.tokens.operator) })
  const types = audit.body.trim().split('\n').map((l) => JSON.parse(l) as { type: string })
  t.ok(types.some((e) => e.type === 'freeze.set') && types.some((e) => e.type === 'freeze.lifted'), 'both on the audit chain')
})

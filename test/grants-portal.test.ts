/**
 * Grants in the portal: on a run waiting for approval, "Approve and allow
 * this for 1 h" approves it and gives its requester a one-hour grant for the
 * same action, node and arguments; the Grants page lists it and revokes it.
 * Forms are POSTs with the session's CSRF token; without it nothing changes.
 */
import t from 'tap'
import { auth, startCpSuite } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'
import { PortalVisitor } from './helpers/portal-visitor.js'

t.test('the Grants page and "Approve and allow this for 1 h"', async (t) => {
  const { nats, fx, app } = await startCpSuite(t)
  const runner = await startRealRunner(fx, nats.url, 'host-1')
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('host-1')?.online, 10_000, 'runner heartbeat')
  const request = async () => (await app.inject({
    method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent),
    payload: { action: 'testops.unlock', node: 'host-1', args: { vault: 'main', pin: '4321' }, reason: 'open the vault for the restore', wait: 10 },
  })).json()
  const ops = new PortalVisitor(app)
  await ops.signIn(fx.tokens.operator)

  const first = await request()
  t.equal(first.status, 'pending_approval')
  const page = await ops.get(`/ui/runs/${first.id}`)
  t.match(page.body, new RegExp(`<form method="post" action="/ui/runs/${first.id}/approve-and-grant">`))
  t.match(page.body, /lets <strong>agent-1 \(agent\)<\/strong> run <code>testops.unlock<\/code> on <strong>host-1<\/strong> with exactly these arguments for the next hour/)
  t.match(page.body, /<button type="submit">Approve and allow this for 1 h<\/button>/)
  const form = { _csrf: PortalVisitor.field(page.body, '_csrf'), binding: PortalVisitor.field(page.body, 'binding') }
  const posted = await ops.post(`/ui/runs/${first.id}/approve-and-grant`, form)
  t.equal(posted.statusCode, 303, posted.body.slice(0, 300))
  t.equal(posted.headers.location, `/ui/runs/${first.id}?done=1`)
  const done = (await app.inject({ method: 'GET', url: `/v1/runs/${first.id}?wait=10`, headers: auth(fx.tokens.agent) })).json()
  t.match(done, { status: 'succeeded', approval: { approvals: [{ by: 'ops-1' }] } }, 'the run itself was approved')

  const listed = await ops.get('/ui/grants')
  t.equal(listed.statusCode, 200)
  t.match(listed.body, /<code>testops.unlock<\/code> on <strong>host-1<\/strong><br><small>vault=main {2}pin=\[redacted\]<\/small>/)
  t.match(listed.body, /class="tone-ok">active/)
  t.notMatch(listed.body, /4321/, 'the pin is never on the page')
  const grantId = /id="grant-(g[0-9a-z]{17})"/.exec(listed.body)?.[1] as string
  t.ok(grantId)
  t.comment(`portal: "Approve and allow this for 1 h" on ${first.id} → run succeeded, grant ${grantId} active for agent-1`)

  const covered = await request()
  t.match(covered, { status: 'succeeded', grant: { id: grantId, uses_left: null } }, 'the same request runs without asking')

  const noCsrf = await ops.post(`/ui/grants/${grantId}/revoke`, {})
  t.equal(noCsrf.statusCode, 403)
  t.match(noCsrf.body, /WRIT_ERR_CSRF/)
  t.match(await request(), { status: 'succeeded', grant: { id: grantId } }, 'a revoke without the CSRF token changed nothing')

  const revoke = await ops.post(`/ui/grants/${grantId}/revoke`, { _csrf: PortalVisitor.field(listed.body, '_csrf') })
  t.equal(revoke.statusCode, 303)
  const after = await ops.get('/ui/grants?done=revoked')
  t.match(after.body, /The grant is revoked/)
  t.match(after.body, /class="tone-bad">revoked<br><small>by ops-1<\/small>/)
  t.match(await request(), { status: 'pending_approval' }, 'after the revoke the next request waits again')
  t.comment(`portal: Revoke ${grantId} → revoked; the next request waits for approval`)
})

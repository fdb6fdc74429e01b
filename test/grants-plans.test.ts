/**
 * A standing grant covers a plan: every gated target, one use each, spent
 * together or not at all. The plan rolls out at once, each target's writ
 * carries the grant's signed statement, and each real runner checks it and
 * counts the use in its own journal. A plan with more gated targets than the
 * grant has uses left waits for a person, and spends nothing. Under the
 * approver registry, the runners verify the grant's passkeys on each target.
 */
import t from 'tap'
import type { NodeRunner } from '@writ/node-runner'
import { bindingChallenge } from '@writ/packs/approvers'
import { auth, runnerJournal, startCpSuite } from './helpers/cp-fixtures.js'
import { startPasskeySuite } from './helpers/passkey-suite.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'
import { PortalVisitor } from './helpers/portal-visitor.js'

const NODES = ['gp-1', 'gp-2', 'gp-3']

t.test('a grant with 4 uses covers a plan over 3 nodes; the next plan over 3 waits for approval', async (t) => {
  const { nats, fx, app } = await startCpSuite(t)
  const runners: NodeRunner[] = []
  for (const n of NODES) runners.push(await startRealRunner(fx, nats.url, n))
  t.teardown(async () => { for (const r of runners) await r.close() })
  await eventually(() => NODES.every((n) => app.writ.fleet.find(n)?.online), 10_000, 'runner heartbeats')
  const plan = (reason: string) => app.inject({ method: 'POST', url: '/v1/plans', headers: auth(fx.tokens.agent), payload: { action: 'testops.restart', args: {}, reason, targets: { nodes: NODES } } })
  const view = async (id: string) => (await app.inject({ method: 'GET', url: `/v1/plans/${id}`, headers: auth(fx.tokens.operator) })).json()
  const grantNow = async (id: string) => (await app.inject({ method: 'GET', url: `/v1/grants/${id}`, headers: auth(fx.tokens.operator) })).json()

  const ungranted = await plan('restart the workers before the grant')
  t.equal(ungranted.json().status, 'pending_approval', 'without a grant the plan waits for a person')
  await app.inject({ method: 'POST', url: `/v1/plans/${ungranted.json().plan_id}/halt`, headers: auth(fx.tokens.operator), payload: { reason: 'superseded' } })

  const given = await app.inject({
    method: 'POST', url: '/v1/grants', headers: auth(fx.tokens.operator),
    payload: { principal: 'agent-1', action: 'testops.restart', node: '*', args: 'any', uses: 4, expires_in: '1h', reason: 'incident 4711: restart the workers as needed' },
  })
  t.equal(given.statusCode, 201, given.body)
  const grant = given.json()
  t.comment(`POST /v1/grants by ops-1 → ${grant.id} ${grant.status}, testops.restart on *, 4 uses`)

  const covered = await plan('the workers hang on every node')
  t.equal(covered.statusCode, 202, covered.body)
  t.match(covered.json(), { status: 'running', grant: { id: grant.id, uses: 3, uses_left: 1 } })
  t.notOk(covered.json().approval, 'no decision to wait for')
  const id = covered.json().plan_id as string
  const done = await eventually(async () => { const v = await view(id); return v.status === 'succeeded' ? v : undefined }, 20_000, 'the covered plan to finish')
  t.same(done.counts, { targets: 3, succeeded: 3 })
  t.comment(`agent-1 POST /v1/plans testops.restart on ${NODES.length} nodes → ${covered.statusCode} ${covered.json().status}, grant uses_left ${covered.json().grant.uses_left} → ${done.status} ${JSON.stringify(done.counts)}`)
  for (const node of NODES) {
    const journal = runnerJournal(fx, node)
    t.equal(journal.filter((e) => e.type === 'accepted' && e.data.plan === id && e.data.grant === grant.id).length, 1, `${node}'s runner accepted its target under the grant, once`)
  }
  const audit = (await app.inject({ method: 'GET', url: `/v1/audit?run_id=${id}`, headers: auth(fx.tokens.operator) })).body.trim().split('\n').map((l) => JSON.parse(l) as { type: string, data: Record<string, unknown> })
  t.match(audit.map((e) => e.type).slice(0, 2), ['plan.requested', 'grant.used'], 'the grant\'s use is on the chain before anything left')
  t.match(audit.find((e) => e.type === 'grant.used')?.data, { grant_id: grant.id, plan_id: id, uses: 3, uses_left: 1, approved_by: ['ops-1'] })

  const ops = new PortalVisitor(app)
  await ops.signIn(fx.tokens.operator)
  const page = await ops.get(`/ui/plans/${id}`)
  t.match(page.body, new RegExp(`<dd id="plan-grant">covered by standing grant <a href="/ui/grants#grant-${grant.id}"><code>${grant.id}</code></a> \\(approved by ops-1\\): one use for each of its 3 gated node\\(s\\)`))

  const tooMany = await plan('and once more on every node')
  t.equal(tooMany.json().status, 'pending_approval', 'three gated targets, one use left: the plan waits for a person')
  t.notOk(tooMany.json().grant)
  t.equal((await grantNow(grant.id)).uses_left, 1, 'and spends nothing')
  t.comment(`a second plan on ${NODES.length} nodes with 1 use left → ${tooMany.json().status}; grant still has ${(await grantNow(grant.id)).uses_left} use`)
  await app.inject({ method: 'POST', url: `/v1/plans/${tooMany.json().plan_id}/halt`, headers: auth(fx.tokens.operator), payload: { reason: 'test over' } })

  const one = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.restart', node: 'gp-2', args: {}, reason: 'one node once more' } })
  t.match(one.json(), { grant: { id: grant.id, uses_left: 0 } }, 'a single run takes the last use')
})

t.test('under the approver registry, a passkey-signed grant covers a plan and every runner verifies its passkeys', async (t) => {
  const { nats, fx, app, ops1, ops2, registryFile, approversPub } = await startPasskeySuite(t, { default: { groups: ['oncall'], quorum: 2 }, rules: [], min_risk: 'high' })
  const runners: NodeRunner[] = []
  for (const n of NODES) runners.push(await startRealRunner(fx, nats.url, n, { approversRegistry: registryFile, approversKeys: [approversPub], approversReloadMs: 200 }))
  t.teardown(async () => { for (const r of runners) await r.close() })
  await eventually(() => NODES.every((n) => app.writ.fleet.find(n)?.online), 10_000, 'runner heartbeats')

  const grant = (await app.inject({
    method: 'POST', url: '/v1/grants', headers: auth(fx.tokens.operator),
    payload: { principal: 'agent-1', action: 'testops.restart', node: '*', args: 'any', uses: 3, expires_in: '1h', reason: 'incident 4711: restart the workers' },
  })).json()
  t.match(grant, { status: 'pending', passkey_required: true, quorum: 2 })
  for (const [token, who] of [[fx.tokens.operator, ops1], [fx.tokens.operator2, ops2]] as const) {
    const signed = await app.inject({ method: 'POST', url: `/v1/grants/${grant.id}/approve`, headers: auth(token), payload: { digest: grant.digest, passkey: who.passkey.assert(bindingChallenge(grant.digest)) } })
    t.equal(signed.statusCode, 200, signed.body)
  }
  const made = await app.inject({ method: 'POST', url: '/v1/plans', headers: auth(fx.tokens.agent), payload: { action: 'testops.restart', args: {}, reason: 'the workers hang', targets: { nodes: NODES } } })
  t.match(made.json(), { status: 'running', grant: { id: grant.id, uses: 3, uses_left: 0 } }, made.body)
  const id = made.json().plan_id as string
  const done = await eventually(async () => {
    const v = (await app.inject({ method: 'GET', url: `/v1/plans/${id}`, headers: auth(fx.tokens.operator) })).json()
    return v.status === 'succeeded' ? v : undefined
  }, 20_000, 'the plan to finish')
  t.same(done.counts, { targets: 3, succeeded: 3 })
  for (const node of NODES) {
    const journal = runnerJournal(fx, node)
    t.match(journal.find((e) => e.type === 'accepted' && e.data.plan === id)?.data, {
      grant: grant.id, passkeys: { verified: [{ by: 'ops-1', credential_id: ops1.passkey.credentialId }, { by: 'ops-2', credential_id: ops2.passkey.credentialId }] },
    }, `${node}'s runner verified both passkeys over the grant's digest`)
  }
  t.comment(`passkey-signed grant ${grant.id} (ops-1, ops-2) covers a plan on ${NODES.length} nodes → ${done.status}; each runner journal: passkeys.verified = [ops-1, ops-2]`)
})

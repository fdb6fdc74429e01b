/**
 * Approvals over REST against real NATS and the real node-runner: a gated run
 * waits with a link, one operator decides, the run dispatches at once with the
 * approval in its writ; every abuse is refused with a typed code, audited, and
 * dispatches nothing.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildApp, parseConfig, type AuditEvent } from '@writ/control-plane'
import { auth, startCpSuite } from './helpers/cp-fixtures.js'
import { eventually, startFakeRunner } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'

t.test('approvals over REST', async (t) => {
  const { nats, fx, app } = await startCpSuite(t)
  const runner = await startRealRunner(fx, nats.url, 'host-1')
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('host-1')?.online, 10_000, 'runner heartbeat')
  const request = async (action: string, extra: Record<string, unknown> = {}, token = fx.tokens.agent) =>
    app.inject({ method: 'POST', url: '/v1/runs', headers: auth(token), payload: { action, node: 'host-1', args: {}, reason: 'restart the stuck worker', ...extra } })
  const decide = (id: string, verb: 'approve' | 'deny', token: string, payload: Record<string, unknown> = {}) =>
    app.inject({ method: 'POST', url: `/v1/runs/${id}/${verb}`, headers: auth(token), payload })
  const auditOf = async (runId: string): Promise<AuditEvent[]> => {
    const res = await app.inject({ method: 'GET', url: `/v1/audit?run_id=${runId}`, headers: auth(fx.tokens.operator) })
    return res.body.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditEvent)
  }
  const journal = (): string => readFileSync(join(fx.dir, 'journal-host-1.jsonl'), 'utf8')

  await t.test('a gated run waits with its portal link, then one approval dispatches it with the approval in the writ', async (t) => {
    const res = await request('testops.restart', { expected: 'the worker comes back within a minute' })
    t.equal(res.statusCode, 202)
    const run = res.json()
    t.match(run, {
      status: 'pending_approval', expected: 'the worker comes back within a minute',
      approval: { url: new RegExp(`/ui/runs/${run.id}$`), quorum: 1, approvals_so_far: 0, approver_groups: ['oncall'], expires_at: String },
    })
    t.ok(Date.parse(run.approval.expires_at) - Date.now() > 14 * 60_000, 'the default window is 15 minutes')
    const polled = await app.inject({ method: 'GET', url: `/v1/runs/${run.id}`, headers: auth(fx.tokens.agent) })
    t.match(polled.json().approval, { url: run.approval.url, approvals_so_far: 0 })

    const listed = await app.inject({ method: 'GET', url: '/v1/approvals', headers: auth(fx.tokens.operator) })
    t.ok(listed.json().approvals.some((a: { id: string }) => a.id === run.id), 'the run is in the operators\' pending list')
    const asAgent = await app.inject({ method: 'GET', url: '/v1/approvals', headers: auth(fx.tokens.agent) })
    t.equal(asAgent.statusCode, 403, 'agents do not list approvals')

    const ok = await decide(run.id, 'approve', fx.tokens.operator, { comment: 'go ahead', binding: run.approval.binding })
    t.equal(ok.statusCode, 200, ok.body)
    t.not(ok.json().status, 'pending_approval')
    const done = await app.inject({ method: 'GET', url: `/v1/runs/${run.id}?wait=10`, headers: auth(fx.tokens.agent) })
    t.match(done.json(), { status: 'succeeded', approval: { approvals: [{ by: 'ops-1', comment: 'go ahead', binding: run.approval.binding }] } })

    const accepted = journal().trim().split('\n').map((l) => JSON.parse(l)).find((e) => e.type === 'accepted' && e.run_id === run.id)
    t.match(accepted?.data.approvals, [{ by: 'ops-1', binding: run.approval.binding }], 'the runner journaled the approval it checked')
    const types = (await auditOf(run.id)).map((e) => `${e.type}:${e.actor?.id}`)
    t.same(types.slice(0, 3), ['run.requested:agent-1', 'approval.granted:ops-1', 'run.dispatched:control-plane'], 'the approval is on the chain before the writ left')
    t.ok(types.includes('run.finished:node:host-1'), types.join(' '))
  })

  await t.test('one deny ends the run and its reason reaches the agent', async (t) => {
    const run = (await request('testops.restart')).json()
    const denied = await decide(run.id, 'deny', fx.tokens.operator, { reason: 'not during the incident review' })
    t.equal(denied.statusCode, 200)
    const seen = (await app.inject({ method: 'GET', url: `/v1/runs/${run.id}`, headers: auth(fx.tokens.agent) })).json()
    t.match(seen, { status: 'denied', status_reason: /ops-1: not during the incident review/, approval: { denial: { by: 'ops-1', reason: 'not during the incident review' } } })
    const after = await decide(run.id, 'approve', fx.tokens.operator2)
    t.match(after.json(), { error: { code: 'WRIT_ERR_ALREADY_DECIDED' } }, 'a deny followed by an approve is refused')
    const noReason = await decide((await request('testops.restart')).json().id, 'deny', fx.tokens.operator, {})
    t.match(noReason.json(), { error: { code: 'WRIT_ERR_VALIDATION' } }, 'a deny needs a reason')
  })

  await t.test('abuse is refused with a typed code, audited, and dispatches nothing', async (t) => {
    const run = (await request('testops.restart')).json()
    const cases: Array<[string, string, Record<string, unknown>, number, string]> = [
      ['the requester (same person, operator token)', fx.tokens.agentsOperator, {}, 403, 'WRIT_ERR_SELF_APPROVAL'],
      ['an agent', fx.tokens.agent2, {}, 403, 'WRIT_ERR_FORBIDDEN'],
      ['an operator outside the approver groups', fx.tokens.outsider, {}, 403, 'WRIT_ERR_NOT_AN_APPROVER'],
      ['a decision on another binding', fx.tokens.operator, { binding: 'f'.repeat(64) }, 409, 'WRIT_ERR_BINDING_MISMATCH'],
    ]
    for (const [who, token, payload, status, code] of cases) {
      const res = await decide(run.id, 'approve', token, payload)
      t.equal(res.statusCode, status, who)
      t.equal(res.json().error.code, code, who)
    }
    const still = (await app.inject({ method: 'GET', url: `/v1/runs/${run.id}`, headers: auth(fx.tokens.operator) })).json()
    t.match(still, { status: 'pending_approval', approval: { approvals: [] } }, 'nothing changed')
    const events = await auditOf(run.id)
    const rejected = events.filter((e) => e.type === 'request.rejected').map((e) => (e.data as { code: string }).code)
    t.same(rejected.sort(), ['WRIT_ERR_BINDING_MISMATCH', 'WRIT_ERR_FORBIDDEN', 'WRIT_ERR_NOT_AN_APPROVER', 'WRIT_ERR_SELF_APPROVAL'], 'every attempt is on the record')
    t.notOk(events.some((e) => e.type === 'run.dispatched'), 'nothing was dispatched')
    t.notOk(journal().includes(run.id), 'the runner never saw it')

    const first = await decide(run.id, 'approve', fx.tokens.operator)
    t.equal(first.statusCode, 200)
    const second = await decide(run.id, 'approve', fx.tokens.operator2)
    t.equal(second.statusCode, 409)
    t.match(second.json(), { error: { code: 'WRIT_ERR_ALREADY_DECIDED', message: /is not waiting for approval: it is \w+ by ops-1/ } }, 'a second approval is told who decided')
  })

  await t.test('two operators approving at the same moment: one decision, one dispatch', async (t) => {
    for (let round = 0; round < 3; round++) {
      const run = (await request('testops.restart')).json()
      const answers = await Promise.all([decide(run.id, 'approve', fx.tokens.operator), decide(run.id, 'approve', fx.tokens.operator2)])
      const codes = answers.map((a) => a.statusCode).sort()
      t.same(codes, [200, 409], `round ${round}: one wins, the other is told it is already decided`)
      await app.inject({ method: 'GET', url: `/v1/runs/${run.id}?wait=10`, headers: auth(fx.tokens.agent) })
      const events = await auditOf(run.id)
      t.equal(events.filter((e) => e.type === 'approval.granted').length, 1)
      t.equal(events.filter((e) => e.type === 'run.dispatched').length, 1, 'dispatched once')
      t.equal(journal().split('\n').filter((l) => l.includes(`"run_id":"${run.id}"`) && l.includes('"type":"accepted"')).length, 1, 'the runner accepted it once')
    }
  })

  await t.test('quorum 2: dispatched only after the second distinct approver', async (t) => {
    const run = (await request('testops.deploy')).json()
    t.match(run.approval, { quorum: 2, approvals_so_far: 0 })
    const one = await decide(run.id, 'approve', fx.tokens.operator)
    t.match(one.json(), { status: 'pending_approval', approval: { approvals_so_far: 1 } })
    const again = await decide(run.id, 'approve', fx.tokens.operator)
    t.match(again.json(), { error: { code: 'WRIT_ERR_ALREADY_APPROVED', message: /needs 1 more/ } })
    t.notOk((await auditOf(run.id)).some((e) => e.type === 'run.dispatched'), 'one approval does not dispatch')
    const two = await decide(run.id, 'approve', fx.tokens.operator3)
    t.equal(two.statusCode, 200)
    const done = (await app.inject({ method: 'GET', url: `/v1/runs/${run.id}?wait=10`, headers: auth(fx.tokens.agent) })).json()
    t.match(done, { status: 'succeeded', approval: { approvals: [{ by: 'ops-1' }, { by: 'ops-3' }] } })
  })

  await t.test('evidence must be the requester\'s own earlier runs', async (t) => {
    const mine = (await request('testops.echo', { args: { message: 'look' }, wait: 10 })).json()
    const theirs = (await request('testops.echo', { args: { message: 'other' }, wait: 10 }, fx.tokens.agent2)).json()
    const good = await request('testops.restart', { evidence: [mine.id], session_id: 'incident-7' })
    t.match(good.json(), { status: 'pending_approval', evidence: [mine.id] })
    for (const bad of [theirs.id, 'r0000000000000000000000']) {
      const res = await request('testops.restart', { evidence: [bad] })
      t.match(res.json(), { error: { code: 'WRIT_ERR_EVIDENCE_NOT_FOUND' } }, `evidence ${bad} refused`)
    }
    const twice = await request('testops.restart', { evidence: [mine.id, mine.id] })
    t.match(twice.json(), { error: { code: 'WRIT_ERR_VALIDATION' } })
    const requested = (await auditOf(good.json().id)).find((e) => e.type === 'run.requested')
    t.match(requested?.data, { evidence: [mine.id] }, 'evidence is audited')
  })
})

t.test('an approval window that closes expires the run', async (t) => {
  const { fx } = await startCpSuite(t)
  const config = parseConfig({ ...fx.config, policy: { rules: [{ name: 'quick', match: {}, decision: 'require_approval', approver_groups: ['oncall'], quorum: 1, ttl: '1s' }] } })
  const app2 = await buildApp(config)
  t.teardown(() => app2.close())
  const fake = await startFakeRunner({ natsUrl: fx.config.nats.servers[0] as string, nodeId: 'host-x', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile })
  t.teardown(() => fake.close())
  await eventually(() => app2.writ.fleet.find('host-x')?.online, 10_000, 'heartbeat')
  const run = (await app2.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.restart', node: 'host-x', args: {}, reason: 'r' } })).json()
  t.equal(run.status, 'pending_approval')
  const expired = await eventually(async () => {
    const r = (await app2.inject({ method: 'GET', url: `/v1/runs/${run.id}`, headers: auth(fx.tokens.agent) })).json()
    return r.status === 'expired' ? r : undefined
  }, 10_000, 'expiry')
  t.match(expired.status_reason, /no decision by .* \(0 of 1 approvals\); the run was not dispatched/)
  const late = await app2.inject({ method: 'POST', url: `/v1/runs/${run.id}/approve`, headers: auth(fx.tokens.operator), payload: {} })
  t.match(late.json(), { error: { code: 'WRIT_ERR_ALREADY_DECIDED', message: /it is expired/ } })
  t.equal(fake.writs.length, 0, 'nothing was dispatched')
})

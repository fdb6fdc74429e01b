/**
 * Standing grants over REST against real NATS and the real node-runner: an
 * operator grants an agent an action for a while and a number of uses; the
 * requests it covers dispatch at once (the answer says which grant and how
 * many uses are left, the audit trail says `grant.used`, the runner journals
 * the grant), and the next one after it is used up, revoked or expired waits
 * for a person again. Every bad grant is a typed error that changes nothing.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { AuditEvent } from '@writ/control-plane'
import { auth, startCpSuite } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'

t.test('standing grants over REST', async (t) => {
  const { nats, fx, app } = await startCpSuite(t)
  const runner = await startRealRunner(fx, nats.url, 'host-1')
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('host-1')?.online, 10_000, 'runner heartbeat')
  const request = (action: string, args: Record<string, unknown> = {}, token = fx.tokens.agent) =>
    app.inject({ method: 'POST', url: '/v1/runs', headers: auth(token), payload: { action, node: 'host-1', args, reason: 'the worker is stuck again', wait: 10 } })
  const grant = (payload: Record<string, unknown>, token = fx.tokens.operator) =>
    app.inject({ method: 'POST', url: '/v1/grants', headers: auth(token), payload: { principal: 'agent-1', node: 'host-1', args: 'any', expires_in: '1h', reason: 'incident 4711: restart as needed', ...payload } })
  const grants = async () => (await app.inject({ method: 'GET', url: '/v1/grants', headers: auth(fx.tokens.operator) })).json().grants as Array<Record<string, unknown>>
  const audit = async (): Promise<AuditEvent[]> => {
    const res = await app.inject({ method: 'GET', url: '/v1/audit?limit=100000', headers: auth(fx.tokens.operator) })
    return res.body.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditEvent)
  }
  const journal = () => readFileSync(join(fx.dir, 'journal-host-1.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))

  await t.test('a grant with 2 uses: two requests dispatch at once, the third waits for approval', async (t) => {
    const created = await grant({ action: 'testops.restart', uses: 2 })
    t.equal(created.statusCode, 201, created.body)
    const g = created.json()
    t.match(g, { status: 'active', principal: 'agent-1', action: 'testops.restart', node: 'host-1', uses: 2, uses_left: 2, quorum: 1, approvals: [{ by: 'ops-1' }] })
    t.comment(`POST /v1/grants by ops-1 → 201 ${g.id} ${g.status}, uses ${g.uses}, expires ${g.expires_at}`)

    for (const left of [1, 0]) {
      const res = await request('testops.restart')
      const run = res.json()
      t.equal(run.status, 'succeeded', `covered run ran (${run.status_reason})`)
      t.same(run.grant, { id: g.id, uses_left: left, expires_at: g.expires_at }, 'the answer names the grant and the uses left')
      t.notOk(run.approval, 'nobody was asked')
      t.comment(`agent-1 POST /v1/runs testops.restart → ${res.statusCode} ${run.status}, grant ${run.grant.id} uses_left ${run.grant.uses_left}`)
    }
    const third = await request('testops.restart')
    t.equal(third.statusCode, 202)
    t.match(third.json(), { status: 'pending_approval', approval: { quorum: 1 } })
    t.notOk(third.json().grant)
    t.comment(`agent-1 POST /v1/runs testops.restart → ${third.statusCode} ${third.json().status} (grant used up)`)

    const shown = (await app.inject({ method: 'GET', url: `/v1/grants/${g.id}`, headers: auth(fx.tokens.operator) })).json()
    t.match(shown, { status: 'used_up', uses_left: 0 })
    const used = (await audit()).filter((e) => e.type === 'grant.used')
    t.equal(used.length, 2, 'each use is audited as grant.used')
    t.match(used[0], { actor: { id: 'agent-1' }, action: 'testops.restart', node: 'host-1', data: { grant_id: g.id, uses_left: 1, approved_by: ['ops-1'] } })
    const events = (await audit()).filter((e) => e.run_id === used[0]?.run_id).map((e) => e.type)
    // run.dispatched records the runner's ack, which a fast result may overtake; the use comes before both.
    t.same(events.slice(0, 2), ['run.requested', 'grant.used'], 'the use is on the chain before the writ left')
    t.ok(events.includes('run.dispatched'), events.join(' '))
    const accepted = journal().filter((e) => e.type === 'accepted' && e.data.grant === g.id)
    t.equal(accepted.length, 2, 'the runner journaled both writs with the grant')
  })

  await t.test('exact arguments: only those are covered, and sensitive ones are never shown', async (t) => {
    const g = (await grant({ action: 'testops.unlock', args: { vault: 'main', pin: '1234' } })).json()
    t.match(g, { status: 'active', args: { vault: 'main', pin: '[redacted]' } })
    t.notMatch(JSON.stringify(await grants()), /1234/, 'the pin is in no listing')
    t.match((await request('testops.unlock', { vault: 'main', pin: '1234' })).json(), { status: 'succeeded', grant: { id: g.id } })
    t.match((await request('testops.unlock', { vault: 'main', pin: '9999' })).json(), { status: 'pending_approval' }, 'other arguments wait')
  })

  await t.test('a revoked grant covers nothing', async (t) => {
    const g = (await grant({ action: 'testops.restart' })).json()
    t.equal(g.uses, null, 'without uses it covers as many runs as its lifetime allows')
    t.match((await request('testops.restart')).json(), { status: 'succeeded', grant: { id: g.id, uses_left: null } })
    const revoked = await app.inject({ method: 'DELETE', url: `/v1/grants/${g.id}`, headers: auth(fx.tokens.operator2), payload: { reason: 'incident over' } })
    t.match(revoked.json(), { status: 'revoked', revoked_by: 'ops-2', revoke_reason: 'incident over' })
    t.match((await request('testops.restart')).json(), { status: 'pending_approval' })
    const again = await app.inject({ method: 'DELETE', url: `/v1/grants/${g.id}`, headers: auth(fx.tokens.operator) })
    t.match(again.json(), { error: { code: 'WRIT_ERR_GRANT_REVOKED', message: /revoked by ops-2/ } })
    t.ok((await audit()).some((e) => e.type === 'grant.revoked' && e.data.grant_id === g.id && e.actor?.id === 'ops-2'))
  })

  await t.test('quorum 2: the grant is active only once a second distinct approver co-signs its digest', async (t) => {
    const g = (await grant({ action: 'testops.deploy', uses: 1 })).json()
    t.match(g, { status: 'pending', quorum: 2, approvals: [{ by: 'ops-1' }] })
    t.match((await request('testops.deploy')).json(), { status: 'pending_approval' }, 'a pending grant covers nothing')
    const approve = (token: string, payload: Record<string, unknown> = {}) =>
      app.inject({ method: 'POST', url: `/v1/grants/${g.id}/approve`, headers: auth(token), payload })
    t.match((await approve(fx.tokens.operator)).json(), { error: { code: 'WRIT_ERR_ALREADY_APPROVED' } })
    t.match((await approve(fx.tokens.agentsOperator)).json(), { error: { code: 'WRIT_ERR_SELF_APPROVAL' } }, 'the agent\'s own person cannot co-sign')
    t.match((await approve(fx.tokens.outsider)).json(), { error: { code: 'WRIT_ERR_NOT_AN_APPROVER' } })
    t.match((await approve(fx.tokens.operator2, { digest: 'f'.repeat(64) })).json(), { error: { code: 'WRIT_ERR_BINDING_MISMATCH' } })
    const ok = await approve(fx.tokens.operator2, { digest: g.digest })
    t.match(ok.json(), { status: 'active', approvals: [{ by: 'ops-1' }, { by: 'ops-2' }] })
    const run = (await request('testops.deploy')).json()
    t.match(run, { status: 'succeeded', grant: { id: g.id, uses_left: 0 } })
    const accepted = journal().find((e) => e.type === 'accepted' && e.run_id === run.id)
    t.match(accepted?.data, { grant: g.id })
  })

  await t.test('bad grants: each a typed error, nothing changed', async (t) => {
    const before = (await grants()).length
    const createdBefore = (await audit()).filter((e) => e.type === 'grant.created').length
    const cases: Array<[string, Record<string, unknown>, string | undefined, number, string]> = [
      ['unknown principal', { principal: 'nobody', action: 'testops.restart' }, undefined, 400, 'WRIT_ERR_UNKNOWN_PRINCIPAL'],
      ['unknown action', { action: 'testops.nope' }, undefined, 404, 'WRIT_ERR_ACTION_NOT_FOUND'],
      ['unknown node', { action: 'testops.restart', node: 'host-9' }, undefined, 404, 'WRIT_ERR_NODE_NOT_FOUND'],
      ['lifetime over the cap (8h)', { action: 'testops.restart', expires_in: '9h' }, undefined, 400, 'WRIT_ERR_GRANT_LIFETIME'],
      ['zero uses', { action: 'testops.restart', uses: 0 }, undefined, 400, 'WRIT_ERR_VALIDATION'],
      ['negative uses', { action: 'testops.restart', uses: -3 }, undefined, 400, 'WRIT_ERR_VALIDATION'],
      ['a lifetime that is no duration', { action: 'testops.restart', expires_in: 'forever' }, undefined, 400, 'WRIT_ERR_VALIDATION'],
      ['args outside the contract', { action: 'testops.unlock', args: { vault: 'main', pin: 'abcd' } }, undefined, 400, 'WRIT_ERR_BAD_ARGS'],
      ['unknown args', { action: 'testops.restart', args: { force: true } }, undefined, 400, 'WRIT_ERR_BAD_ARGS'],
      ['an agent creating a grant', { action: 'testops.restart' }, fx.tokens.agent2, 403, 'WRIT_ERR_FORBIDDEN'],
      ['an operator outside the approver groups', { action: 'testops.restart' }, fx.tokens.outsider, 403, 'WRIT_ERR_NOT_AN_APPROVER'],
      ['a grant to oneself (the agent\'s own person)', { action: 'testops.restart' }, fx.tokens.agentsOperator, 403, 'WRIT_ERR_SELF_APPROVAL'],
      ['an action policy lets through anyway', { action: 'testops.echo', args: 'any' }, undefined, 409, 'WRIT_ERR_GRANT_NOT_NEEDED'],
      ['an action policy denies', { action: 'testops.wipe' }, undefined, 403, 'WRIT_ERR_POLICY_DENIED'],
      ['a reason with a line break', { action: 'testops.restart', reason: 'fine\nrm -rf' }, undefined, 400, 'WRIT_ERR_UNSAFE_TEXT'],
    ]
    for (const [what, payload, token, status, code] of cases) {
      const res = await grant(payload, token)
      t.equal(res.statusCode, status, `${what}: ${res.body}`)
      t.equal(res.json().error?.code, code, what)
      t.comment(`bad grant (${what}) → ${res.statusCode} ${res.json().error?.code}`)
    }
    t.equal((await grants()).length, before, 'no grant was stored')
    t.equal((await audit()).filter((e) => e.type === 'grant.created').length, createdBefore, 'no grant.created on the chain')
    const listedByAgent = await app.inject({ method: 'GET', url: '/v1/grants', headers: auth(fx.tokens.agent) })
    t.match(listedByAgent.json(), { error: { code: 'WRIT_ERR_FORBIDDEN' } }, 'agents do not list grants')
    t.match((await app.inject({ method: 'GET', url: '/v1/grants/gnotanid', headers: auth(fx.tokens.operator) })).json(), { error: { code: 'WRIT_ERR_VALIDATION' } })
    t.match((await app.inject({ method: 'DELETE', url: `/v1/grants/g${'0'.repeat(17)}`, headers: auth(fx.tokens.operator) })).json(), { error: { code: 'WRIT_ERR_GRANT_NOT_FOUND' } })
  })
})

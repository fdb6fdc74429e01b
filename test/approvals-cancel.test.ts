/**
 * Canceling someone else's run is a decision on it (issue #17, item 11): a run
 * that waits for, or went through, approval is canceled only by its requester,
 * an approver of its groups, or an operator in `runs.cancel_any_groups`. Any
 * other operator is refused with a typed, audited 403 that changes nothing.
 * A run canceled while it waited gets its Slack follow-up.
 */
import t from 'tap'
import { buildApp, parseConfig, type AuditEvent } from '@writ/control-plane'
import { auth, startCpSuite } from './helpers/cp-fixtures.js'
import { eventually, startFakeRunner } from './helpers/cp-fake-runner.js'
import { startSlackReceiver } from './helpers/slack-receiver.js'

async function setup(t: { teardown(fn: () => unknown): void }, runs: Record<string, unknown> = {}) {
  const { fx } = await startCpSuite(t)
  const slack = await startSlackReceiver()
  t.teardown(() => slack.close())
  const config = parseConfig({
    ...fx.config, public_url: 'https://writ.example.internal', runs: { ...fx.config.runs, lost_grace: '60s', ...runs },
    notify: { slack: { webhook_url: slack.url, max_attempts: 3, timeout: '2s', retry_base: '50ms' } },
  })
  const app = await buildApp(config)
  t.teardown(() => app.close())
  const runner = await startFakeRunner({ natsUrl: fx.config.nats.servers[0] as string, nodeId: 'host-c', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile, runDelayMs: 10_000 })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('host-c')?.online, 10_000, 'heartbeat')
  const request = async (action: string, token = fx.tokens.agent, args: Record<string, unknown> = {}) =>
    (await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(token), payload: { action, node: 'host-c', args, reason: 'restart the worker' } })).json()
  const cancel = (id: string, token: string) => app.inject({ method: 'POST', url: `/v1/runs/${id}/cancel`, headers: auth(token) })
  const get = async (id: string) => (await app.inject({ method: 'GET', url: `/v1/runs/${id}`, headers: auth(fx.tokens.operator) })).json()
  const auditOf = async (id: string): Promise<AuditEvent[]> =>
    (await app.inject({ method: 'GET', url: `/v1/audit?run_id=${id}`, headers: auth(fx.tokens.operator) })).body.trim().split('\n').map((l) => JSON.parse(l) as AuditEvent)
  const followUp = (id: string) => eventually(() => slack.messages.find((m) => String(m.text).includes(`run ${id})`) && !String(m.text).startsWith('Approval needed')), 10_000, `the Slack follow-up of ${id}`)
  return { fx, app, runner, slack, request, cancel, get, auditOf, followUp }
}

t.test('an operator outside the approver groups cannot cancel a run that waits for approval', async (t) => {
  const { fx, runner, request, cancel, get, auditOf } = await setup(t)
  const run = await request('testops.restart')
  t.equal(run.status, 'pending_approval')
  const res = await cancel(run.id, fx.tokens.outsider)
  t.equal(res.statusCode, 403, 'dev-1 (developers) is not an approver of an oncall run')
  t.match(res.json(), { error: { code: 'WRIT_ERR_CANCEL_FORBIDDEN', message: /agent-1.*oncall.*dev-1/, run_id: run.id, approver_groups: ['oncall'] } })
  t.match(await get(run.id), { status: 'pending_approval', approval: { approvals: [] } }, 'the run still waits')
  const events = await auditOf(run.id)
  t.ok(events.some((e) => e.type === 'request.rejected' && e.actor?.id === 'dev-1' && (e.data as { code: string }).code === 'WRIT_ERR_CANCEL_FORBIDDEN'), 'the attempt is on the record')
  t.notOk(events.some((e) => e.type === 'run.canceled'), 'nothing was canceled')
  t.equal(runner.writs.length, 0)
})

t.test('the requester and an approver may cancel a waiting run; Slack gets the follow-up', async (t) => {
  const { fx, request, cancel, get, followUp } = await setup(t)
  const own = await request('testops.restart')
  const byRequester = await cancel(own.id, fx.tokens.agent)
  t.equal(byRequester.statusCode, 200, 'the requester withdraws its own request')
  t.match(byRequester.json(), { status: 'canceled', status_reason: /canceled by agent-1 before dispatch/ })
  // The notification text holds ids only; the reason is in the message's (plain-text) section.
  t.match(JSON.stringify((await followUp(own.id)).blocks), /canceled: canceled by agent-1 before dispatch/, 'the approvers are told it is no longer waiting')

  const other = await request('testops.restart')
  const byApprover = await cancel(other.id, fx.tokens.operator)
  t.equal(byApprover.statusCode, 200, 'an approver of its group may cancel it')
  t.match(await get(other.id), { status: 'canceled', cancel_requested_by: 'ops-1' })
  t.match(JSON.stringify((await followUp(other.id)).blocks), /canceled by ops-1/)
})

t.test('an approved run on its node: only its approvers (or its requester) may cancel it', async (t) => {
  const { fx, app, runner, request, cancel, get } = await setup(t)
  const run = await request('testops.restart')
  t.equal((await app.inject({ method: 'POST', url: `/v1/runs/${run.id}/approve`, headers: auth(fx.tokens.operator), payload: {} })).statusCode, 200)
  await eventually(async () => (await get(run.id)).status === 'running', 10_000, 'the run is on its node')
  const refused = await cancel(run.id, fx.tokens.outsider)
  t.match(refused.json(), { error: { code: 'WRIT_ERR_CANCEL_FORBIDDEN' } }, 'an outsider cannot stop an approved run either')
  t.notOk((await get(run.id)).cancel_requested_by, 'no cancel was asked of the runner')
  t.equal((await cancel(run.id, fx.tokens.operator2)).statusCode, 200, 'another oncall approver may')
  t.match(await get(run.id), { cancel_requested_by: 'ops-2' })
  t.equal(runner.writs.length, 1)
})

t.test('a run policy let through at once: any operator may cancel it, as before', async (t) => {
  const { fx, request, cancel, get } = await setup(t)
  const run = await request('testops.sleep', fx.tokens.agent, { seconds: 20 })
  t.equal(run.status, 'running')
  t.equal((await cancel(run.id, fx.tokens.outsider)).statusCode, 200, 'no approver group guards it')
  t.match(await get(run.id), { cancel_requested_by: 'dev-1' })
})

t.test('runs.cancel_any_groups names who may cancel any run', async (t) => {
  const { fx, request, cancel } = await setup(t, { cancel_any_groups: ['developers'] })
  const run = await request('testops.restart')
  const res = await cancel(run.id, fx.tokens.outsider)
  t.equal(res.statusCode, 200, 'dev-1 is in a group the setting names')
  t.match(res.json(), { status: 'canceled', cancel_requested_by: 'dev-1' })
})

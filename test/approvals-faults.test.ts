/**
 * Approvals when control planes die: pending runs survive a kill -9 and are
 * decided from another replica, exactly once; a window that closes while no
 * control plane is up is expired by the next one to start; an approved run
 * whose instance died before sending it is dispatched by another.
 */
import t from 'tap'
import { connect } from '@nats-io/transport-node'
import { Kvm } from '@nats-io/kv'
import { RUNS_BUCKET, type AuditEvent, type Run } from '@writ/control-plane'
import { startNatsServer } from './helpers/nats-server.js'
import { makeCpFixture, auth } from './helpers/cp-fixtures.js'
import { eventually, startFakeRunner } from './helpers/cp-fake-runner.js'
import { startCpProcess } from './helpers/cp-process.js'

async function arrange(t: { teardown(fn: () => unknown): void }, ttl = '15m') {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  const configFile = fx.writeConfigFile({
    policy: { rules: [
      { name: 'restart-needs-a-person', match: { actions: ['testops.restart'] }, decision: 'require_approval', approver_groups: ['oncall'], quorum: 1, ttl },
      { name: 'agents', match: { kinds: ['agent'] }, decision: 'allow' },
    ] },
  })
  const runner = await startFakeRunner({ natsUrl: nats.url, nodeId: 'host-f', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile })
  t.teardown(() => runner.close())
  const api = (base: string, token = fx.tokens.agent) => async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, { method, headers: { ...auth(token), ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) })
    const text = await res.text()
    const isJson = (res.headers.get('content-type') ?? '').startsWith('application/json')
    return { status: res.status, json: (isJson ? JSON.parse(text) : {}) as Record<string, any>, text }
  }
  const online = async (base: string) => eventually(async () => ((await api(base)('GET', '/v1/nodes')).json.nodes as Array<{ online: boolean }>).some((n) => n.online), 10_000, 'the node online')
  return { nats, fx, configFile, runner, api, online }
}

t.test('kill -9 while a run waits; restarted, it still waits; approved from the other replica, it runs once', async (t) => {
  const { fx, configFile, runner, api, online } = await arrange(t)
  const a = await startCpProcess(configFile)
  t.teardown(() => a.stop())
  const b = await startCpProcess(configFile)
  t.teardown(() => b.stop())
  await online(a.url)
  const created = await api(a.url)('POST', '/v1/runs', { action: 'testops.restart', node: 'host-f', args: {}, reason: 'restart after the crash' })
  t.equal(created.json.status, 'pending_approval')
  const id = created.json.id as string
  await a.kill9()

  const again = await startCpProcess(configFile)
  t.teardown(() => again.stop())
  const after = await api(again.url)('GET', `/v1/runs/${id}`)
  t.match(after.json, { status: 'pending_approval', approval: { approvals_so_far: 0 } }, 'the pending run survived the kill')
  t.ok(((await api(again.url, fx.tokens.operator)('GET', '/v1/approvals')).json.approvals as Array<{ id: string }>).some((r) => r.id === id), 'and is in the approvals list')

  const decided = await Promise.all([
    api(b.url, fx.tokens.operator)('POST', `/v1/runs/${id}/approve`, {}),
    api(again.url, fx.tokens.operator2)('POST', `/v1/runs/${id}/approve`, {}),
  ])
  t.same(decided.map((d) => d.status).sort(), [200, 409], 'two replicas, two operators, one decision')
  const done = await api(again.url)('GET', `/v1/runs/${id}?wait=15`)
  t.equal(done.json.status, 'succeeded')
  t.equal(runner.writs.filter((w) => w.writ.run_id === id).length, 1, 'the runner got exactly one writ')
  const events = (await api(b.url, fx.tokens.operator)('GET', `/v1/audit?run_id=${id}`)).text
  const types = events.trim().split('\n').map((l) => (JSON.parse(l) as AuditEvent).type)
  t.equal(types.filter((x) => x === 'approval.granted').length, 1)
  t.equal(types.filter((x) => x === 'run.dispatched').length, 1)
})

t.test('a window that closes while no control plane runs is expired by the next one to start', async (t) => {
  const { configFile, runner, api, online } = await arrange(t, '2s')
  const a = await startCpProcess(configFile)
  await online(a.url)
  const created = await api(a.url)('POST', '/v1/runs', { action: 'testops.restart', node: 'host-f', args: {}, reason: 'expire me' })
  const id = created.json.id as string
  const expiresAt = Date.parse(created.json.approval.expires_at as string)
  await a.kill9()
  await eventually(() => Date.now() > expiresAt + 200, 10_000, 'the window to close with nobody up')
  const b = await startCpProcess(configFile)
  t.teardown(() => b.stop())
  const run = await api(b.url)('GET', `/v1/runs/${id}`)
  t.match(run.json, { status: 'expired', status_reason: /no decision by/ }, 'expired by the control plane that started next')
  t.equal(runner.writs.length, 0, 'never dispatched')
})

t.test('an approved run whose instance died before sending it is dispatched by another, with its approval restated first', async (t) => {
  const { nats, configFile, runner, api, online, fx } = await arrange(t)
  const a = await startCpProcess(configFile)
  t.teardown(() => a.stop())
  await online(a.url)
  const created = await api(a.url)('POST', '/v1/runs', { action: 'testops.restart', node: 'host-f', args: {}, reason: 'approved, then the instance died' })
  const id = created.json.id as string
  await a.kill9()
  // What a crash between the approval's record and its dispatch leaves behind: an approved record, older than the grace.
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  const kv = await new Kvm(nc).open(RUNS_BUCKET)
  const entry = await kv.get(id)
  const run = JSON.parse(entry!.string()) as Run
  const at = new Date(Date.now() - 60_000).toISOString()
  const approved: Run = { ...run, status: 'approved', status_reason: 'approved by ops-1', approval: { ...run.approval!, approved_at: at, approvals: [{ by: 'ops-1', person: 'ops-1', at, binding: run.approval!.binding }] } }
  await kv.update(id, JSON.stringify(approved), entry!.revision)

  const b = await startCpProcess(configFile)
  t.teardown(() => b.stop())
  const done = await eventually(async () => {
    const r = await api(b.url)('GET', `/v1/runs/${id}`)
    return r.json.status === 'succeeded' ? r.json : undefined
  }, 15_000, 'the recovered dispatch')
  t.match(done.approval.approvals, [{ by: 'ops-1' }])
  t.equal(runner.writs.length, 1)
  t.match(runner.writs[0]?.writ.approvals, [{ by: 'ops-1', binding: run.approval!.binding }])
  const events = (await api(b.url, fx.tokens.operator)('GET', `/v1/audit?run_id=${id}`)).text.trim().split('\n').map((l) => JSON.parse(l) as AuditEvent)
  const restated = events.findIndex((e) => e.type === 'run.approved' && (e.data as { recovered?: boolean }).recovered === true)
  t.ok(restated >= 0 && restated < events.findIndex((e) => e.type === 'run.dispatched'), 'the approval is restated on the chain before the writ left')
})

/**
 * The run store's in-memory index has a hard bound (issue #17, item 7): once
 * `runs.max_active_runs` runs are unfinished, every new run is refused with a
 * typed 503 that stores nothing and is on the record, until some finish. The
 * sweeps find what is due without walking every run: a window that closes
 * expires its run, the others keep waiting.
 */
import t from 'tap'
import { buildApp, parseConfig, type AuditEvent } from '@writ/control-plane'
import { auth, startCpSuite } from './helpers/cp-fixtures.js'
import { eventually, startFakeRunner } from './helpers/cp-fake-runner.js'

async function setup(t: { teardown(fn: () => unknown): void }, runs: Record<string, unknown>, rules?: unknown[]) {
  const { fx } = await startCpSuite(t)
  const config = parseConfig({
    ...fx.config, runs: { ...fx.config.runs, ...runs },
    ...(rules ? { policy: { rules } } : {}),
  })
  const app = await buildApp(config)
  t.teardown(() => app.close())
  const runner = await startFakeRunner({ natsUrl: fx.config.nats.servers[0] as string, nodeId: 'host-b', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('host-b')?.online, 10_000, 'heartbeat')
  const request = (token: string, action: string, args: Record<string, unknown> = {}) =>
    app.inject({ method: 'POST', url: '/v1/runs', headers: auth(token), payload: { action, node: 'host-b', args, reason: 'fill the store' } })
  return { fx, app, runner, request }
}

t.test('a full store refuses every new run with a typed 503 and stores nothing, until runs finish', async (t) => {
  const { fx, app, runner, request } = await setup(t, { max_active_runs: 10 })
  const waiting = await Promise.all(Array.from({ length: 10 }, () => request(fx.tokens.agent, 'testops.restart')))
  t.same(waiting.map((r) => r.statusCode), Array(10).fill(202), 'ten runs wait for approval')

  const gated = await request(fx.tokens.agent2, 'testops.restart')
  t.equal(gated.statusCode, 503)
  t.match(gated.json(), {
    error: { code: 'WRIT_ERR_TOO_MANY_ACTIVE_RUNS', message: /already holds 10 unfinished runs, its bound \(runs\.max_active_runs: 10\)/, limit: 10, active: 10 },
  }, 'the refusal names the bound and the setting')
  const allowed = await request(fx.tokens.agent2, 'testops.echo', { message: 'hi' })
  t.match(allowed.json(), { error: { code: 'WRIT_ERR_TOO_MANY_ACTIVE_RUNS' } }, 'a run that would go out at once is refused too')
  t.equal(runner.writs.length, 0, 'nothing was dispatched')
  t.equal(app.writ.store.list({}, 1000).length, 10, 'nothing was stored')
  const audit = await app.inject({ method: 'GET', url: '/v1/audit?actor=agent-2', headers: auth(fx.tokens.operator) })
  const events = audit.body.trim().split('\n').map((l) => JSON.parse(l) as AuditEvent)
  t.same(events.map((e) => `${e.type}:${(e.data as { code?: string }).code}`), ['request.rejected:WRIT_ERR_TOO_MANY_ACTIVE_RUNS', 'request.rejected:WRIT_ERR_TOO_MANY_ACTIVE_RUNS'], 'both refusals are on the record, no request event')

  const first = waiting[0]?.json().id as string
  t.equal((await app.inject({ method: 'POST', url: `/v1/runs/${first}/deny`, headers: auth(fx.tokens.operator), payload: { reason: 'make room' } })).statusCode, 200)
  const again = await request(fx.tokens.agent2, 'testops.echo', { message: 'hi' })
  t.equal(again.statusCode, 202, 'a finished run makes room')
  await eventually(async () => (await app.inject({ method: 'GET', url: `/v1/runs/${again.json().id}`, headers: auth(fx.tokens.agent2) })).json().status === 'succeeded', 10_000, 'the run finishes')
  t.equal((await request(fx.tokens.agent2, 'testops.echo', { message: 'hi' })).statusCode, 202, 'and its place is free again once it finished')
})

t.test('the approval sweep expires the run whose window closed and leaves the others waiting', async (t) => {
  const { fx, app, request } = await setup(t, {}, [
    { name: 'short', match: { actions: ['testops.deploy'] }, decision: 'require_approval', approver_groups: ['oncall'], quorum: 1, ttl: '1s' },
    { name: 'long', match: { actions: ['testops.restart'] }, decision: 'require_approval', approver_groups: ['oncall'], quorum: 1, ttl: '15m' },
  ])
  const long = await Promise.all(Array.from({ length: 15 }, (_, i) => request(i % 2 ? fx.tokens.agent : fx.tokens.agent2, 'testops.restart')))
  const short = (await request(fx.tokens.agent, 'testops.deploy')).json()
  t.equal(short.status, 'pending_approval')
  const get = async (id: string) => (await app.inject({ method: 'GET', url: `/v1/runs/${id}`, headers: auth(fx.tokens.operator) })).json()
  await eventually(async () => (await get(short.id)).status === 'expired', 10_000, 'the short window closes')
  for (const r of long) t.equal((await get(r.json().id)).status, 'pending_approval')
  const listed = (await app.inject({ method: 'GET', url: '/v1/approvals', headers: auth(fx.tokens.operator) })).json()
  t.equal(listed.approvals.length, 15, 'the others wait')
  t.notOk(listed.approvals.some((a: { id: string }) => a.id === short.id), 'the expired run left the list')
})

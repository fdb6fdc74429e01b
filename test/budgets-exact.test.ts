/**
 * Per-principal budgets on two control planes sharing one NATS: 200 parallel
 * change-making requests against a budget of 10, split over both instances,
 * dispatch exactly 10; the rest get 429 WRIT_ERR_BUDGET_EXHAUSTED with
 * Retry-After and what was spent. Requests that are refused, wait for
 * approval or are denied cost nothing; an approved run over budget is held;
 * distinct nodes are a budget of their own; the spend is in the metrics.
 * Prints a transcript the closing note can paste.
 */
import t from 'tap'
import { buildApp, parseConfig } from '@writ/control-plane'
import { startNatsServer } from './helpers/nats-server.js'
import { makeCpFixture, auth } from './helpers/cp-fixtures.js'
import { startFakeRunner, eventually } from './helpers/cp-fake-runner.js'

const HOUR = 3_600_000
const MINUTE = 60_000

/**
 * Budgets live in clock-aligned windows: a window that ends mid-test would
 * give the budget back and change the count. Start a burst only while the
 * window has `room` left (waiting out the end of one when it has not).
 */
async function windowWithRoom(windowMs: number, room: number): Promise<void> {
  await eventually(() => windowMs - (Date.now() % windowMs) > room, windowMs, 'a budget window with room for the test')
}

const nats = await startNatsServer()
t.teardown(() => nats.stop())
const fx = makeCpFixture(nats.url)
t.teardown(() => fx.cleanup())
const budgets: Record<string, Record<string, number>> = {
  'agent-1': { mutations_per_hour: 10 },
  'agent-2': { mutations_per_hour: 5, nodes_per_hour: 2, runs_per_minute: 100 },
  'dev-1': { runs_per_minute: 0 },
}
const config = { ...fx.config, principals: fx.config.principals.map((p) => (budgets[p.id] ? { ...p, budgets: budgets[p.id] } : p)) }
const [a, b] = await Promise.all([
  buildApp(parseConfig({ ...config, instance_id: 'cp-a' })),
  buildApp(parseConfig({ ...config, instance_id: 'cp-b' })),
])
t.teardown(() => a.close())
t.teardown(() => b.close())
// The third node is web-1, where policy denies listing: a denied run to charge nothing for.
const runners = await Promise.all([['n1', 'n1'], ['n2', 'n2'], ['n3', 'web-1']].map(([nodeId, nodeName]) => startFakeRunner({ natsUrl: nats.url, nodeId: nodeId as string, nodeName, packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile, runDelayMs: 5 })))
t.teardown(() => Promise.all(runners.map((r) => r.close())))
await eventually(() => a.writ.fleet.onlineCount === 3 && b.writ.fleet.onlineCount === 3, 5000, 'both instances see the fleet')

type App = typeof a
const request = (app: App, token: string, action: string, args: Record<string, unknown>, node = 'n1', wait = 10) => app.inject({
  method: 'POST', url: '/v1/runs', headers: auth(token), payload: { action, node, args, reason: 'budget test', wait },
})
const budgetOf = async (app: App, token: string, principal: string) => {
  const res = await app.inject({ method: 'GET', url: '/v1/budgets', headers: auth(token) })
  return (res.json().budgets as Array<{ principal: string, spent: Record<string, number>, limits: Record<string, number> }>).find((x) => x.principal === principal)
}
const sample = async (app: App, name: string, labels: Record<string, string>): Promise<number> => {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  const hit = text.split('\n').find((l) => l.startsWith(`${name}{`) && want.every((w) => l.includes(w)))
  return hit ? Number(hit.split(' ').at(-1)) : Number.NaN
}

t.test('200 parallel requests against a budget of 10, over two instances: exactly 10 dispatched', async (t) => {
  await windowWithRoom(HOUR, 60_000)
  const N = 200
  const results = await Promise.all([...Array(N).keys()].map((i) => request(i % 2 === 0 ? a : b, fx.tokens.agent, 'testops.sleep', { seconds: 0 })))
  const byStatus = new Map<number, number>()
  for (const r of results) byStatus.set(r.statusCode, (byStatus.get(r.statusCode) ?? 0) + 1)
  t.same(Object.fromEntries(byStatus), { 200: 10, 429: 190 }, 'ten dispatched, the rest refused')
  t.equal(results.filter((r) => r.statusCode === 200 && r.json().status === 'succeeded').length, 10, 'and the ten ran')
  const dispatchedOn = { a: results.filter((r, i) => r.statusCode === 200 && i % 2 === 0).length, b: results.filter((r, i) => r.statusCode === 200 && i % 2 === 1).length }
  t.equal(dispatchedOn.a + dispatchedOn.b, 10, `both instances drew from one budget (A ${dispatchedOn.a}, B ${dispatchedOn.b})`)

  const refused = results.find((r) => r.statusCode === 429) as (typeof results)[number]
  const err = refused.json().error
  t.equal(err.code, 'WRIT_ERR_BUDGET_EXHAUSTED')
  t.equal(err.budget, 'mutations_per_hour')
  t.equal(err.limit, 10)
  t.match(err.spent, { mutations_this_hour: 10, nodes_this_hour: 1 }, 'says what was spent')
  const retryAfter = Number(refused.headers['retry-after'])
  t.equal(retryAfter, err.retry_after_s, 'Retry-After says when the budget comes back')
  t.ok(retryAfter >= 1 && retryAfter <= 3600, `within the hour (${retryAfter} s)`)
  t.equal(Date.parse(err.resets_at) % HOUR, 0, 'at the end of the clock hour')

  const runList = await a.inject({ method: 'GET', url: '/v1/runs?limit=1000', headers: auth(fx.tokens.agent) })
  t.equal(runList.json().runs.filter((r: { action: string }) => r.action === 'testops.sleep').length, 10, 'a refusal records no run')
  t.equal(runners.flatMap((r) => r.writs).filter((w) => w.writ.action === 'testops.sleep').length, 10, 'exactly ten writs left')
  t.match(await budgetOf(b, fx.tokens.operator, 'agent-1'), { limits: { mutations_per_hour: 10 }, spent: { mutations_this_hour: 10 } })

  const read = await request(b, fx.tokens.agent, 'testops.echo', { message: 'reads are not mutations' })
  t.equal(read.json().status, 'succeeded', 'a read does not spend the mutations budget')

  const refusedMetric = (await sample(a, 'writ_budget_exhausted_total', { principal: 'agent-1', budget: 'mutations_per_hour' }))
    + (await sample(b, 'writ_budget_exhausted_total', { principal: 'agent-1', budget: 'mutations_per_hour' }))
  t.equal(refusedMetric, 190, 'the refusals are counted per principal and budget')
  const dispatchedMetric = (await sample(a, 'writ_budget_dispatches_total', { principal: 'agent-1' })) + (await sample(b, 'writ_budget_dispatches_total', { principal: 'agent-1' }))
  t.equal(dispatchedMetric, 11, 'as are the dispatches charged (ten changes and one read)')

  const audit = await a.inject({ method: 'GET', url: '/v1/audit?limit=100000', headers: auth(fx.tokens.operator) })
  const exhausted = audit.body.trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.data?.code === 'WRIT_ERR_BUDGET_EXHAUSTED')
  t.equal(exhausted.length, 190, 'each refusal is on the audit chain')

  t.comment(`200 parallel POST /v1/runs testops.sleep by agent-1 (mutations_per_hour: 10), alternating cp-a/cp-b → ${JSON.stringify(Object.fromEntries(byStatus))}; dispatched on A ${dispatchedOn.a}, on B ${dispatchedOn.b}; writs sent 10`)
  t.comment(`a refusal: 429 Retry-After: ${retryAfter} ${JSON.stringify(err)}`)
})

t.test('refused, pending and denied requests cost nothing; distinct nodes are a budget; an approved run over budget is held', async (t) => {
  await windowWithRoom(HOUR, 60_000)
  const before = await budgetOf(a, fx.tokens.operator, 'agent-2')
  t.match(before, { spent: { runs_this_minute: 0, mutations_this_hour: 0, nodes_this_hour: 0 } })
  const pending = await request(a, fx.tokens.agent2, 'testops.restart', {}, 'web-1', 0)
  t.equal(pending.json().status, 'pending_approval')
  const denied = await request(b, fx.tokens.agent2, 'testops.list', {}, 'web-1')
  t.equal(denied.statusCode, 403, denied.body)
  t.equal(denied.json().error.code, 'WRIT_ERR_POLICY_DENIED', 'denied by policy')
  t.equal((await request(a, fx.tokens.agent2, 'testops.sleep', { seconds: 'soon' })).statusCode, 400, 'bad arguments')
  t.equal((await request(b, fx.tokens.agent2, 'testops.sleep', { seconds: 0 }, 'nowhere')).statusCode, 404, 'unknown node')
  t.match(await budgetOf(b, fx.tokens.operator, 'agent-2'), { spent: { runs_this_minute: 0, mutations_this_hour: 0, nodes_this_hour: 0 } }, 'none of them spent anything')

  t.equal((await request(a, fx.tokens.agent2, 'testops.sleep', { seconds: 0 }, 'n1')).json().status, 'succeeded')
  t.equal((await request(b, fx.tokens.agent2, 'testops.sleep', { seconds: 0 }, 'n2')).json().status, 'succeeded')
  t.equal((await request(b, fx.tokens.agent2, 'testops.sleep', { seconds: 0 }, 'n1')).json().status, 'succeeded', 'a node already touched this hour is no new node')
  const thirdNode = await request(a, fx.tokens.agent2, 'testops.sleep', { seconds: 0 }, 'web-1')
  t.equal(thirdNode.statusCode, 429)
  t.equal(thirdNode.json().error.budget, 'nodes_per_hour', 'a third node is over its two nodes an hour')
  t.match(thirdNode.json().error.spent, { mutations_this_hour: 3, nodes_this_hour: 2 })
  t.match(await budgetOf(a, fx.tokens.agent2, 'agent-2'), { spent: { mutations_this_hour: 3, nodes_this_hour: 2 } }, 'an agent reads its own budget')
  t.same((await a.inject({ method: 'GET', url: '/v1/budgets', headers: auth(fx.tokens.agent2) })).json().budgets.map((x: { principal: string }) => x.principal), ['agent-2'], 'and only its own')

  const approved = await b.inject({ method: 'POST', url: `/v1/runs/${pending.json().id}/approve`, headers: auth(fx.tokens.operator), payload: {} })
  t.equal(approved.statusCode, 200, approved.body)
  t.equal(approved.json().status, 'approved', 'approved but not dispatched')
  t.match(approved.json().status_reason, /held: agent-2 spent its nodes_per_hour budget \(2\); dispatched after /)
  t.equal(runners.flatMap((r) => r.writs).filter((w) => w.writ.run_id === pending.json().id).length, 0, 'no writ left')
  t.comment(`agent-2 (mutations_per_hour: 5, nodes_per_hour: 2): pending, denied, bad-args, unknown-node requests → spent 0; n1 ✓, n2 ✓, n1 ✓, web-1 → 429 ${thirdNode.json().error.message}`)
  t.comment(`approved over budget → ${approved.json().status}: ${approved.json().status_reason}`)
})

t.test('a budget of 0 lets nothing through, reads included (runs_per_minute)', async (t) => {
  await windowWithRoom(MINUTE, 5_000)
  const res = await request(b, fx.tokens.outsider, 'testops.echo', { message: 'hello' })
  t.equal(res.statusCode, 429)
  t.equal(res.json().error.budget, 'runs_per_minute')
  t.ok(Number(res.headers['retry-after']) <= 60, 'back within the minute')
})

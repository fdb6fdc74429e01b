/**
 * Plans under the brakes, with real runners: each target a plan dispatches is
 * a run and spends its requester's budget like one (a plan of four against a
 * budget of two dispatches two, the others wait for the window); a plan
 * approved while its requester is frozen dispatches nothing until the freeze
 * is lifted.
 */
import t from 'tap'
import { buildApp, parseConfig } from '@writ/control-plane'
import type { NodeRunner } from '@writ/node-runner'
import { auth, makeCpFixture } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'
import { startNatsServer } from './helpers/nats-server.js'

const NODES = ['plan-a', 'plan-b', 'plan-c', 'plan-d']
const HOUR = 3_600_000

const nats = await startNatsServer()
t.teardown(() => nats.stop())
const fx = makeCpFixture(nats.url)
t.teardown(() => fx.cleanup())
const app = await buildApp(parseConfig({ ...fx.config, principals: fx.config.principals.map((p) => (p.id === 'agent-1' ? { ...p, budgets: { mutations_per_hour: 2 } } : p)) }))
t.teardown(() => app.close())
const runners: NodeRunner[] = []
for (const n of NODES) runners.push(await startRealRunner(fx, nats.url, n))
t.teardown(async () => { for (const r of runners) await r.close() })
await eventually(() => NODES.every((n) => app.writ.fleet.find(n)?.online), 10_000, 'runner heartbeats')

const plan = (token: string, payload: Record<string, unknown>) => app.inject({ method: 'POST', url: '/v1/plans', headers: auth(token), payload: { reason: 'brakes on plans', targets: { nodes: NODES }, ...payload } })
const view = async (id: string) => (await app.inject({ method: 'GET', url: `/v1/plans/${id}`, headers: auth(fx.tokens.operator) })).json()

t.test('a plan of four against a budget of two dispatches two', async (t) => {
  // A window ending mid-test would give the budget back.
  await eventually(() => HOUR - (Date.now() % HOUR) > 60_000, HOUR, 'an hour window with room')
  const made = await plan(fx.tokens.agent, { action: 'testops.sleep', args: { seconds: 0 }, rollout: { batch: 4, max_concurrency: 4 } })
  t.equal(made.statusCode, 202, made.body)
  const id = made.json().plan_id as string
  const settled = await eventually(async () => { const v = await view(id); return v.counts.succeeded === 2 ? v : undefined }, 20_000, 'two targets done')
  t.equal(settled.status, 'running', 'the plan waits for budget, it does not fail')
  const waiting = await eventually(async () => { const v = await view(id); return /^held: agent-1 spent/.test(v.status_reason) ? v : undefined }, 5000, 'the plan says why it waits')
  t.match(waiting.status_reason, /held: agent-1 spent its mutations_per_hour budget \(2\); the next targets go after /)
  t.same(settled.counts, { targets: 4, succeeded: 2, approved: 2 }, 'two ran, two wait (approved, not dispatched)')
  const budget = (await app.inject({ method: 'GET', url: '/v1/budgets', headers: auth(fx.tokens.agent) })).json().budgets[0]
  t.match(budget, { principal: 'agent-1', spent: { mutations_this_hour: 2 } })
  const one = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.sleep', node: 'plan-a', args: { seconds: 0 }, reason: 'one more' } })
  t.equal(one.statusCode, 429, 'the plan spent the budget a single run would have')
  t.comment(`plan of 4 × testops.sleep by agent-1 (mutations_per_hour: 2) → counts ${JSON.stringify(settled.counts)}, status ${settled.status}`)
  await app.inject({ method: 'POST', url: `/v1/plans/${id}/halt`, headers: auth(fx.tokens.operator), payload: { reason: 'test over' } })
})

t.test('a plan approved while frozen dispatches nothing until unfrozen', async (t) => {
  const made = await plan(fx.tokens.agent2, { action: 'testops.restart', args: {} })
  t.equal(made.json().status, 'pending_approval', made.body)
  const id = made.json().plan_id as string
  t.equal((await app.inject({ method: 'POST', url: '/v1/freeze', headers: auth(fx.tokens.operator), payload: { reason: 'plans hold' } })).statusCode, 200)
  const approved = await app.inject({ method: 'POST', url: `/v1/plans/${id}/approve`, headers: auth(fx.tokens.operator2), payload: {} })
  t.equal(approved.statusCode, 200, approved.body)
  const held = await eventually(async () => { const v = await view(id); return /^held: every agent is frozen/.test(v.status_reason) ? v : undefined }, 5000, 'the rollout held')
  t.match(held.status_reason, /held: every agent is frozen by ops-1 \(plans hold\)/)
  t.same(held.counts, { targets: 4, approved: 4 }, 'no target dispatched while frozen')
  t.comment(`plan approved while frozen → ${held.status}: ${held.status_reason}`)
  t.equal((await app.inject({ method: 'DELETE', url: '/v1/freeze', headers: auth(fx.tokens.operator) })).statusCode, 200)
  const done = await eventually(async () => { const v = await view(id); return v.status === 'succeeded' ? v : undefined }, 20_000, 'the plan to finish once unfrozen')
  t.equal(done.counts.succeeded, 4)
  t.comment(`after unfreeze → ${done.status}: ${done.status_reason}`)
})

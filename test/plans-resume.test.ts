/**
 * Exactly once across replicas: two control-plane processes on one NATS, a
 * fleet of real runners, a plan rolling out in batches. The instance rolling
 * it out is killed with -9 mid-rollout; the other takes the plan over from
 * its stored state (after the lease), and every target runs exactly once —
 * none twice, none lost — as the runners' own journals and the audit chain
 * show.
 */
import t from 'tap'
import type { NodeRunner } from '@writ/node-runner'
import { startNatsServer } from './helpers/nats-server.js'
import { makeCpFixture, runnerJournal } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'
import { startCpProcess } from './helpers/cp-process.js'

const NODES = Array.from({ length: 8 }, (_, i) => `resume-${i}`)

interface PlanView { plan_id: string, status: string, status_reason: string, counts: Record<string, number>, targets: Array<{ node: string, run_id: string, status: string }> }

t.test('kill -9 the instance rolling a plan out: the other resumes it; no target runs twice, none is lost', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  const configFile = fx.writeConfigFile({ plans: { max_targets: 100, lease: '2s' } })
  const runners: NodeRunner[] = []
  t.teardown(async () => { for (const r of runners) await r.close() })
  for (const n of NODES) runners.push(await startRealRunner(fx, nats.url, n))
  const a = await startCpProcess(configFile, { WRIT_INSTANCE_ID: 'cp-a' })
  t.teardown(() => a.stop())
  const b = await startCpProcess(configFile, { WRIT_INSTANCE_ID: 'cp-b' })
  t.teardown(() => b.stop())
  const headers = { authorization: `Bearer ${fx.tokens.operator}`, 'content-type': 'application/json' }
  for (const cp of [a, b]) {
    await eventually(async () => ((await (await fetch(`${cp.url}/v1/nodes`, { headers })).json()) as { nodes: Array<{ online: boolean }> }).nodes.filter((n) => n.online).length === NODES.length, 10_000, 'every runner visible')
  }

  // Batches of two, each target sleeping one second: about four seconds of rollout.
  const res = await fetch(`${a.url}/v1/plans`, {
    method: 'POST', headers,
    body: JSON.stringify({ action: 'testops.sleep', args: { seconds: 1 }, reason: 'resume test', targets: { nodes: NODES }, rollout: { batch: 2 } }),
  })
  const created = await res.json() as PlanView
  t.equal(res.status, 202, JSON.stringify(created))
  // Mid-rollout, seen from the other replica: some target dispatched, not all finished.
  const read = async (cp: typeof a, wait = 0) => await (await fetch(`${cp.url}/v1/plans/${created.plan_id}?wait=${wait}`, { headers })).json() as PlanView
  await eventually(async () => (await read(b)).counts.running !== undefined, 10_000, 'the first batch on its nodes')
  // The instance rolling it out is the one that took its lease: usually cp-a, which made it, but a busy cp-a can lose it to cp-b's sweep.
  const auditOf = async (cp: typeof a) => (await (await fetch(`${cp.url}/v1/audit?run_id=${created.plan_id}`, { headers })).text()).trim().split('\n').map((l) => JSON.parse(l) as { type: string, instance: string, data: Record<string, unknown> })
  const owner = (await eventually(async () => (await auditOf(b)).find((e) => e.type === 'plan.dispatched'), 10_000, 'the first dispatch on the chain')).instance
  const [killed, survivor, survivorId] = owner === 'cp-a' ? [a, b, 'cp-b'] : [b, a, 'cp-a']
  await killed.kill9()
  const during = await read(survivor)
  t.equal(during.status, 'running', 'killed mid-rollout')
  t.ok((during.counts.succeeded ?? 0) < NODES.length, `${during.counts.succeeded ?? 0} of ${NODES.length} finished when the owner died`)

  // Results a dead instance had pulled come back after the consumer's ack wait (30 s).
  const done = await eventually(async () => { const v = await read(survivor, 20); return v.status !== 'running' && v }, 90_000, 'the plan to finish on the other replica')
  t.equal(done.status, 'succeeded', done.status_reason)
  t.equal(done.counts.succeeded, NODES.length, 'none lost')
  t.match(survivor.output(), /took over a plan|rolling out plan/, 'the other replica took it over')

  // Each runner's journal: its target accepted exactly once.
  for (const [i, node] of NODES.entries()) {
    const entries = runnerJournal(fx, node)
    const accepted = entries.filter((e) => e.type === 'accepted' && e.run_id === `${created.plan_id}-${i}`)
    t.equal(accepted.length, 1, `${node} ran its target once`)
  }

  // The chain accounts for every target: dispatched (a re-send after the takeover is marked recovered), and one outcome each.
  const events = await auditOf(survivor)
  const dispatched = events.filter((e) => e.type === 'plan.dispatched' && e.data.recovered !== true).flatMap((e) => expand(String(e.data.positions)))
  t.same([...dispatched].sort((x, y) => x - y), NODES.map((_, i) => i), 'every target dispatched once (besides recovered re-sends)')
  const outcomes = new Set(events.filter((e) => e.type === 'plan.results').flatMap((e) => (e.data.results as Array<{ p: number }>).map((r) => r.p)))
  t.equal(outcomes.size, NODES.length, 'every target has its outcome on the chain')
  t.ok(events.some((e) => e.type === 'plan.dispatched' && e.instance === owner), `${owner} dispatched before it died`)
  t.ok(events.some((e) => e.type === 'plan.finished' && e.instance === survivorId), `${survivorId} finished the plan`)
  t.comment(`timeline: ${events.map((e) => `${e.type}@${e.instance}${e.data.positions ? `[${String(e.data.positions)}${e.data.recovered ? ' recovered' : ''}]` : ''}`).join(' → ')}`)
})

function expand(ranges: string): number[] {
  return ranges.split(',').filter(Boolean).flatMap((r) => {
    const [x, y] = r.split('-').map(Number) as [number, number | undefined]
    return Array.from({ length: (y ?? x) - x + 1 }, (_, k) => x + k)
  })
}

// Approve click → action started, against the same bench's plain dispatch
// (allowed action → action started): both run `date +%s.%N` on an in-process
// runner, whose output is the wall-clock moment the action started, so both
// are measured from the HTTP request to that moment, the same way.
import { request } from 'undici'
import { hashToken } from '@writ/control-plane'
import { stack } from './control-plane.js'
import { percentile } from './nats-for-bench.js'

const OPERATOR = 'writ_o_bench-operator-not-secret'
const now = () => performance.timeOrigin + performance.now()

export async function approvalLatency() {
  const N = Number(process.env.BENCH_APPROVALS ?? 100)
  const s = await stack({
    runners: 1, extraPacks: true,
    principals: [{ id: 'bench-operator', kind: 'operator', token_sha256: hashToken(OPERATOR), groups: ['oncall'], rate_per_minute: 10_000_000 }],
    rules: [
      { name: 'gated', match: { actions: ['bench.clock_gated'] }, decision: 'require_approval', approver_groups: ['oncall'], quorum: 1, ttl: '15m' },
      { name: 'rest', match: {}, decision: 'allow' },
    ],
  })
  const call = async (method, path, token, body) => {
    const r = await request(`${s.url}${path}`, { method, dispatcher: s.agent, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}) })
    return r.body.json()
  }
  const started = (run) => {
    if (run.status !== 'succeeded') throw new Error(`run ended ${run.status}: ${run.status_reason}`)
    return Number(run.result.stdout.trim()) * 1000
  }
  const plain = async () => {
    const t0 = now()
    const run = await call('POST', '/v1/runs', s.token, { action: 'bench.clock', node: 'bench-0', args: {}, reason: 'bench', wait: 30 })
    return started(run) - t0
  }
  const approved = async () => {
    const pending = await call('POST', '/v1/runs', s.token, { action: 'bench.clock_gated', node: 'bench-0', args: {}, reason: 'bench' })
    if (pending.status !== 'pending_approval') throw new Error(`expected pending_approval, got ${pending.status}`)
    const t0 = now()
    await call('POST', `/v1/runs/${pending.id}/approve`, OPERATOR, {})
    const run = await call('GET', `/v1/runs/${pending.id}?wait=30`, s.token)
    return started(run) - t0
  }
  for (let i = 0; i < 10; i++) { await plain(); await approved() }
  const a = []; const p = []
  for (let i = 0; i < N; i++) { p.push(await plain()); a.push(await approved()) }
  await s.stop()
  a.sort((x, y) => x - y); p.sort((x, y) => x - y)
  const f = (x) => x.toFixed(2)
  return {
    title: `approve POST → the runner starts the action, ${N} approvals, beside plain dispatch (allowed action → start) in the same run (target: p50 within 1.5× of plain dispatch)`,
    header: ['', 'p50 ms', 'p99 ms'],
    rows: [
      ['plain dispatch: POST /v1/runs → action started', f(percentile(p, 50)), f(percentile(p, 99))],
      ['approval: POST /v1/runs/:id/approve → action started', f(percentile(a, 50)), f(percentile(a, 99))],
      ['ratio', `${(percentile(a, 50) / percentile(p, 50)).toFixed(2)}x`, `${(percentile(a, 99) / percentile(p, 99)).toFixed(2)}x`],
    ],
  }
}

// `npm run bench -- audit-scan`: what one `GET /v1/audit` costs on a chain of
// 40,000 events (BENCH_AUDIT_EVENTS), the control plane as its own `writ serve`
// process. An agent owns 1% of the events; another agent wrote the rest. Each
// read is timed and charged the control plane's CPU; the yardstick in the same
// run is an operator reading one page of 1,000 events from the start. Then
// `/healthz` is timed alone and while 10 agents read their audit at once.
import { readFileSync } from 'node:fs'
import { request } from 'undici'
import { connect } from '@nats-io/transport-node'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { AUDIT_STREAM, AUDIT_SUBJECT, GENESIS_HASH, hashEvent, hashToken } from '@writ/control-plane'
import { percentile } from './nats-for-bench.js'
import { stack } from './control-plane.js'

const EVENTS = Number(process.env.BENCH_AUDIT_EVENTS ?? 40_000)
const READS = Number(process.env.BENCH_AUDIT_READS ?? 20)
const AGENT = 'writ_a_bench-audit-agent-not-secret'
const OTHER = 'writ_a_bench-audit-other-not-secret'
const OPERATOR = 'writ_o_bench-audit-operator-not-secret'

/** Appends `count` well-formed, hash-linked events straight to the stream; every 100th is the bench agent's. */
async function fillAudit(natsUrl, count) {
  const nc = await connect({ servers: natsUrl })
  const jsm = await jetstreamManager(nc)
  const js = jetstream(nc)
  const info = await jsm.streams.info(AUDIT_STREAM)
  let seq = info.state.last_seq
  let prev = seq === 0 ? GENESIS_HASH : JSON.parse((await jsm.streams.getMessage(AUDIT_STREAM, { seq })).string()).hash
  const at = new Date().toISOString()
  const agentRuns = []
  for (let start = 0; start < count; start += 256) {
    const acks = []
    for (let i = start; i < Math.min(count, start + 256); i++) {
      const mine = i % 100 === 0
      const runId = `${mine ? 'ra' : 'ro'}${String(i).padStart(10, '0')}`
      if (mine) agentRuns.push(runId)
      const body = {
        type: 'run.requested', actor: { id: mine ? 'bench-agent' : 'bench-other', kind: 'agent' }, run_id: runId, node: 'bench-0', action: 'debugging.loadavg',
        data: { args: {}, reason: 'bench: an audit chain of realistic size', risk: 'low', pack_digest: 'a'.repeat(64) },
      }
      const unsealed = { ...body, seq: ++seq, prev, at, instance: 'bench', v: 1 }
      const event = { ...unsealed, hash: hashEvent(unsealed) }
      prev = event.hash
      acks.push(js.publish(AUDIT_SUBJECT, JSON.stringify(event), { expect: { lastSequence: seq - 1 }, msgID: event.hash }))
    }
    await Promise.all(acks)
  }
  await nc.close()
  return { lastSeq: seq, agentRuns }
}

function cpuSecondsOf(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}

export async function auditScan() {
  const s = await stack({
    runners: 0,
    principals: [
      { id: 'bench-agent-audit', kind: 'agent', token_sha256: hashToken(AGENT), groups: [], rate_per_minute: 10_000_000 },
      { id: 'bench-other', kind: 'agent', token_sha256: hashToken(OTHER), groups: [], rate_per_minute: 10_000_000 },
      { id: 'bench-operator', kind: 'operator', token_sha256: hashToken(OPERATOR), groups: ['oncall'], rate_per_minute: 10_000_000 },
    ],
    // No checkpoint lands among the bench's own appends.
    config: { audit: { checkpoint_interval: '1h' } },
  })
  try {
    const { lastSeq, agentRuns } = await fillAudit(s.natsUrl, EVENTS)
    const get = async (path, token) => {
      const t0 = performance.now()
      const r = await request(`${s.url}${path}`, { headers: { authorization: `Bearer ${token}` }, dispatcher: s.agent })
      const text = await r.body.text()
      if (r.statusCode !== 200) throw new Error(`${path}: ${r.statusCode} ${text.slice(0, 200)}`)
      return { ms: performance.now() - t0, lines: text.split('\n').filter(Boolean).length, next: r.headers['writ-next-seq'] }
    }
    // The index (where there is one) has caught up when an agent's read returns all its events without a cursor.
    const first = await get('/v1/audit', s.token)
    for (let i = 0; i < 600; i++) {
      const r = await get('/v1/audit', s.token)
      if (r.lines === agentRuns.length && r.next === undefined) break
      await new Promise((res) => setTimeout(res, 50))
    }
    const measure = async (path, token) => {
      const times = []
      let last
      const cpu0 = cpuSecondsOf(s.cpPid)
      for (let i = 0; i < READS; i++) { last = await get(path, token); times.push(last.ms) }
      const cpuMs = ((cpuSecondsOf(s.cpPid) - cpu0) * 1000) / READS
      times.sort((a, b) => a - b)
      return { p50: percentile(times, 50), p99: percentile(times, 99), cpuMs, lines: last.lines, next: last.next }
    }
    const rows = []
    const row = (name, m) => rows.push([name, m.p50.toFixed(1), m.p99.toFixed(1), m.cpuMs.toFixed(1), String(m.lines), m.next ?? '—'])
    const yard = await measure('/v1/audit?limit=1000', OPERATOR)
    row('yardstick: operator, first 1,000 events', yard)
    const agent = await measure('/v1/audit', s.token)
    row(`agent, all its own events (${agentRuns.length})`, agent)
    row('agent, one of its runs (run_id=)', await measure(`/v1/audit?run_id=${agentRuns[agentRuns.length - 1]}`, s.token))
    row('agent with no events of its own', await measure('/v1/audit', AGENT))
    row('operator, a type that is not there (type=)', await measure('/v1/audit?type=run.finished', OPERATOR))
    rows.push(['agent, first read after start (index cold)', first.ms.toFixed(1), '', '', String(first.lines), first.next ?? '—'])
    rows.push(['ratio agent read / yardstick (p50)', `${(agent.p50 / yard.p50).toFixed(2)}x`, '', '', '', ''])

    const health = async (n) => {
      const times = []
      for (let i = 0; i < n; i++) {
        const t0 = performance.now()
        const r = await request(`${s.url}/healthz`, { dispatcher: s.agent })
        await r.body.text()
        times.push(performance.now() - t0)
      }
      return times.sort((a, b) => a - b)
    }
    const idle = await health(200)
    let busy = true
    const scans = Promise.all(Array.from({ length: 10 }, async () => { while (busy) await get('/v1/audit', s.token) }))
    const loaded = await health(200)
    busy = false
    await scans
    rows.push(['/healthz p50 alone', percentile(idle, 50).toFixed(2), percentile(idle, 99).toFixed(2), '', '', ''])
    rows.push(['/healthz p50 during 10 concurrent agent reads', percentile(loaded, 50).toFixed(2), percentile(loaded, 99).toFixed(2), '', '', ''])
    rows.push(['ratio /healthz loaded / alone (p50)', `${(percentile(loaded, 50) / percentile(idle, 50)).toFixed(2)}x`, '', '', '', ''])
    return {
      title: `GET /v1/audit on a chain of ${lastSeq} events (writ serve process), ${READS} reads each; the agent owns 1% of the events`,
      header: ['', 'p50 ms', 'p99 ms', 'CP CPU ms/read', 'lines', 'Writ-Next-Seq'],
      rows,
    }
  } finally { await s.stop() }
}

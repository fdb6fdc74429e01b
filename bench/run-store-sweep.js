// The run store under a pile of runs waiting for approval (issue #17, item 7):
// the heap its in-memory index holds per waiting run, and the CPU of one
// approval sweep and one deadline sweep (both run every `runs.sweep_interval`,
// 1 s by default) when none of those runs is due — against the same sweeps
// over a store holding 10 runs, in the same process. The records are written
// to the bucket as another replica would, and reach the store through its
// watch, as on every instance. Reads the services directly, without HTTP:
// the figures are the index's and the sweeps' own.
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { pino } from 'pino'
import { connect } from '@nats-io/transport-node'
import { Kvm } from '@nats-io/kv'
import { RunStore } from '../control-plane/dist/runs/run-store.js'
import { DeadlineSweeper } from '../control-plane/dist/runs/deadline-sweeper.js'
import { ApprovalService } from '../control-plane/dist/approvals/approval-service.js'
import { startNats } from './nats-for-bench.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc')
const heapUsed = () => { gc(); gc(); return process.memoryUsage().heapUsed }
const log = pino({ level: 'silent' })

/** A record like the ones `POST /v1/runs` stores for a gated `nomad.alloc_stop`. */
function waitingRun(i, now) {
  const id = `r${(now + i).toString(36).padStart(9, '0')}${i.toString(16).padStart(16, '0')}`
  const at = new Date(now).toISOString()
  return {
    id, status: 'pending_approval', status_reason: `waiting for 1 approval(s) from oncall until ${new Date(now + 3_600_000).toISOString()} (policy rule "stops-need-a-person")`,
    action: 'nomad.alloc_stop', pack: 'nomad', pack_digest: 'a'.repeat(64), risk: 'high', node_id: '5456bd7a-9fc0-c0dd-6131-cbee77f57577', node_name: `client-${i % 200}`,
    args: { alloc_id: '5456bd7a-9fc0-c0dd-6131-cbee77f57577' }, reason: `stop the allocation that keeps probing the multipath device (flood ${i})`,
    requester: { id: `agent-${i % 50}`, kind: 'agent' }, requester_person: `agent-${i % 50}`, options: {},
    policy: { decision: 'require_approval', rule: 'stops-need-a-person', approver_groups: ['oncall'], quorum: 1, ttl: '1h' },
    approval: { binding: 'b'.repeat(64), approver_groups: ['oncall'], quorum: 1, expires_at: new Date(now + 3_600_000).toISOString(), approvals: [] },
    created_at: at, updated_at: at, request_hash: 'c'.repeat(64), created_by_instance: 'bench-writer',
  }
}

async function writeRuns(nc, n) {
  const kv = await new Kvm(nc).open('WRIT_RUNS')
  const now = Date.now()
  const enc = new TextEncoder()
  // A busy reader can delay the server's acks past the client's timeout: a put that timed out is retried (the same record again).
  const put = async (run) => {
    for (let attempt = 0; ; attempt++) {
      try { await kv.put(run.id, enc.encode(JSON.stringify(run))); return } catch (err) { if (attempt >= 20) throw err }
    }
  }
  for (let i = 0; i < n; i += 128) {
    await Promise.all(Array.from({ length: Math.min(128, n - i) }, (_, k) => put(waitingRun(i + k, now))))
  }
}

/** CPU microseconds one sweep of each kind takes, averaged over `rounds`. */
async function sweepCost(store, rounds) {
  const approvals = new ApprovalService({ store, audit: undefined, runs: undefined, metrics: undefined, notifier: undefined, log, runUrl: (id) => id })
  const deadlines = new DeadlineSweeper(store, undefined, 1000, log)
  const cpu = async (fn) => {
    // Warm up first, so both stores are measured with optimized code.
    for (let i = 0; i < rounds; i++) await fn()
    // A collection pending from loading the records would land inside the measured rounds.
    heapUsed()
    const before = process.cpuUsage()
    for (let i = 0; i < rounds; i++) await fn()
    const used = process.cpuUsage(before)
    return (used.user + used.system) / rounds
  }
  return { approval: await cpu(() => approvals.sweep(10_000)), deadline: await cpu(() => deadlines.sweep()) }
}

async function storeWith(n) {
  const nats = await startNats()
  const nc = await connect({ servers: nats.url, inboxPrefix: '_INBOX_writ_cp' })
  const store = await RunStore.open(nc, 1, log)
  const close = async () => { store.stop(); await nc.close(); await nats.stop() }
  try {
    await store.startWatch()
    const heap0 = heapUsed()
    await writeRuns(nc, n)
    for (let i = 0; i < 600 && store.list({ status: 'pending_approval' }, n + 1).length < n; i++) await new Promise((r) => setTimeout(r, 100))
    const held = store.list({ status: 'pending_approval' }, n + 1).length
    const heap = heapUsed() - heap0
    return { store, held, heap, close }
  } catch (err) {
    // The nats-server is a child of this process: never leave it behind.
    await close()
    throw err
  }
}

export async function runStoreSweep() {
  const N = Number(process.env.BENCH_PENDING ?? 25_000)
  const rounds = Number(process.env.BENCH_SWEEPS ?? 1000)
  const small = await storeWith(10)
  const base = await sweepCost(small.store, rounds).finally(() => small.close())
  const big = await storeWith(N)
  const cost = await sweepCost(big.store, rounds).finally(() => big.close())
  const mib = (b) => (b / 1024 / 1024).toFixed(1)
  const us = (x) => x.toFixed(1)
  return {
    title: `run store with ${N} runs waiting for approval (none due), written by another replica and held through the watch; sweeps averaged over ${rounds} rounds`,
    header: ['', '10 waiting (baseline)', `${big.held} waiting`, 'ratio'],
    rows: [
      ['heap held by the index (MiB)', mib(small.heap), mib(big.heap), '—'],
      ['heap per waiting run (bytes)', '—', Math.round(big.heap / Math.max(1, big.held)), '—'],
      ['approval sweep, CPU µs', us(base.approval), us(cost.approval), `${(cost.approval / base.approval).toFixed(1)}x`],
      ['deadline sweep, CPU µs', us(base.deadline), us(cost.deadline), `${(cost.deadline / base.deadline).toFixed(1)}x`],
    ],
  }
}

import t from 'tap'
import { connect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { buildApp, parseConfig, verifyChain, isTerminal, type AuditEvent, type RunStatus } from '@writ/control-plane'
import { freePort, startNatsServer, type NatsServerHandle } from './helpers/nats-server.js'
import { makeCpFixture, auth } from './helpers/cp-fixtures.js'
import { startFakeRunner, eventually } from './helpers/cp-fake-runner.js'

async function distinctPorts(n: number): Promise<number[]> {
  const ports = new Set<number>()
  while (ports.size < n) ports.add(await freePort())
  return [...ports]
}

async function startCluster(): Promise<NatsServerHandle[]> {
  const all = await distinctPorts(6)
  const ports = all.slice(0, 3)
  const routes = all.slice(3)
  return Promise.all(ports.map((port, i) => startNatsServer({
    port, serverName: `writ-c${i}`,
    extraConfig: `cluster { name: writ-test, listen: 127.0.0.1:${routes[i]}, routes: [${routes.filter((_, j) => j !== i).map((r) => `nats-route://127.0.0.1:${r}`).join(', ')}] }`,
  })))
}

t.test('3-server JetStream cluster: one server killed mid-stream, every accepted run ends typed, no audit event lost', async (t) => {
  const servers = await startCluster()
  t.teardown(() => Promise.all(servers.map((s) => s.stop())))
  const urls = servers.map((s) => s.url)
  // Wait until the cluster can place a three-replica stream.
  await eventually(async () => {
    const nc = await connect({ servers: urls })
    try {
      const jsm = await jetstreamManager(nc)
      await jsm.streams.add({ name: 'PROBE', subjects: ['probe'], num_replicas: 3 })
      await jsm.streams.delete('PROBE')
      return true
    } catch { return false } finally { await nc.close() }
  }, 30_000, 'JetStream cluster ready')

  // The lost-grace covers a leader election (seconds), as it must in production.
  const fx = makeCpFixture(urls.join(','), { jetstream: { replicas: 3 }, limits: { rate_per_minute: 100_000 }, runs: { writ_ttl: '60s', ack_timeout: '2s', lost_grace: '20s', sweep_interval: '500ms', max_wait: '30s' } })
  t.teardown(() => fx.cleanup())
  const [a, b] = await Promise.all([
    buildApp(parseConfig({ ...fx.config, instance_id: 'cp-a', nats: { ...fx.config.nats, servers: [urls[1] as string, urls[2] as string, urls[0] as string] } })),
    buildApp(parseConfig({ ...fx.config, instance_id: 'cp-b', nats: { ...fx.config.nats, servers: [urls[2] as string, urls[1] as string, urls[0] as string] } })),
  ])
  t.teardown(() => a.close())
  t.teardown(() => b.close())
  const runners = await Promise.all(['n1', 'n2', 'n3'].map((nodeId, i) => startFakeRunner({
    natsUrl: [urls[i % 3], urls[(i + 1) % 3], urls[(i + 2) % 3]].join(','), nodeId, packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile, runDelayMs: 30,
  })))
  t.teardown(() => Promise.all(runners.map((r) => r.close())))
  await eventually(() => a.writ.fleet.onlineCount === 3 && b.writ.fleet.onlineCount === 3, 5000, 'fleet visible')

  // A stream of runs, two at a time through both instances: one server is killed once RUNS_EACH_SIDE runs were
  // accepted (mid-stream), and the stream goes on until as many runs sent after the kill were accepted too.
  const RUNS_EACH_SIDE = 80
  const accepted: string[] = []
  const refusedBeforeAccept: number[] = []
  let acceptedAfterKill = 0
  let killed = false
  let next = 0
  const deadline = Date.now() + 60_000
  const sender = async (): Promise<void> => {
    while ((!killed || acceptedAfterKill < RUNS_EACH_SIDE) && Date.now() < deadline) {
      if (!killed && accepted.length >= RUNS_EACH_SIDE) { killed = true; await servers[0]?.kill(true) }
      const i = next++
      const sentAfterKill = killed
      const res = await (i % 2 ? a : b).inject({
        method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent),
        payload: { action: 'testops.echo', node: `n${(i % 3) + 1}`, args: { message: `m${i}` }, reason: 'cluster stream', session_id: 'cluster' },
      })
      if (res.statusCode >= 300) { refusedBeforeAccept.push(res.statusCode); continue }
      accepted.push(res.json().id)
      if (sentAfterKill) acceptedAfterKill++
    }
  }
  await Promise.all([sender(), sender()])
  t.ok(killed, `a server was killed after ${RUNS_EACH_SIDE} runs were accepted`)
  t.ok(acceptedAfterKill >= RUNS_EACH_SIDE, `runs sent after the kill are accepted again: ${acceptedAfterKill} (${accepted.length} in all; ${refusedBeforeAccept.length} answered with an error during the failover: ${[...new Set(refusedBeforeAccept)].join(',')})`)

  const final = new Map<string, RunStatus>()
  await eventually(async () => {
    for (const id of accepted) {
      if (final.has(id)) continue
      const res = await a.inject({ method: 'GET', url: `/v1/runs/${id}`, headers: auth(fx.tokens.agent) })
      if (res.statusCode === 200 && isTerminal(res.json().status)) final.set(id, res.json().status)
    }
    return final.size === accepted.length
  }, 60_000, 'every accepted run in a terminal status').catch(async (err: Error) => {
    const stuck = await Promise.all(accepted.filter((id) => !final.has(id)).slice(0, 5).map(async (id) => (await a.inject({ method: 'GET', url: `/v1/runs/${id}`, headers: auth(fx.tokens.agent) })).body.slice(0, 600)))
    throw new Error(`${err.message}; ${accepted.length - final.size} not final, e.g. ${stuck.join('\n')}`)
  })
  const tally: Record<string, number> = {}
  for (const s of final.values()) tally[s] = (tally[s] ?? 0) + 1
  t.comment(`final statuses: ${JSON.stringify(tally)}`)
  // Diagnostics only: where the results stream and its durable consumer stand after the failover.
  await (async () => {
    const nc = await connect({ servers: urls.slice(1) })
    try {
      const jsm = await jetstreamManager(nc, { timeout: 15_000 })
      const si = await jsm.streams.info('WRIT_RESULTS')
      const ci = await jsm.consumers.info('WRIT_RESULTS', 'writ-control-plane-results')
      t.comment(`results stream: ${si.state.messages} messages, leader ${si.cluster?.leader}; consumer: delivered ${ci.delivered.stream_seq}, ack floor ${ci.ack_floor.stream_seq}, pending ${ci.num_pending}, ack pending ${ci.num_ack_pending}, leader ${ci.cluster?.leader}`)
    } finally { await nc.close() }
  })().catch((err: Error) => t.comment(`no diagnostics: ${err.message}`))
  t.ok((tally.succeeded ?? 0) >= accepted.length * 0.95, 'nearly every run succeeded through the failover')

  const audit = await b.inject({ method: 'GET', url: '/v1/audit?limit=100000', headers: auth(fx.tokens.operator) })
  t.equal(audit.statusCode, 200, audit.statusCode === 200 ? 'audit read' : audit.body)
  const lines = audit.body.trim().split('\n')
  const verdict = await verifyChain(lines.map((text) => ({ text })))
  t.ok(verdict.ok, `the chain verifies: ${JSON.stringify(verdict)}`)
  const events = lines.map((l) => JSON.parse(l) as AuditEvent)
  const requested = new Set(events.filter((e) => e.type === 'run.requested').map((e) => e.run_id))
  const ended = new Set(events.filter((e) => ['run.finished', 'run.lost', 'run.node_offline', 'run.refused'].includes(e.type)).map((e) => e.run_id))
  t.same(accepted.filter((id) => !requested.has(id)), [], 'every accepted run\'s request is on the record')
  t.same(accepted.filter((id) => !ended.has(id)), [], 'every accepted run\'s end is on the record')
})

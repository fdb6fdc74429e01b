import t from 'tap'
import { buildApp, parseConfig, verifyChain, type AuditEvent } from '@writ/control-plane'
import { startNatsServer } from './helpers/nats-server.js'
import { makeCpFixture, auth } from './helpers/cp-fixtures.js'
import { startFakeRunner, eventually } from './helpers/cp-fake-runner.js'

t.test('two control planes on one NATS share runs and write one audit chain', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  // Both boot at once: stream and bucket creation must be idempotent.
  const [a, b] = await Promise.all([
    buildApp(parseConfig({ ...fx.config, instance_id: 'cp-a' })),
    buildApp(parseConfig({ ...fx.config, instance_id: 'cp-b' })),
  ])
  t.teardown(() => a.close())
  t.teardown(() => b.close())
  const runners = await Promise.all(['n1', 'n2', 'n3'].map((nodeId) => startFakeRunner({ natsUrl: nats.url, nodeId, packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile, runDelayMs: 5 })))
  t.teardown(() => Promise.all(runners.map((r) => r.close())))
  await eventually(() => a.writ.fleet.onlineCount === 3 && b.writ.fleet.onlineCount === 3, 3000, 'both see the fleet')

  const N = 40
  const fire = (app: typeof a, i: number) => app.inject({
    method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent),
    payload: { action: 'testops.echo', node: `n${(i % 3) + 1}`, args: { message: `m${i}` }, reason: 'concurrency', session_id: 'twin', wait: 10 },
  })
  const results = await Promise.all([...Array(N).keys()].flatMap((i) => [fire(a, i), fire(b, i)]))
  t.same(results.map((r) => r.statusCode).filter((c) => c !== 200), [], 'every run answered 200')
  t.same(results.map((r) => r.json().status).filter((s) => s !== 'succeeded'), [], 'every run succeeded')

  const fromA = results[0]?.json().id as string
  const seenOnB = await b.inject({ method: 'GET', url: `/v1/runs/${fromA}`, headers: auth(fx.tokens.agent) })
  t.equal(seenOnB.json().created_by_instance, 'cp-a', 'a run created on A is read on B')
  await eventually(async () => {
    const list = await b.inject({ method: 'GET', url: '/v1/runs?session_id=twin&limit=1000', headers: auth(fx.tokens.agent) })
    return list.json().runs.length === 2 * N
  }, 3000, 'B lists the runs of both instances')

  const audit = await a.inject({ method: 'GET', url: '/v1/audit?limit=100000', headers: auth(fx.tokens.operator) })
  const lines = audit.body.trim().split('\n')
  t.equal(lines.length, 3 * 2 * N, 'three events per run, none lost')
  const verdict = await verifyChain(lines.map((text) => ({ text })))
  t.ok(verdict.ok, `one unforked chain: ${JSON.stringify(verdict)}`)
  const instances = new Set(lines.map((l) => (JSON.parse(l) as AuditEvent).instance))
  t.same([...instances].sort(), ['cp-a', 'cp-b'], 'both instances appended')
  t.comment(`append conflicts resolved: A ${a.writ.audit.conflicts}, B ${b.writ.audit.conflicts}`)
})

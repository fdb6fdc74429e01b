import t from 'tap'
import { verifyChain, type AuditEvent } from '@writ/control-plane'
import { auth, startCpSuite } from './helpers/cp-fixtures.js'
import { startFakeRunner, eventually } from './helpers/cp-fake-runner.js'

t.test('an agent runs a declared action on a node and everything lands in the audit chain', async (t) => {
  const { nats, fx, app } = await startCpSuite(t)
  const runner = await startFakeRunner({ natsUrl: nats.url, nodeId: 'node-1', nodeName: 'web-1', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile, nomad: { datacenter: 'dc1', node_pool: 'default' } })
  t.teardown(() => runner.close())

  await eventually(() => app.writ.fleet.find('web-1')?.online, 3000, 'node online')
  const nodes = await app.inject({ method: 'GET', url: '/v1/nodes', headers: auth(fx.tokens.agent) })
  t.equal(nodes.statusCode, 200)
  const node = nodes.json().nodes[0]
  t.match(node, { id: 'node-1', name: 'web-1', online: true, nomad: { source: 'unknown', reason: /not configured/ } }, 'placement never comes from the heartbeat')
  t.equal(node.packs[0].matches_catalog, true)

  const actions = await app.inject({ method: 'GET', url: '/v1/actions?q=echo', headers: auth(fx.tokens.agent) })
  t.same(actions.json().actions.map((a: { id: string }) => a.id), ['testops.echo'])
  const detail = await app.inject({ method: 'GET', url: '/v1/actions/testops.echo', headers: auth(fx.tokens.agent) })
  t.match(detail.json(), { id: 'testops.echo', risk: 'low', args: [{ name: 'message', type: 'string', required: true }], nodes: [{ id: 'node-1', online: true }] })

  const res = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.echo', node: 'web-1', args: { message: 'hello' }, reason: 'checking the echo', session_id: 's1', wait: 5 } })
  t.equal(res.statusCode, 200, res.body)
  const run = res.json()
  t.match(run, { status: 'succeeded', action: 'testops.echo', node_id: 'node-1', requester: { id: 'agent-1' }, session_id: 's1', result: { exit_code: 0 } })
  t.match(run.result.stdout, /hello/)
  t.equal(runner.writs.length, 1, 'exactly one writ went out')
  t.match(runner.writs[0]?.writ, { run_id: run.id, action: 'testops.echo', args: { message: 'hello' }, reason: 'checking the echo', requester: { id: 'agent-1', kind: 'agent' } })

  const got = await app.inject({ method: 'GET', url: `/v1/runs/${run.id}`, headers: auth(fx.tokens.agent) })
  t.equal(got.json().status, 'succeeded')
  const other = await app.inject({ method: 'GET', url: `/v1/runs/${run.id}`, headers: auth(fx.tokens.agent2) })
  t.equal(other.statusCode, 404, 'another agent cannot see the run')
  const list = await app.inject({ method: 'GET', url: '/v1/runs?session_id=s1', headers: auth(fx.tokens.agent) })
  t.same(list.json().runs.map((r: { id: string }) => r.id), [run.id])
  const out = await app.inject({ method: 'GET', url: `/v1/runs/${run.id}/output`, headers: auth(fx.tokens.agent) })
  t.match(out.json(), { done: true, status: 'succeeded', stdout: /hello/ })

  const audit = await app.inject({ method: 'GET', url: '/v1/audit', headers: auth(fx.tokens.operator) })
  t.match(audit.headers['content-type'], /^application\/x-ndjson/)
  const lines = audit.body.trim().split('\n')
  const types = lines.map((l) => (JSON.parse(l) as AuditEvent).type)
  t.same(types, ['run.requested', 'run.dispatched', 'run.finished', 'request.rejected'], 'the other agent\'s probe for the run is on the record too')
  const verdict = await verifyChain(lines.map((text) => ({ text })))
  t.ok(verdict.ok, 'the chain verifies')
})

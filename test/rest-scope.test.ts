/**
 * REST shows an agent what MCP shows it: only its scope. An action no rule
 * could ever let the agent run, and a node where nothing could, are answered
 * over `/v1` exactly as ones that do not exist — in the catalog, the node
 * list, an action's page and a run request — while operators, who decide
 * runs of any action, still see everything.
 */
import t from 'tap'
import { buildApp, parseConfig } from '@writ/control-plane'
import { auth, makeCpFixture } from './helpers/cp-fixtures.js'
import { eventually, startFakeRunner } from './helpers/cp-fake-runner.js'
import { startNatsServer } from './helpers/nats-server.js'

t.test('an agent sees over REST only what it could ever run', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  const config = parseConfig({ ...fx.config, policy: { rules: [{ name: 'vault-is-off-limits', match: { nodes: ['vault-*'], kinds: ['agent'] }, decision: 'deny', reason: 'vault nodes are for people' }, ...fx.config.policy.rules] } })
  const app = await buildApp(config)
  t.teardown(() => app.close())
  for (const nodeId of ['host-1', 'vault-1']) {
    const runner = await startFakeRunner({ natsUrl: nats.url, nodeId, packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile })
    t.teardown(() => runner.close())
  }
  await eventually(() => ['host-1', 'vault-1'].every((n) => app.writ.fleet.find(n)?.online), 10_000, 'two nodes')
  const get = async (url: string, token: string) => {
    const res = await app.inject({ method: 'GET', url, headers: auth(token) })
    return { status: res.statusCode, body: res.json() as Record<string, unknown> }
  }
  const post = async (body: Record<string, unknown>) => {
    const res = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { args: {}, reason: 'scope test', ...body } })
    return { status: res.statusCode, body: res.json() as { error?: { code: string, message: string } } }
  }
  /** An answer with the name swapped for a placeholder, so two answers about different names compare. */
  const shape = (a: { status: number, body: unknown }, name: string) => JSON.stringify(a).replaceAll(name, '<name>')

  const agentNodes = (await get('/v1/nodes', fx.tokens.agent)).body.nodes as Array<{ name: string }>
  t.same(agentNodes.map((n) => n.name), ['host-1'], 'GET /v1/nodes: the vault node is not listed for the agent')
  const operatorNodes = (await get('/v1/nodes', fx.tokens.operator)).body.nodes as Array<{ name: string }>
  t.same(operatorNodes.map((n) => n.name).sort(), ['host-1', 'vault-1'], 'an operator still sees every node')

  const agentActions = ((await get('/v1/actions', fx.tokens.agent)).body.actions as Array<{ id: string }>).map((a) => a.id)
  t.notOk(agentActions.includes('testops.wipe'), 'GET /v1/actions: an action denied everywhere is not listed')
  t.ok(agentActions.includes('testops.echo') && agentActions.includes('testops.restart'), 'allowed and gated actions are')
  t.ok(((await get('/v1/actions', fx.tokens.operator)).body.actions as Array<{ id: string }>).some((a) => a.id === 'testops.wipe'), 'an operator sees the whole catalog')

  const hidden = await get('/v1/actions/testops.wipe', fx.tokens.agent)
  const missing = await get('/v1/actions/testops.nothing', fx.tokens.agent)
  t.equal(hidden.status, 404)
  t.equal(shape(hidden, 'testops.wipe'), shape(missing, 'testops.nothing'), 'GET /v1/actions/:id: out of scope reads exactly like nonexistent')
  const echo = await get('/v1/actions/testops.echo', fx.tokens.agent)
  t.same((echo.body.nodes as Array<{ name: string }>).map((n) => n.name), ['host-1'], "an action's nodes leave out the vault node")
  t.equal((await get('/v1/actions?node=vault-1', fx.tokens.agent)).status, 404, 'asking for the actions of a node out of scope: node not found')

  const deniedAction = await post({ action: 'testops.wipe', node: 'host-1' })
  const noAction = await post({ action: 'testops.nothing', node: 'host-1' })
  t.equal(deniedAction.status, 404, 'POST /v1/runs: an out-of-scope action is 404, not 403 POLICY_DENIED')
  t.equal(shape(deniedAction, 'testops.wipe'), shape(noAction, 'testops.nothing'), 'and reads exactly like a nonexistent one')
  const deniedNode = await post({ action: 'testops.echo', node: 'vault-1', args: { message: 'x' } })
  const noNode = await post({ action: 'testops.echo', node: 'nope-1', args: { message: 'x' } })
  t.equal(deniedNode.status, 404, 'a node out of scope is 404')
  t.equal(shape(deniedNode, 'vault-1'), shape(noNode, 'nope-1'), 'and reads exactly like a node that never reported')

  const fine = await post({ action: 'testops.echo', node: 'host-1', args: { message: 'in scope' } })
  t.equal(fine.status === 200 || fine.status === 202, true, `in scope, a run still goes through (${fine.status})`)
})

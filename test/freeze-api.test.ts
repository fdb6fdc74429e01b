/**
 * The freeze, as operators and agents meet it over REST on two control planes
 * sharing one NATS: an operator freezes on A; within a second B refuses an
 * agent's change-making request (423, naming who froze it and why) and still
 * runs its reads; an approved run is held until the freeze is lifted; agents
 * cannot freeze or unfreeze; bad input changes nothing; Slack is told; every
 * step is on the audit chain. Prints a transcript the closing note can paste.
 */
import t from 'tap'
import { buildApp, parseConfig } from '@writ/control-plane'
import { startNatsServer } from './helpers/nats-server.js'
import { makeCpFixture, auth } from './helpers/cp-fixtures.js'
import { startFakeRunner, eventually } from './helpers/cp-fake-runner.js'
import { startSlackReceiver } from './helpers/slack-receiver.js'
import { connectMcp } from './helpers/mcp-client.js'

const nats = await startNatsServer()
t.teardown(() => nats.stop())
const slack = await startSlackReceiver()
t.teardown(() => slack.close())
const fx = makeCpFixture(nats.url, { notify: { slack: { webhook_url: slack.url, retry_base: '50ms' } } })
t.teardown(() => fx.cleanup())
const [a, b] = await Promise.all([
  buildApp(parseConfig({ ...fx.config, instance_id: 'cp-a' })),
  buildApp(parseConfig({ ...fx.config, instance_id: 'cp-b' })),
])
t.teardown(() => a.close())
t.teardown(() => b.close())
const runner = await startFakeRunner({ natsUrl: nats.url, nodeId: 'n1', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile, runDelayMs: 5 })
t.teardown(() => runner.close())
await eventually(() => a.writ.fleet.onlineCount === 1 && b.writ.fleet.onlineCount === 1, 5000, 'both instances see n1')

type App = typeof a
const run = (app: App, token: string, action: string, args: Record<string, unknown>, wait = 10) => app.inject({
  method: 'POST', url: '/v1/runs', headers: auth(token), payload: { action, node: 'n1', args, reason: 'freeze test', wait },
})
const mutation = (app: App, token = fx.tokens.agent) => run(app, token, 'testops.sleep', { seconds: 0 })
const read = (app: App, token = fx.tokens.agent) => run(app, token, 'testops.echo', { message: 'still reading' })
const freeze = (app: App, token: string, payload: unknown) => app.inject({ method: 'POST', url: '/v1/freeze', headers: auth(token), payload: payload as Record<string, unknown> })
const unfreeze = (app: App, token: string, scope?: string) => app.inject({ method: 'DELETE', url: `/v1/freeze${scope ? `?scope=${encodeURIComponent(scope)}` : ''}`, headers: auth(token) })
const freezes = async (app: App) => (await app.inject({ method: 'GET', url: '/v1/freeze', headers: auth(fx.tokens.agent) })).json().freezes as Array<Record<string, unknown>>
const auditTypes = async (app: App) => {
  const res = await app.inject({ method: 'GET', url: '/v1/audit?limit=100000', headers: auth(fx.tokens.operator) })
  return res.body.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string, actor: { id: string } | null, run_id?: string, data: Record<string, any> })
}
const line = (what: string, res: { statusCode: number, json(): any }) => {
  const body = res.json()
  t.comment(`${what} → ${res.statusCode} ${body.error ? `${body.error.code}: ${body.error.message}` : body.status ?? JSON.stringify(body).slice(0, 160)}`)
}

t.test('a freeze on one replica refuses a mutation on the other within 1 s, and a read still runs', async (t) => {
  const before = await mutation(b)
  t.equal(before.statusCode, 200, before.body)
  t.equal(before.json().status, 'succeeded', 'before the freeze, the agent changes things')
  line('agent-1 on cp-b: testops.sleep (changes state), before the freeze', before)

  const set = await freeze(a, fx.tokens.operator, { reason: 'incident 4711: hands off the fleet' })
  const setAt = Date.now()
  t.equal(set.statusCode, 200, set.body)
  t.match(set.json().freeze, { scope: 'agents', by: 'ops-1', reason: 'incident 4711: hands off the fleet' })
  line('ops-1 on cp-a: POST /v1/freeze {reason: "incident 4711: hands off the fleet"}', set)

  const refused = await eventually(async () => {
    const res = await mutation(b)
    return res.statusCode === 423 ? res : undefined
  }, 1000, 'cp-b to refuse within 1 s')
  const seenAfterMs = Date.now() - setAt
  const err = refused.json().error
  t.equal(err.code, 'WRIT_ERR_FROZEN')
  t.match(err.message, /frozen by ops-1/, 'says who froze it')
  t.match(err.message, /incident 4711: hands off the fleet/, 'and why')
  t.match(err.frozen, { scope: 'agents', by: 'ops-1', reason: 'incident 4711: hands off the fleet' })
  line(`agent-1 on cp-b: testops.sleep (${seenAfterMs} ms after the freeze returned on cp-a)`, refused)

  const stillReading = await read(b)
  t.equal(stillReading.statusCode, 200, stillReading.body)
  t.equal(stillReading.json().status, 'succeeded', 'a read goes on')
  line('agent-1 on cp-b: testops.echo (side effects: None.)', stillReading)

  const onA = await mutation(a, fx.tokens.agent2)
  t.equal(onA.statusCode, 423, 'every agent is in scope, on every replica')
  const operator = await mutation(b, fx.tokens.operator2)
  t.equal(operator.statusCode, 200, 'an operator is outside the "agents" scope')
  t.equal(operator.json().status, 'succeeded')

  const refusals = (await auditTypes(a)).filter((e) => e.type === 'request.rejected' || e.data?.code === 'WRIT_ERR_FROZEN')
  t.ok(refusals.some((e) => e.data?.code === 'WRIT_ERR_FROZEN' && e.actor?.id === 'agent-1'), 'the refusal is audited')
})

t.test('an agent over MCP gets a typed "frozen" answer, and its reads still run', async (t) => {
  const url = await a.listen({ host: '127.0.0.1', port: 0 })
  const agent = await connectMcp(url, fx.tokens.agent)
  t.teardown(() => agent.close())
  const refused = await agent.call('run_action', { action: 'testops.sleep', node: 'n1', args: { seconds: 0 }, reason: 'over mcp' })
  t.ok(refused.isError)
  t.match(refused.value, { status: 'frozen', code: 'WRIT_ERR_FROZEN', frozen: { by: 'ops-1', reason: 'incident 4711: hands off the fleet' }, next: /Do not retry/ })
  const read = await agent.call('run_action', { action: 'testops.echo', node: 'n1', args: { message: 'mcp read' }, reason: 'over mcp' })
  t.match(read.value, { status: 'succeeded' })
  t.comment(`MCP run_action testops.sleep → ${JSON.stringify(refused.value)}`)
})

t.test('agents cannot freeze or unfreeze; bad input is a typed error that changes nothing', async (t) => {
  const before = await freezes(b)
  const byAgent = await freeze(b, fx.tokens.agent, { reason: 'I would like a break' })
  t.equal(byAgent.statusCode, 403)
  t.equal(byAgent.json().error.code, 'WRIT_ERR_FORBIDDEN')
  line('agent-1: POST /v1/freeze', byAgent)
  const unfreezeByAgent = await unfreeze(b, fx.tokens.agent)
  t.equal(unfreezeByAgent.statusCode, 403)
  t.equal(unfreezeByAgent.json().error.code, 'WRIT_ERR_FORBIDDEN')
  line('agent-1: DELETE /v1/freeze', unfreezeByAgent)

  const cases: Array<[string, unknown, number, string]> = [
    ['no reason', {}, 400, 'WRIT_ERR_VALIDATION'],
    ['an empty reason', { reason: '' }, 400, 'WRIT_ERR_VALIDATION'],
    ['a reason with a line break', { reason: 'line one\nline two' }, 400, 'WRIT_ERR_UNSAFE_TEXT'],
    ['an unknown principal as scope', { reason: 'x', scope: 'nobody-here' }, 400, 'WRIT_ERR_UNKNOWN_PRINCIPAL'],
    ['a scope that is no name', { reason: 'x', scope: 'a b' }, 400, 'WRIT_ERR_VALIDATION'],
    ['an unknown field', { reason: 'x', until: 'tomorrow' }, 400, 'WRIT_ERR_VALIDATION'],
  ]
  for (const [what, payload, status, code] of cases) {
    const res = await freeze(a, fx.tokens.operator, payload)
    t.equal(res.statusCode, status, `${what}: ${res.body}`)
    t.equal(res.json().error.code, code, what)
  }
  const notFrozen = await unfreeze(a, fx.tokens.operator, 'agent-2')
  t.equal(notFrozen.statusCode, 409)
  t.equal(notFrozen.json().error.code, 'WRIT_ERR_NOT_FROZEN')
  t.same(await freezes(a), before, 'nothing changed on A')
  t.same(await freezes(b), before, 'nor on B')
})

t.test('an approved run is held while frozen and dispatched once unfrozen', async (t) => {
  await unfreeze(a, fx.tokens.operator)
  await eventually(async () => (await freezes(b)).length === 0, 1000, 'B sees the freeze lifted')
  const asked = await a.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.restart', node: 'n1', args: {}, reason: 'restart before the freeze' } })
  t.equal(asked.json().status, 'pending_approval', asked.body)
  const id = asked.json().id as string

  t.equal((await freeze(b, fx.tokens.operator, { reason: 'change freeze for the release' })).statusCode, 200)
  await eventually(async () => (await freezes(a)).length === 1, 1000, 'A sees the freeze')
  const writsBefore = runner.writs.length
  const approved = await a.inject({ method: 'POST', url: `/v1/runs/${id}/approve`, headers: auth(fx.tokens.operator2), payload: {} })
  t.equal(approved.statusCode, 200, approved.body)
  t.equal(approved.json().status, 'approved', 'approved, not dispatched')
  t.match(approved.json().status_reason, /held: every agent is frozen by ops-1/)
  line(`ops-2 approves ${id} (testops.restart) while frozen`, approved)

  // Sweeps on both instances pass over it while it is held (runs.sweep_interval is 200 ms in the fixture); the freeze holds it.
  const held = await b.inject({ method: 'GET', url: `/v1/runs/${id}`, headers: auth(fx.tokens.operator) })
  t.equal(held.json().status, 'approved')
  t.equal(runner.writs.filter((w) => w.writ.run_id === id).length, 0, 'no writ left for it')
  t.equal(runner.writs.length, writsBefore)

  const lifted = await unfreeze(b, fx.tokens.operator3)
  t.equal(lifted.statusCode, 200, lifted.body)
  t.match(lifted.json().unfrozen, { scope: 'agents', by: 'ops-1' })
  line('ops-3: DELETE /v1/freeze', lifted)
  const done = await eventually(async () => {
    const r = (await a.inject({ method: 'GET', url: `/v1/runs/${id}`, headers: auth(fx.tokens.operator) })).json()
    return r.status === 'succeeded' ? r : undefined
  }, 5000, 'the held run to be dispatched and finish')
  t.equal(done.status, 'succeeded')
  t.comment(`${id} after unfreeze → ${done.status}`)
  t.equal(runner.writs.filter((w) => w.writ.run_id === id).length, 1, 'exactly one writ')

  const events = await auditTypes(a)
  const types = events.map((e) => e.type)
  t.ok(types.includes('freeze.set') && types.includes('freeze.lifted'), 'freeze and unfreeze are audited')
  const heldEvents = events.filter((e) => e.type === 'run.held' && e.run_id === id)
  t.equal(heldEvents.length, 1, 'the hold is audited once, however many sweeps pass')
  const liftedEvent = events.filter((e) => e.type === 'freeze.lifted').at(-1)
  t.match(liftedEvent, { actor: { id: 'ops-3' }, data: { scope: 'agents', frozen_by: 'ops-1', reason: 'change freeze for the release' } })
})

t.test('a freeze for one principal stops that principal only', async (t) => {
  t.equal((await freeze(a, fx.tokens.operator, { reason: 'agent-2 misbehaves', scope: 'agent-2' })).statusCode, 200)
  await eventually(async () => (await freezes(b)).some((f) => f.scope === 'agent-2'), 1000, 'B sees it')
  const other = await mutation(b, fx.tokens.agent)
  t.equal(other.statusCode, 200, 'agent-1 is not in scope')
  const frozen = await mutation(b, fx.tokens.agent2)
  t.equal(frozen.statusCode, 423)
  t.match(frozen.json().error.message, /principal agent-2 is frozen by ops-1/)
  t.equal((await read(b, fx.tokens.agent2)).json().status, 'succeeded', 'its reads go on')
  t.equal((await unfreeze(a, fx.tokens.operator, 'agent-2')).statusCode, 200)
})

t.test('plans respect the freeze: a change-making plan is refused, a read plan runs', async (t) => {
  t.equal((await freeze(a, fx.tokens.operator, { reason: 'plans too' })).statusCode, 200)
  await eventually(async () => (await freezes(b)).length === 1, 1000, 'B sees it')
  const plan = (payload: Record<string, unknown>) => b.inject({ method: 'POST', url: '/v1/plans', headers: auth(fx.tokens.agent), payload: { reason: 'plan under freeze', targets: { nodes: ['n1'] }, wait: 10, ...payload } })
  const changing = await plan({ action: 'testops.sleep', args: { seconds: 0 } })
  t.equal(changing.statusCode, 423, changing.body)
  t.equal(changing.json().error.code, 'WRIT_ERR_FROZEN')
  line('agent-1: POST /v1/plans testops.sleep on [n1]', changing)
  const reading = await plan({ action: 'testops.echo', args: { message: 'plan read' } })
  t.equal(reading.statusCode, 200, reading.body)
  // The fake runner does not answer plan writs as a real one does; that the plan was made and rolled out is the point here.
  t.not(reading.json().status, 'pending_approval', 'a read plan is made and rolls out')
  t.equal((await unfreeze(a, fx.tokens.operator)).statusCode, 200)
})

t.test('Slack is told of every freeze and unfreeze, as plain text', async (t) => {
  const notices = await eventually(() => {
    const texts = slack.messages.map((m) => String(m.text))
    const frozen = texts.filter((x) => x.startsWith(':octagonal_sign:'))
    const unfrozen = texts.filter((x) => x.startsWith(':large_green_circle:'))
    return frozen.length >= 4 && unfrozen.length >= 4 ? { frozen, unfrozen } : undefined
  }, 10_000, 'four freezes and four unfreezes in Slack')
  t.match(notices.frozen[0], /every agent is frozen by ops-1: incident 4711: hands off the fleet/)
  t.match(notices.unfrozen.join('\n'), /every agent is unfrozen by ops-3 \(frozen by ops-1 since .*: change freeze for the release\)/)
  const block = slack.messages.find((m) => String(m.text).includes('incident 4711'))?.blocks?.[0]
  t.equal(block?.text?.type, 'plain_text', 'the reason is never rendered as markup')
  for (const text of [...notices.frozen, ...notices.unfrozen]) t.comment(`slack: ${text}`)
})

/**
 * Bad input through MCP: every refusal is typed (a JSON-RPC error with our
 * code, or a tool answer with a failure status, a reason and what to do
 * next), dispatches nothing, and is audited when the caller is authenticated.
 * An action or node outside the agent's policy scope reads exactly like one
 * that does not exist.
 */
import t from 'tap'
import { request as httpRequest } from 'node:http'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ProtocolError } from '@modelcontextprotocol/client'
import { buildApp, parseConfig, type AuditEvent } from '@writ/control-plane'
import { auth, makeCpFixture } from './helpers/cp-fixtures.js'
import { eventually, startFakeRunner } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'
import { startNatsServer } from './helpers/nats-server.js'
import { connectMcp } from './helpers/mcp-client.js'

t.test('bad input through MCP', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  // Agents may do nothing at all on vault nodes: those nodes are outside their scope.
  const config = parseConfig({ ...fx.config, policy: { rules: [{ name: 'vault-is-off-limits', match: { nodes: ['vault-*'], kinds: ['agent'] }, decision: 'deny', reason: 'vault nodes are for people' }, ...fx.config.policy.rules] } })
  const app = await buildApp(config)
  t.teardown(() => app.close())
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const runner = await startRealRunner(fx, nats.url, 'host-1')
  t.teardown(() => runner.close())
  const vault = await startFakeRunner({ natsUrl: nats.url, nodeId: 'vault-1', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile })
  t.teardown(() => vault.close())
  const doomed = await startFakeRunner({ natsUrl: nats.url, nodeId: 'host-2', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile })
  t.teardown(() => doomed.close())
  await eventually(() => ['host-1', 'vault-1', 'host-2'].every((n) => app.writ.fleet.find(n)?.online), 10_000, 'three nodes')

  const agent = await connectMcp(url, fx.tokens.agent)
  t.teardown(() => agent.close())
  const audit = async (): Promise<AuditEvent[]> => {
    const res = await fetch(`${url}/v1/audit?limit=10000`, { headers: auth(fx.tokens.operator) })
    return (await res.text()).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditEvent)
  }
  const journal = (): string => readFileSync(join(fx.dir, 'journal-host-1.jsonl'), 'utf8')
  /** Runs `act`, then returns the audit events it appended. */
  const appended = async (act: () => Promise<unknown>): Promise<AuditEvent[]> => {
    const before = (await audit()).length
    await act()
    // Refusals are audited before the answer goes out.
    return (await audit()).slice(before)
  }
  const rawPost = (body: string, headers: Record<string, string> = {}) => fetch(`${url}/mcp`, {
    method: 'POST', body,
    headers: { ...auth(fx.tokens.agent), 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
  })
  const journalBefore = journal()

  await t.test('an unknown tool is a typed JSON-RPC error, audited', async (t) => {
    let err: unknown
    const events = await appended(async () => { await agent.client.callTool({ name: 'exec_shell', arguments: { cmd: 'reboot' } }).catch((e: unknown) => { err = e }) })
    t.ok(err instanceof ProtocolError, 'the call is refused')
    t.match(err, { code: -32602, message: /unknown tool "exec_shell"; the tools are list_nodes, list_packs, find_actions/, data: { code: 'WRIT_ERR_UNKNOWN_TOOL' } })
    t.match(events, [{ type: 'request.rejected', actor: { id: 'agent-1' }, data: { route: '/mcp', tool: 'exec_shell', code: 'WRIT_ERR_UNKNOWN_TOOL' } }])
  })

  await t.test('arguments that break the schema: invalid_arguments with each issue, audited, nothing dispatched', async (t) => {
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ['no reason', { action: 'testops.echo', node: 'host-1', args: { message: 'x' } }, /reason/],
      ['an empty reason', { action: 'testops.echo', node: 'host-1', args: { message: 'x' }, reason: '   ' }, /reason/],
      ['an unknown field', { action: 'testops.echo', node: 'host-1', args: { message: 'x' }, reason: 'r', shell: 'rm -rf /' }, /shell/],
      ['args that are not an object', { action: 'testops.echo', node: 'host-1', args: 'message=x', reason: 'r' }, /args/],
      ['a wait beyond the limit', { action: 'testops.echo', node: 'host-1', args: { message: 'x' }, reason: 'r', wait_seconds: 3600 }, /wait_seconds/],
    ]
    for (const [what, args, mentions] of cases) {
      let answer: Awaited<ReturnType<typeof agent.call>> | undefined
      const events = await appended(async () => { answer = await agent.call('run_action', args) })
      t.equal(answer?.isError, true, what)
      t.match(answer?.value, { status: 'invalid_arguments', code: 'WRIT_ERR_VALIDATION', reason: mentions, next: /Fix the arguments/, issues: Array }, what)
      t.match(events, [{ type: 'request.rejected', data: { tool: 'run_action', status: 'invalid_arguments', code: 'WRIT_ERR_VALIDATION' } }], `${what}: audited, and no run requested`)
    }
    let contract: Awaited<ReturnType<typeof agent.call>> | undefined
    const events = await appended(async () => { contract = await agent.call('run_action', { action: 'testops.echo', node: 'host-1', args: { message: '$(reboot)' }, reason: 'inject' }) })
    t.match(contract?.value, { status: 'invalid_arguments', code: 'WRIT_ERR_BAD_ARGS', reason: /testops\.echo.*message/, next: /get_action/ })
    t.match(events, [{ type: 'request.rejected', action: 'testops.echo', node: 'host-1', data: { code: 'WRIT_ERR_BAD_ARGS', reason: 'inject' } }])
  })

  await t.test('oversized, malformed and prototype-polluting bodies: typed, audited', async (t) => {
    const big = JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'run_action', arguments: { action: 'testops.echo', node: 'host-1', args: { message: 'a'.repeat(70_000) }, reason: 'big' } } })
    let res: Response | undefined
    let events = await appended(async () => { res = await rawPost(big) })
    t.equal(res?.status, 413)
    t.match(await res?.json(), { jsonrpc: '2.0', error: { code: -32000, message: /larger than 65536 bytes/, data: { code: 'WRIT_ERR_BODY_TOO_LARGE' } } })
    t.match(events, [{ type: 'request.rejected', actor: { id: 'agent-1' }, data: { route: '/mcp', code: 'WRIT_ERR_BODY_TOO_LARGE' } }])

    events = await appended(async () => { res = await rawPost('{"jsonrpc":"2.0","id":1,') })
    t.equal(res?.status, 400)
    t.match(await res?.json(), { id: null, error: { code: -32700, data: { code: 'WRIT_ERR_MALFORMED_JSON' } } })
    t.match(events, [{ data: { code: 'WRIT_ERR_MALFORMED_JSON' } }])

    events = await appended(async () => { res = await rawPost('{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"run_action","arguments":{"__proto__":{"admin":true}}}}') })
    t.equal(res?.status, 400)
    t.match(await res?.json(), { error: { code: -32700, data: { code: 'WRIT_ERR_FORBIDDEN_KEY' } } })
    t.equal(events.length, 1)

    events = await appended(async () => { res = await rawPost('{}', { 'content-type': 'text/plain' }) })
    t.equal(res?.status, 415)
    t.match(await res?.json(), { error: { data: { code: 'WRIT_ERR_UNSUPPORTED_MEDIA_TYPE' } } })
  })

  await t.test('a wrong or missing token: 401 with a challenge, and no principal to audit', async (t) => {
    for (const [what, token] of [['missing', undefined], ['wrong', 'tok-not-a-real-token']] as const) {
      await t.rejects(connectMcp(url, token), `a client with a ${what} token cannot connect`)
      const before = (await audit()).length
      const res = await fetch(`${url}/mcp`, { method: 'POST', body: '{"jsonrpc":"2.0","id":3,"method":"tools/list"}', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) } })
      t.equal(res.status, 401)
      t.equal(res.headers.get('www-authenticate'), 'Bearer realm="writ"')
      t.match(await res.json(), { id: null, error: { code: -32001, data: { code: 'WRIT_ERR_UNAUTHORIZED' } } }, 'refused before the body is read')
      t.equal((await audit()).length, before, 'nothing is recorded for an unknown caller')
    }
  })

  await t.test('a foreign Origin or Host is refused (DNS rebinding), and audited for a known caller', async (t) => {
    await t.rejects(connectMcp(url, fx.tokens.agent, { headers: { origin: 'https://attacker.example' } }), 'a page from another site cannot connect')
    let res: Response | undefined
    const events = await appended(async () => { res = await rawPost('{"jsonrpc":"2.0","id":4,"method":"tools/list"}', { origin: 'https://attacker.example' }) })
    t.equal(res?.status, 403)
    t.match(await res?.json(), { error: { message: /attacker\.example.*mcp\.allowed_origins/, data: { code: 'WRIT_ERR_FORBIDDEN_ORIGIN' } } })
    t.match(events, [{ type: 'request.rejected', actor: { id: 'agent-1' }, data: { code: 'WRIT_ERR_FORBIDDEN_ORIGIN' } }])
    t.equal((await rawPost('{"jsonrpc":"2.0","id":5,"method":"tools/list"}', { origin: url })).status, 200, 'the control plane\'s own origin is fine')

    const port = new URL(url).port
    const hostAnswer = await new Promise<{ status: number, body: string }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/mcp', method: 'POST', headers: { host: `rebound.attacker.example:${port}`, ...auth(fx.tokens.agent), 'content-type': 'application/json', accept: 'application/json, text/event-stream' } }, (r) => {
        let body = ''
        r.on('data', (d: Buffer) => { body += d })
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body }))
      })
      req.on('error', reject)
      req.end('{"jsonrpc":"2.0","id":6,"method":"tools/list"}')
    })
    t.equal(hostAnswer.status, 403)
    t.match(JSON.parse(hostAnswer.body), { error: { data: { code: 'WRIT_ERR_FORBIDDEN_HOST' } } })
  })

  await t.test('outside the agent\'s scope reads exactly like nonexistent', async (t) => {
    const same = (a: unknown, b: unknown, from: string, to: string) => t.equal(JSON.stringify(a).replaceAll(from, to), JSON.stringify(b), `${from} reads like ${to}`)
    // testops.wipe exists but no node lets an agent run it; vault-1 is online but agents may do nothing there.
    const wipe = await agent.call('run_action', { action: 'testops.wipe', node: 'host-1', reason: 'clean up' })
    const none = await agent.call('run_action', { action: 'testops.nosuch', node: 'host-1', reason: 'clean up' })
    t.match(none.value, { status: 'not_found', code: 'WRIT_ERR_ACTION_NOT_FOUND', reason: 'action "testops.nosuch" does not exist or is not available to you', next: /find_actions/ })
    same(wipe.value, none.value, 'testops.wipe', 'testops.nosuch')
    same((await agent.call('get_action', { action: 'testops.wipe' })).value, (await agent.call('get_action', { action: 'testops.nosuch' })).value, 'testops.wipe', 'testops.nosuch')

    const vaultRun = await agent.call('run_action', { action: 'testops.echo', node: 'vault-1', args: { message: 'x' }, reason: 'look' })
    const ghostRun = await agent.call('run_action', { action: 'testops.echo', node: 'ghost-1', args: { message: 'x' }, reason: 'look' })
    t.match(ghostRun.value, { status: 'not_found', code: 'WRIT_ERR_NODE_NOT_FOUND', next: /list_nodes/ })
    same(vaultRun.value, ghostRun.value, 'vault-1', 'ghost-1')
    same((await agent.call('find_actions', { node: 'vault-1' })).value, (await agent.call('find_actions', { node: 'ghost-1' })).value, 'vault-1', 'ghost-1')

    const names = ((await agent.call('list_nodes')).value.nodes as Array<{ name: string }>).map((n) => n.name)
    t.same(names.sort(), ['host-1', 'host-2'], 'list_nodes leaves vault-1 out')
    const asOperator = await (await fetch(`${url}/v1/nodes`, { headers: auth(fx.tokens.operator) })).json() as { nodes: Array<{ name: string, online: boolean }> }
    t.ok(asOperator.nodes.some((n) => n.name === 'vault-1' && n.online), 'while vault-1 is online and listed for operators')
    const found = JSON.stringify((await agent.call('find_actions', { limit: 50 })).value)
    t.notOk(found.includes('testops.wipe'), 'find_actions never offers testops.wipe')

    const events = (await audit()).filter((e) => e.type === 'request.rejected' && (e.data as { tool?: string }).tool === 'run_action' && ['testops.wipe', 'testops.nosuch'].includes(e.action ?? ''))
    t.equal(events.length, 2)
    const strip = (e: AuditEvent) => JSON.stringify({ ...e.data, message: undefined, details: undefined, action: undefined })
    t.equal(strip(events[0] as AuditEvent), strip(events[1] as AuditEvent), 'and the audit events the agent can read are alike too')
    t.notOk(vault.writs.length, 'nothing reached vault-1')
  })

  await t.test('a person\'s denial reaches the agent with the reason; an offline node says when it was last seen', async (t) => {
    const gated = await agent.call('run_action', { action: 'testops.restart', node: 'host-1', reason: 'restart it' })
    const deny = await fetch(`${url}/v1/runs/${gated.value.run_id}/deny`, { method: 'POST', headers: { ...auth(fx.tokens.operator), 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'not during the incident review' }) })
    t.equal(deny.status, 200)
    const seen = await agent.call('wait_for_run', { run_id: gated.value.run_id })
    t.match(seen.value, {
      status: 'denied', status_reason: 'denied by ops-1: not during the incident review',
      approval: { denial: { by: 'ops-1', reason: 'not during the incident review' } },
      next: /ops-1 denied it: "not during the incident review"\. Do not submit the same request again/,
    })

    await doomed.kill()
    await eventually(() => app.writ.fleet.find('host-2')?.online === false, 10_000, 'host-2 offline')
    const lastSeen = app.writ.fleet.find('host-2')?.last_seen
    const offline = await agent.call('run_action', { action: 'testops.echo', node: 'host-2', args: { message: 'x' }, reason: 'is it there' })
    t.match(offline.value, { status: 'node_offline', node_last_seen: lastSeen, status_reason: `node host-2 has not sent a heartbeat since ${lastSeen}`, next: new RegExp(`last seen at ${lastSeen}`) })
  })

  await t.test('a JSON-RPC batch is refused whole (batches left MCP in 2025-06-18): it cannot multiply the rate limit', async (t) => {
    const call = (i: number) => ({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'run_action', arguments: { action: 'testops.echo', node: 'host-1', args: { message: `batch ${i}` }, reason: 'one request, a hundred runs' } } })
    let res: Response | undefined
    const events = await appended(async () => { res = await rawPost(JSON.stringify(Array.from({ length: 100 }, (_, i) => call(i + 1)))) })
    t.equal(res?.status, 400)
    t.match(await res?.json(), { jsonrpc: '2.0', id: null, error: { code: -32600, message: /JSON-RPC batches are not accepted.*one request per POST/, data: { code: 'WRIT_ERR_BATCH_NOT_SUPPORTED' } } })
    t.match(events, [{ type: 'request.rejected', actor: { id: 'agent-1' }, data: { route: '/mcp', code: 'WRIT_ERR_BATCH_NOT_SUPPORTED' } }], 'audited once, and no run was requested')
    const reads = await rawPost(JSON.stringify([1, 2, 3, 4, 5].map((id) => ({ jsonrpc: '2.0', id, method: 'tools/list' }))))
    t.equal(reads.status, 400, 'a batch of reads is refused the same way')
    t.equal((await rawPost('[]')).status, 400, 'and so is an empty one')
  })

  await t.test('one rate-limit budget per principal across REST and MCP', async (t) => {
    // "limited" may make 3 requests a minute, whichever door they use.
    for (let i = 0; i < 2; i++) t.equal((await fetch(`${url}/v1/nodes`, { headers: auth(fx.tokens.limited) })).status, 200)
    const mcpCall = () => fetch(`${url}/mcp`, { method: 'POST', body: '{"jsonrpc":"2.0","id":8,"method":"tools/list"}', headers: { ...auth(fx.tokens.limited), 'content-type': 'application/json', accept: 'application/json, text/event-stream' } })
    t.equal((await mcpCall()).status, 200, 'the third request (over MCP) is within the budget')
    const over = await mcpCall()
    t.equal(over.status, 429)
    t.match(await over.json(), { id: 8, error: { data: { code: 'WRIT_ERR_RATE_LIMITED' } } })
  })

  t.equal(journal(), journalBefore, 'the runner journaled nothing from any refused call')
})

import t from 'tap'
import { type AuditEvent } from '@writ/control-plane'
import { auth, startCpSuite } from './helpers/cp-fixtures.js'
import { startFakeRunner, eventually } from './helpers/cp-fake-runner.js'

t.test('bad input gets a typed 4xx, is audited when authenticated, and dispatches nothing', async (t) => {
  const { nats, fx, app } = await startCpSuite(t)
  const runner = await startFakeRunner({ natsUrl: nats.url, nodeId: 'node-1', nodeName: 'web-1', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile })
  t.teardown(() => runner.close())
  const drifted = await startFakeRunner({ natsUrl: nats.url, nodeId: 'node-2', nodeName: 'web-2', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile, reportDigest: 'f'.repeat(64) })
  t.teardown(() => drifted.close())
  await eventually(() => app.writ.fleet.onlineCount === 2, 3000, 'two nodes online')

  const good = { action: 'testops.echo', node: 'web-1', args: { message: 'hi' }, reason: 'testing bad input' }
  const post = (payload: unknown, token: string | null = fx.tokens.agent, headers: Record<string, string> = {}) => app.inject({
    method: 'POST', url: '/v1/runs', headers: { ...(token ? auth(token) : {}), 'content-type': 'application/json', ...headers },
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
  })
  const auditTail = async (): Promise<AuditEvent[]> => {
    const res = await app.inject({ method: 'GET', url: '/v1/audit', headers: auth(fx.tokens.operator) })
    return res.body.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditEvent)
  }

  const cases: Array<{ name: string, send: () => ReturnType<typeof post>, status: number, code: string, audited: boolean }> = [
    { name: 'malformed JSON', send: () => post('{"action": "testops.echo",'), status: 400, code: 'WRIT_ERR_MALFORMED_JSON', audited: true },
    { name: 'empty body', send: () => post(''), status: 400, code: 'WRIT_ERR_MALFORMED_JSON', audited: true },
    { name: 'wrong types', send: () => post({ ...good, action: 5, args: 'x' }), status: 400, code: 'WRIT_ERR_VALIDATION', audited: true },
    { name: 'unknown field', send: () => post({ ...good, shell: 'rm -rf /' }), status: 400, code: 'WRIT_ERR_VALIDATION', audited: true },
    { name: 'oversized body', send: () => post({ ...good, reason: 'x'.repeat(70_000) }), status: 413, code: 'WRIT_ERR_BODY_TOO_LARGE', audited: true },
    { name: '__proto__ key', send: () => post('{"__proto__": {"admin": true}, "action": "testops.echo", "node": "web-1", "reason": "r"}'), status: 400, code: 'WRIT_ERR_FORBIDDEN_KEY', audited: true },
    { name: 'constructor key in args', send: () => post({ ...good, args: { constructor: { prototype: { x: 1 } } } }), status: 400, code: 'WRIT_ERR_FORBIDDEN_KEY', audited: true },
    { name: 'not JSON at all', send: () => post('message=hi', fx.tokens.agent, { 'content-type': 'application/x-www-form-urlencoded' }), status: 415, code: 'WRIT_ERR_UNSUPPORTED_MEDIA_TYPE', audited: true },
    { name: 'unknown action', send: () => post({ ...good, action: 'testops.nope' }), status: 404, code: 'WRIT_ERR_ACTION_NOT_FOUND', audited: true },
    { name: 'unknown node', send: () => post({ ...good, node: 'db-9' }), status: 404, code: 'WRIT_ERR_NODE_NOT_FOUND', audited: true },
    { name: 'arguments outside the contract', send: () => post({ ...good, args: { message: 'hi; rm -rf /' } }), status: 400, code: 'WRIT_ERR_BAD_ARGS', audited: true },
    { name: 'undeclared argument', send: () => post({ ...good, args: { message: 'hi', extra: '1' } }), status: 400, code: 'WRIT_ERR_BAD_ARGS', audited: true },
    { name: 'node with another pack digest', send: () => post({ ...good, node: 'web-2' }), status: 409, code: 'WRIT_ERR_PACK_DIGEST_MISMATCH', audited: true },
    { name: 'an action no rule lets the agent run anywhere: out of scope, so not found', send: () => post({ ...good, action: 'testops.wipe', args: {} }), status: 404, code: 'WRIT_ERR_ACTION_NOT_FOUND', audited: true },
    { name: 'policy denies on this node', send: () => post({ ...good, action: 'testops.list', args: {} }), status: 403, code: 'WRIT_ERR_POLICY_DENIED', audited: true },
    { name: 'missing token', send: () => post(good, null), status: 401, code: 'WRIT_ERR_UNAUTHORIZED', audited: false },
    { name: 'wrong token', send: () => post(good, 'tok-not-a-real-one'), status: 401, code: 'WRIT_ERR_UNAUTHORIZED', audited: false },
  ]
  for (const c of cases) {
    const before = (await auditTail()).length
    const res = await c.send()
    t.equal(res.statusCode, c.status, `${c.name}: status`)
    t.match(res.headers['content-type'], /application\/json/, `${c.name}: JSON body`)
    t.equal(res.json().error?.code, c.code, `${c.name}: ${res.body.slice(0, 200)}`)
    const events = await auditTail()
    if (c.audited) {
      const last = events.at(-1)
      t.match(last, { type: 'request.rejected', actor: { id: 'agent-1' }, data: { code: c.code } }, `${c.name}: audited`)
    } else t.equal(events.length, before, `${c.name}: not audited`)
  }
  t.equal(runner.writs.length + drifted.writs.length, 0, 'no writ was dispatched for any of them')

  const bad = await post({ ...good, args: { message: 'hi; rm' } })
  t.match(bad.json().error.args, [{ arg: 'message', code: 'pattern' }], 'argument errors are itemized')
  const denied = await post({ ...good, action: 'testops.list', args: {} })
  const runId = denied.json().error.run_id
  const deniedRun = await app.inject({ method: 'GET', url: `/v1/runs/${runId}`, headers: auth(fx.tokens.agent) })
  t.match(deniedRun.json(), { status: 'denied', status_reason: /listing is off on web-1/, policy: { decision: 'deny', rule: 'no-listing-on-web-1' } })

  t.test('a high-risk action waits for a person and stays pending', async (t) => {
    const res = await post({ ...good, action: 'testops.restart', args: {}, wait: 1 })
    t.equal(res.statusCode, 202)
    t.match(res.json(), { status: 'pending_approval', policy: { decision: 'require_approval', approver_groups: ['oncall'], quorum: 1 } })
    const later = await app.inject({ method: 'GET', url: `/v1/runs/${res.json().id}?wait=0.3`, headers: auth(fx.tokens.agent) })
    t.equal(later.json().status, 'pending_approval')
    t.equal(runner.writs.length, 0, 'nothing dispatched')
    const cancel = await app.inject({ method: 'POST', url: `/v1/runs/${res.json().id}/cancel`, headers: auth(fx.tokens.agent) })
    t.match(cancel.json(), { status: 'canceled' })
    const again = await app.inject({ method: 'POST', url: `/v1/runs/${res.json().id}/cancel`, headers: auth(fx.tokens.agent) })
    t.equal(again.json().error.code, 'WRIT_ERR_RUN_NOT_CANCELABLE')
  })

  t.test('per-agent rate limits', async (t) => {
    const codes: number[] = []
    for (let i = 0; i < 5; i++) codes.push((await app.inject({ method: 'GET', url: '/v1/nodes', headers: auth(fx.tokens.limited) })).statusCode)
    t.same(codes, [200, 200, 200, 429, 429])
    const limited = await app.inject({ method: 'GET', url: '/v1/nodes', headers: auth(fx.tokens.limited) })
    t.equal(limited.json().error.code, 'WRIT_ERR_RATE_LIMITED')
    t.equal((await app.inject({ method: 'GET', url: '/v1/nodes', headers: auth(fx.tokens.agent) })).statusCode, 200, 'other agents are unaffected')
  })

  t.test('security headers, unknown routes, ops endpoints', async (t) => {
    const res = await app.inject({ method: 'GET', url: '/v1/nodes', headers: auth(fx.tokens.agent) })
    t.equal(res.headers['x-content-type-options'], 'nosniff')
    t.match(res.headers['content-security-policy'], /default-src 'none'/)
    t.ok(res.headers['strict-transport-security'])
    const missing = await app.inject({ method: 'GET', url: '/v1/nope', headers: auth(fx.tokens.agent) })
    t.equal(missing.json().error.code, 'WRIT_ERR_NOT_FOUND')
    t.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
    t.match((await app.inject({ method: 'GET', url: '/readyz' })).json(), { ok: true })
    t.match((await app.inject({ method: 'GET', url: '/metrics' })).body, /writ_requests_rejected_total\{code="WRIT_ERR_POLICY_DENIED"\} \d+/)
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json()
    t.equal(doc.openapi, '3.1.0')
    t.ok(doc.paths['/v1/runs'].post.requestBody.content['application/json'].schema.properties.action, 'request schema comes from zod')
    t.equal(doc.paths['/v1/runs'].post.requestBody.content['application/json'].schema.additionalProperties, false, 'unknown fields are refused in the document too')
  })
})

/**
 * The portal's outer walls: `__Host-` cookies under https; a form posted
 * from another site is refused on what the browser says (Sec-Fetch-Site,
 * Origin) even with a valid CSRF token; an address that keeps failing to
 * authenticate (API, MCP or portal) gets a typed 429 without starving the
 * agents already working from it; the live socket bounds what one connection
 * and one session may hold.
 */
import t from 'tap'
import type { WebSocket } from 'ws'
import { buildApp, parseConfig, type AuditEvent } from '@writ/control-plane'
import { auth, startCpSuite } from './helpers/cp-fixtures.js'
import { eventually, startFakeRunner } from './helpers/cp-fake-runner.js'
import { PortalVisitor } from './helpers/portal-visitor.js'

const code = (html: string): string | undefined => /<strong>(WRIT_ERR_[A-Z_]+)<\/strong>/.exec(html)?.[1]
const setCookies = (res: { headers: Record<string, unknown> }): string[] => [res.headers['set-cookie'] ?? []].flat().map(String)

t.test('under https the session cookie is a __Host- cookie; under http it stays on /ui', async (t) => {
  const { fx, app: plain } = await startCpSuite(t)
  const https = await buildApp(parseConfig({ ...fx.config, public_url: 'https://writ.example.test' }))
  t.teardown(() => https.close())

  const signIn = async (app: typeof https) => {
    const v = new PortalVisitor(app)
    const page = await v.get('/ui/sign-in')
    const res = await v.post('/ui/sign-in', { _csrf: PortalVisitor.field(page.body, '_csrf'), token: fx.tokens.operator, next: '/ui' })
    t.equal(res.statusCode, 303)
    return { v, cookies: setCookies(res) }
  }
  const secure = await signIn(https)
  const session = secure.cookies.find((c) => c.startsWith('__Host-writ_session='))
  t.ok(session, `the session cookie is __Host-writ_session (set: ${secure.cookies.map((c) => c.split('=')[0]).join(', ')})`)
  t.match(session, /; Path=\/(;|$)/, 'Path=/')
  t.match(session, /; Secure(;|$)/, 'Secure')
  t.match(session, /; HttpOnly(;|$)/, 'HttpOnly')
  t.match(session, /; SameSite=Lax(;|$)/, 'SameSite=Lax')
  t.notMatch(session, /Domain=/i, 'no Domain: only this exact host has it')
  t.notOk(secure.cookies.some((c) => c.startsWith('writ_session=')), 'no unprefixed session cookie')
  t.equal((await secure.v.get('/ui')).statusCode, 200, 'the __Host- cookie signs the operator in')

  const insecure = await signIn(plain)
  const plainSession = insecure.cookies.find((c) => c.startsWith('writ_session='))
  t.match(plainSession, /; Path=\/ui(;|$)/, 'under http: writ_session on /ui')
  t.notMatch(plainSession, /; Secure/, 'not Secure under plain http (development)')
})

t.test('a portal form posted from another site is refused beside the CSRF check, and audited', async (t) => {
  const { fx, app } = await startCpSuite(t)
  const runner = await startFakeRunner({ natsUrl: fx.config.nats.servers[0] as string, nodeId: 'host-x', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('host-x')?.online, 10_000, 'heartbeat')
  const run = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.restart', node: 'host-x', args: {}, reason: 'restart it' } })
  const id = run.json().id as string

  const ops = new PortalVisitor(app)
  await ops.signIn(fx.tokens.operator)
  const page = await ops.get(`/ui/runs/${id}`)
  const form = { _csrf: PortalVisitor.field(page.body, '_csrf'), binding: PortalVisitor.field(page.body, 'binding') }
  const attempts: Array<[string, Record<string, string>]> = [
    ['a cross-site form', { 'sec-fetch-site': 'cross-site', origin: 'https://evil.example' }],
    ['a sibling subdomain', { 'sec-fetch-site': 'same-site', origin: 'https://wiki.example.test' }],
    ['a browser that sends only Origin', { origin: 'https://evil.example' }],
  ]
  for (const [what, headers] of attempts) {
    const res = await ops.post(`/ui/runs/${id}/approve`, form, headers)
    t.equal(res.statusCode, 403, `${what}: 403`)
    t.equal(code(res.body), 'WRIT_ERR_CROSS_SITE', `${what}: refused as cross-site, though its CSRF token is valid`)
  }
  t.equal((await app.writ.store.get(id))?.run.status, 'pending_approval', 'the run still waits')
  t.equal(runner.writs.length, 0, 'nothing dispatched')
  const audit = await app.inject({ method: 'GET', url: `/v1/audit?run_id=${id}`, headers: auth(fx.tokens.operator) })
  const rejected = audit.body.trim().split('\n').map((l) => JSON.parse(l) as AuditEvent).filter((e) => e.type === 'request.rejected')
  t.same(rejected.map((e) => `${e.actor?.id}:${(e.data as { code: string }).code}`), ['ops-1:WRIT_ERR_CROSS_SITE', 'ops-1:WRIT_ERR_CROSS_SITE', 'ops-1:WRIT_ERR_CROSS_SITE'], 'each attempt is on the record')

  // Signing a victim in as the attacker (login CSRF) is refused the same way.
  const victim = new PortalVisitor(app)
  const signInPage = await victim.get('/ui/sign-in')
  const planted = await victim.post('/ui/sign-in', { _csrf: PortalVisitor.field(signInPage.body, '_csrf'), token: fx.tokens.outsider }, { 'sec-fetch-site': 'cross-site' })
  t.equal(code(planted.body), 'WRIT_ERR_CROSS_SITE', 'a cross-site sign-in is refused')
  t.equal((await victim.get('/ui')).statusCode, 303, 'nobody was signed in')

  // The portal's own form, as Chromium sends it under the portal's no-referrer policy.
  const own = await ops.post(`/ui/runs/${id}/approve`, form, { 'sec-fetch-site': 'same-origin', origin: 'null' })
  t.equal(own.statusCode, 303, 'the portal\'s own form goes through')
  await eventually(() => runner.writs.length === 1, 5000, 'the approved run to be dispatched')
})

t.test('an address that keeps failing to authenticate gets a typed 429; agents already working from it keep working', async (t) => {
  const { fx } = await startCpSuite(t)
  const app = await buildApp(parseConfig({ ...fx.config, limits: { ...fx.config.limits, failed_auth_per_minute: 5 } }))
  t.teardown(() => app.close())
  const api = (remoteAddress: string, token: string, url = '/v1/nodes') => app.inject({ method: 'GET', url, headers: auth(token), remoteAddress })
  const NAT = '203.0.113.7'

  t.equal((await api(NAT, fx.tokens.agent)).statusCode, 200, 'agent-1 works from the shared address')
  for (let i = 1; i <= 5; i++) t.equal((await api(NAT, `tok-guess-${i}-0123456789`)).statusCode, 401, `bad token ${i}: 401`)
  const limited = await api(NAT, 'tok-guess-6-0123456789')
  t.equal(limited.statusCode, 429, 'past the budget: 429')
  t.equal(limited.json().error.code, 'WRIT_ERR_RATE_LIMITED')
  t.match(limited.json().error.message, /^too many failed authentications from your address: retry in \d+ seconds$/)
  const wait = Number(limited.headers['retry-after'])
  t.ok(wait >= 1 && wait <= 60, `Retry-After says when (${wait} s)`)
  const mcp = await app.inject({ method: 'POST', url: '/mcp', headers: { ...auth('tok-guess-7-0123456789'), 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, payload: { jsonrpc: '2.0', id: 1, method: 'tools/list' }, remoteAddress: NAT })
  t.equal(mcp.statusCode, 429, '/mcp shares the budget')
  const valid = await api(NAT, fx.tokens.agent2)
  t.equal(valid.statusCode, 429, 'a valid token new to the locked address waits too (a guesser learns nothing from it)')

  t.equal((await api(NAT, fx.tokens.agent)).statusCode, 200, 'agent-1, already working from the address, is not starved')
  t.equal((await api('198.51.100.20', 'tok-guess-8-0123456789')).statusCode, 401, 'another address has its own budget')
  t.equal((await api('198.51.100.20', fx.tokens.agent2)).statusCode, 200, 'and agent-2 works from there')

  const portal = new PortalVisitor(app)
  const signInAs = async (remoteAddress: string, token: string) => {
    const page = await app.inject({ method: 'GET', url: '/ui/sign-in', remoteAddress })
    portal.jar.keep(page.headers['set-cookie'])
    return app.inject({
      method: 'POST', url: '/ui/sign-in', remoteAddress,
      headers: { cookie: portal.jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ _csrf: PortalVisitor.field(page.body, '_csrf'), token }).toString(),
    })
  }
  const portalLocked = await signInAs(NAT, 'tok-guess-9-0123456789')
  t.equal(portalLocked.statusCode, 429, 'portal sign-in from the locked address: 429')
  t.equal(code(portalLocked.body), 'WRIT_ERR_RATE_LIMITED')
  const OFFICE = '2001:db8:7:1::10'
  for (let i = 1; i <= 5; i++) t.equal((await signInAs(OFFICE, `tok-typo-${i}-0123456789`)).statusCode, 401, `portal: bad token ${i} from ${OFFICE}: 401`)
  const sameNet = await signInAs('2001:db8:7:1::77', 'tok-typo-6-0123456789')
  t.equal(sameNet.statusCode, 429, 'portal failures count too, per IPv6 /64')
  const noSession = await app.inject({ method: 'POST', url: '/ui/runs/run_00000000/approve', remoteAddress: OFFICE, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'binding=x' })
  t.equal(noSession.statusCode, 429, 'a portal POST without a session from a locked address: 429')
})

t.test('the live socket bounds what one connection and one session hold', async (t) => {
  const { fx, app } = await startCpSuite(t)
  const ops = new PortalVisitor(app)
  await ops.signIn(fx.tokens.operator)
  const open: Array<{ ws: WebSocket, frames: Array<Record<string, unknown>>, closed?: { code: number } }> = []
  const connect = async () => {
    const ws = await ops.live()
    const c: (typeof open)[number] = { ws, frames: [] }
    ws.on('message', (raw) => c.frames.push(JSON.parse(raw.toString()) as Record<string, unknown>))
    ws.on('close', (code) => { c.closed = { code } })
    open.push(c)
    return c
  }
  t.teardown(() => { for (const c of open) c.ws.terminate() })

  for (let i = 0; i < 8; i++) await connect()
  const ninth = await connect()
  await eventually(() => open[0]?.closed, 5000, 'the oldest socket to close')
  t.equal(open[0]?.closed?.code, 4409, 'a ninth page of one session closes its oldest socket')
  t.same(open.slice(1).map((c) => c.closed), open.slice(1).map(() => undefined), 'the other eight stay open')

  for (let i = 0; i < 17; i++) ninth.ws.send(JSON.stringify({ type: 'run', run_id: `run_${String(i).padStart(8, '0')}` }))
  await eventually(() => ninth.frames.length === 17, 5000, 'an answer to each subscription')
  t.equal(ninth.frames.filter((f) => f.type === 'subscribed').length, 16, 'sixteen runs are followed')
  t.match(ninth.frames[16], { type: 'error', code: 'WRIT_ERR_TOO_MANY_SUBSCRIPTIONS' }, 'the seventeenth is refused, and said so')

  const chatty = open[1]!
  for (let i = 0; i < 65; i++) chatty.ws.send(JSON.stringify({ type: 'inbox' }))
  await eventually(() => chatty.closed, 5000, 'the chatty socket to close')
  t.equal(chatty.closed?.code, 4408, 'a socket that sends more than a page ever would is closed')
  t.ok(chatty.frames.length <= 64, `it was answered at most 64 times (${chatty.frames.length})`)
})

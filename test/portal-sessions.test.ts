/**
 * Portal sessions end: `portal.session_ttl` after sign-in however busy the
 * session is (starting a single sign-on or a passkey registration renews
 * nothing), and at sign-out on every replica — a cookie captured before is
 * refused by the other replica, and open live sockets on both close.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { WebSocket } from 'ws'
import { jetstreamManager } from '@nats-io/jetstream'
import { buildApp, parseConfig } from '@writ/control-plane'
import { startNatsServer } from './helpers/nats-server.js'
import { makeCpFixture } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { OIDC_CLIENT, startOidcProvider } from './helpers/oidc-provider.js'
import { PortalVisitor } from './helpers/portal-visitor.js'

/** What a live socket said and how it ended. */
function follow(ws: WebSocket): { frames: Array<Record<string, unknown>>, closed: { code: number } | undefined } {
  const seen: { frames: Array<Record<string, unknown>>, closed: { code: number } | undefined } = { frames: [], closed: undefined }
  ws.on('message', (raw) => seen.frames.push(JSON.parse(raw.toString()) as Record<string, unknown>))
  ws.on('close', (code) => { seen.closed = { code } })
  return seen
}

const code = (html: string): string | undefined => /<strong>(WRIT_ERR_[A-Z_]+)<\/strong>/.exec(html)?.[1]

t.test('a session ends portal.session_ttl after sign-in, however busy it is kept', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const base = 'http://localhost:8480'
  const idp = await startOidcProvider({ redirectUris: [`${base}/ui/sign-in/oidc/callback`], users: {} })
  t.teardown(() => idp.close())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  const ttlMs = 4000
  // Single sign-on and passkeys are set up: their start routes wrote the session, which renewed it.
  const app = await buildApp(parseConfig({
    ...fx.config, public_url: base, passkeys: {},
    portal: { ...fx.config.portal, session_ttl: `${ttlMs}ms`, oidc: { issuer: idp.issuer, ...OIDC_CLIENT, name: 'Example SSO' } },
  }))
  t.teardown(() => app.close())

  const ops = new PortalVisitor(app)
  await ops.signIn(fx.tokens.operator)
  const signedInBy = Date.now()
  const captured = new PortalVisitor(app)
  for (const [name, value] of ops.jar.cookies) captured.jar.cookies.set(name, value)
  const socket = follow(await ops.live())

  const start = await ops.get('/ui/sign-in/oidc?next=%2Fui')
  t.equal(start.statusCode, 303, 'starting a single sign-on sends the operator to the provider')
  const written = [start.headers['set-cookie'] ?? []].flat().map((c) => c.split('=')[0])
  t.notOk(written.includes('writ_session'), `starting a single sign-on does not rewrite the signed-in session (cookies set: ${written.join(', ')})`)

  // A use every 300 ms or so (the attack that found this used one every 3 s on a 6 s session), under the start route's rate limit.
  let uses = 0
  let lastUse = 0
  await eventually(async () => {
    if (Date.now() - lastUse < 300) return false
    lastUse = Date.now()
    await ops.get('/ui/sign-in/oidc?next=%2Fui')
    const page = await ops.get('/ui/passkeys')
    if (page.statusCode === 200) await ops.post('/ui/passkeys/options', { _csrf: PortalVisitor.field(page.body, '_csrf') })
    uses++
    return Date.now() > signedInBy + ttlMs + 250
  }, ttlMs + 30_000, 'the session TTL to pass while the session is kept busy')
  t.comment(`the session was used ${uses} times (SSO start, passkeys page, passkey registration options) over ${Date.now() - signedInBy} ms`)

  const after = await ops.get('/ui')
  t.equal(after.statusCode, 303, 'the busy session ended at its TTL')
  t.match(String(after.headers.location), /^\/ui\/sign-in/)
  const old = await captured.get('/ui')
  t.equal(old.statusCode, 303, 'so did the cookie captured at sign-in')
  const post = await captured.post('/ui/runs/run_00000000/approve', { binding: 'a'.repeat(64) })
  t.equal(post.statusCode, 401)
  t.equal(code(post.body), 'WRIT_ERR_SESSION_ENDED', 'a form posted on it is refused with the reason')
  await eventually(() => socket.closed, 5000, 'the open live socket to close')
  t.equal(socket.closed?.code, 4401, 'the live socket open since sign-in closed when the session\'s time was up')

  // A replica started with a longer session_ttl brings the bucket's max age along (no session record dies before its session).
  const longer = await buildApp(parseConfig({ ...fx.config, portal: { ...fx.config.portal, session_ttl: '12h' } }))
  t.teardown(() => longer.close())
  const jsm = await jetstreamManager(longer.writ.nc)
  t.equal((await jsm.streams.info('KV_WRIT_PORTAL_SESSIONS')).config.max_age, 12 * 3600 * 1e9, 'the session bucket keeps records for the configured 12h')
})

t.test('a sign-out on one replica ends the session on every replica and closes its live sockets', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  const keyFile = join(fx.dir, 'portal-session.key')
  writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 })
  const config = parseConfig({ ...fx.config, portal: { ...fx.config.portal, session_key_file: keyFile } })
  const [a, b] = await Promise.all([buildApp(parseConfig({ ...config, instance_id: 'cp-a' })), buildApp(parseConfig({ ...config, instance_id: 'cp-b' }))])
  t.teardown(() => a.close())
  t.teardown(() => b.close())

  const onA = new PortalVisitor(a)
  await onA.signIn(fx.tokens.operator)
  // Someone copied the cookie (a shared machine, a proxy log, malware): it is good on either replica until sign-out.
  const thief = new PortalVisitor(b)
  for (const [name, value] of onA.jar.cookies) thief.jar.cookies.set(name, value)
  const page = await thief.get('/ui')
  t.equal(page.statusCode, 200, 'before sign-out, the copied cookie works on the other replica')
  const csrf = PortalVisitor.field(page.body, '_csrf')

  const live = { a: await onA.live(), b: await thief.live() }
  const seen = { a: follow(live.a), b: follow(live.b) }
  for (const ws of Object.values(live)) ws.send(JSON.stringify({ type: 'inbox' }))
  await eventually(() => seen.a.frames.length > 0 && seen.b.frames.length > 0, 5000, 'both live sockets to subscribe')

  await onA.signOut()
  const after = await thief.get('/ui')
  t.equal(after.statusCode, 303, 'after sign-out on A, the copied cookie is refused on B')
  t.match(String(after.headers.location), /^\/ui\/sign-in/)
  const post = await thief.post('/ui/runs/run_00000000/approve', { _csrf: csrf, binding: 'a'.repeat(64) })
  t.equal(post.statusCode, 401, 'a form posted with it on B is refused')
  t.equal(code(post.body), 'WRIT_ERR_SESSION_ENDED')
  t.equal((await onA.get('/ui')).statusCode, 303, 'and on A, of course')

  for (const [replica, socket] of [['A', seen.a], ['B', seen.b]] as const) {
    await eventually(() => socket.closed, 5000, `the live socket on ${replica} to close`)
    t.equal(socket.closed?.code, 4401, `the live socket on ${replica} closed: session ended`)
  }
  await t.rejects(thief.live(), 'no new live socket on the ended session')
})

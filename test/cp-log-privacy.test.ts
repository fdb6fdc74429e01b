/**
 * What reaches the log at `info` from a real app: no query string (a client
 * can put a token there, and the single sign-on callback carries the
 * provider's code and state), and no one-time sign-in code from the link's
 * path — only where the request went.
 */
import t from 'tap'
import { Writable } from 'node:stream'
import { buildApp, createLogger } from '@writ/control-plane'
import { auth, makeCpFixture } from './helpers/cp-fixtures.js'
import { startNatsServer } from './helpers/nats-server.js'

t.test('request lines in the log carry neither query strings nor sign-in codes', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url, { log: { level: 'info' } })
  t.teardown(() => fx.cleanup())
  let logged = ''
  const sink = new Writable({ write(chunk, _enc, cb) { logged += chunk.toString(); cb() } })
  const app = await buildApp(fx.config, { logger: createLogger(fx.config, sink) })
  t.teardown(() => app.close())

  const code = await app.portal.links.mint('ops-1')
  const link = await app.inject({ method: 'GET', url: `/ui/sign-in/link/${code}` })
  t.equal(link.statusCode, 200, 'the link page opens')
  const used = await app.inject({ method: 'GET', url: `/ui/sign-in/link/${code}/` })
  t.ok(used.statusCode >= 300, 'a link with a trailing slash is not a page')
  const nodes = await app.inject({ method: 'GET', url: '/v1/nodes?access_token=tok-in-query-0123456789&limit=5', headers: auth(fx.tokens.agent) })
  t.equal(nodes.statusCode, 200, 'an authenticated API call with a stray token in its query still works')
  const callback = await app.inject({ method: 'GET', url: '/ui/sign-in/oidc/callback?code=provider-code-0123456789&state=provider-state-0123456789' })
  t.ok(callback.statusCode >= 300, 'the callback is not a page without single sign-on')
  const bad = await app.inject({ method: 'GET', url: '/v1/nodes?token=tok-refused-0123456789', headers: auth('tok-not-valid-0123456789') })
  t.equal(bad.statusCode, 401)

  const lines = logged.trim().split('\n').map((l) => JSON.parse(l) as { msg?: string, req?: { url?: string } })
  const urls = lines.map((l) => l.req?.url).filter((u): u is string => u !== undefined)
  t.ok(urls.length >= 5, `each request is logged with where it went (${urls.length} request lines)`)
  t.ok(urls.includes('/v1/nodes'), 'the path of an API call is kept')
  t.ok(urls.includes('/ui/sign-in/link/[code]'), 'the link path is logged with its code masked')
  t.notMatch(logged, code, 'the one-time code never reaches the log')
  t.notMatch(logged, /tok-in-query|tok-refused|tok-not-valid/, 'no token from a query string or a refused header reaches the log')
  t.notMatch(logged, /provider-code|provider-state/, 'the provider\'s code and state never reach the log')
  t.notMatch(logged, /\?/, 'no query string at all')
})

/**
 * MCP authorization across replicas: a token issued by one control plane
 * works on another (codes, grants and tokens are in JetStream, not in a
 * process), so does a refreshed one, and a connection revoked in the portal
 * of one is refused on the next call to the other. Who may connect as which
 * agent is checked on every call.
 */
import t from 'tap'
import { buildApp, parseConfig } from '@writ/control-plane'
import { freePort } from './helpers/nats-server.js'
import { PortalVisitor } from './helpers/portal-visitor.js'
import { OAUTH_AGENT, consentWithoutBrowser, exchangeCode, startCallback, startOAuthSuite } from './helpers/oauth-suite.js'
import { createHash, randomBytes } from 'node:crypto'

t.test('a connection revoked on one replica is refused on the next call to another', async (t) => {
  const { app, base, config, fx } = await startOAuthSuite(t, { dynamic_registration: true })
  const other = await buildApp(parseConfig({ ...config, instance_id: 'cp-b' }))
  t.teardown(() => other.close())
  const otherPort = await freePort()
  await other.listen({ host: '127.0.0.1', port: otherPort })
  const otherBase = `http://127.0.0.1:${otherPort}`
  const callback = await startCallback()
  t.teardown(() => callback.close())

  const reg = await fetch(`${base}/oauth/reg`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: 'replicas', redirect_uris: [callback.url], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' }),
  })
  const clientId = (await reg.json() as { client_id: string }).client_id
  const verifier = randomBytes(32).toString('base64url')
  const url = new URL(`${base}/oauth/auth`)
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: clientId, redirect_uri: callback.url, scope: 'mcp', resource: `${base}/mcp`,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
  })) url.searchParams.set(k, v)
  const back = await consentWithoutBrowser(base, url.href, fx.tokens.operator)
  // The code is redeemed on the other replica: the code, the grant and the client are all in the bucket.
  const tokens = await exchangeCode(otherBase, { grant_type: 'authorization_code', code: back.searchParams.get('code')!, code_verifier: verifier, redirect_uri: callback.url, client_id: clientId, resource: `${base}/mcp` })
  t.equal(tokens.status, 200, 'a code from one replica is redeemed on another')

  const call = async (at: string, token: string) => {
    const res = await fetch(`${at}/mcp`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    })
    await res.body?.cancel()
    return res.status
  }
  t.equal(await call(base, tokens.body.access_token), 200, 'the token works on the first replica')
  t.equal(await call(otherBase, tokens.body.access_token), 200, 'and on the second')
  const refreshed = await exchangeCode(base, { grant_type: 'refresh_token', refresh_token: tokens.body.refresh_token, client_id: clientId, resource: `${base}/mcp` })
  t.equal(refreshed.status, 200, 'a refresh on the first replica')
  t.equal(await call(otherBase, refreshed.body.access_token), 200, 'its new access token works on the second')

  // A replica restarted with ops-1 taken off the agent's oauth rule refuses the connection ops-1 made.
  const changed = await buildApp(parseConfig({
    ...config, instance_id: 'cp-c',
    principals: config.principals.map((p) => (p.id === OAUTH_AGENT ? { ...p, oauth: { people: [], groups: ['developers'] } } : p)),
  }))
  t.teardown(() => changed.close())
  const changedPort = await freePort()
  await changed.listen({ host: '127.0.0.1', port: changedPort })
  t.equal(await call(`http://127.0.0.1:${changedPort}`, refreshed.body.access_token), 401, 'the rule is checked on every call, not only at consent')

  const person = new PortalVisitor(app)
  await person.signIn(fx.tokens.operator)
  const page = await person.get('/ui/oauth/connections')
  t.match(page.body, 'replicas', 'the connection is listed for the person who made it')
  const grantId = PortalVisitor.field(page.body, 'grant_id')
  const revoked = await person.post('/ui/oauth/connections/revoke', { _csrf: PortalVisitor.field(page.body, '_csrf'), grant_id: grantId })
  t.equal(revoked.statusCode, 303)
  t.equal(await call(otherBase, refreshed.body.access_token), 401, 'the other replica refuses the next call')
  t.equal(await call(base, refreshed.body.access_token), 401, 'and so does this one')
  const someoneElse = new PortalVisitor(app)
  await someoneElse.signIn(fx.tokens.operator2)
  const theirs = await someoneElse.get('/ui/oauth/connections')
  t.match(theirs.body, 'You have not connected any client', 'another person sees none of it')
})

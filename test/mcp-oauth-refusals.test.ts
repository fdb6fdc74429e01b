/**
 * MCP authorization refusals, each through the surface a client or an
 * attacker uses: a token for another resource, an expired one, a revoked one,
 * a replayed code, a wrong PKCE verifier, a refresh token used twice, a client
 * ID metadata document from a host not allowed, an OAuth token on `/v1`. The
 * metadata documents say what writ accepts, and static bearer tokens keep
 * working beside OAuth.
 */
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { Kvm } from '@nats-io/kv'
import { connect } from '@nats-io/transport-node'
import { Client, StreamableHTTPClientTransport, UnauthorizedError } from '@modelcontextprotocol/client'
import { auth } from './helpers/cp-fixtures.js'
import { connectMcp } from './helpers/mcp-client.js'
import { OAUTH_AGENT, TestOAuthClient, consentWithoutBrowser, exchangeCode, startCallback, startOAuthSuite, walkConsent } from './helpers/oauth-suite.js'

const ALLOWED_CIMD_HOST = 'clients.example.com'

t.test('MCP authorization refuses what it must', async (t) => {
  const suite = await startOAuthSuite(t, { dynamic_registration: true, client_metadata_documents: { allowed_hosts: [ALLOWED_CIMD_HOST] } })
  const { base, fx, transcript } = suite
  const callback = await startCallback()
  t.teardown(() => callback.close())
  const say = (line: string) => { transcript.push(line) }

  const registration = await fetch(`${base}/oauth/reg`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: 'refusals', redirect_uris: [callback.url], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' }),
  })
  t.equal(registration.status, 201, 'dynamic registration is on by config')
  const clientId = (await registration.json() as { client_id: string }).client_id

  /** A person consents (portal sign-in as ops-1, Allow); returns the callback's parameters and the PKCE verifier used. */
  const authorizationUrl = (resource = `${base}/mcp`) => {
    const verifier = randomBytes(32).toString('base64url')
    const url = new URL(`${base}/oauth/auth`)
    for (const [k, v] of Object.entries({
      response_type: 'code', client_id: clientId, redirect_uri: callback.url, scope: 'mcp', resource, state: 'st',
      code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
    })) url.searchParams.set(k, v)
    return { url: url.href, verifier }
  }
  const authorize = async (resource = `${base}/mcp`) => {
    const { url, verifier } = authorizationUrl(resource)
    const back = await consentWithoutBrowser(base, url, fx.tokens.operator)
    return { params: back.searchParams, verifier }
  }
  const redeem = (code: string, verifier: string) => exchangeCode(base, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: callback.url, client_id: clientId, resource: `${base}/mcp` })
  const connectWith = async (token: string) => {
    const res = await fetch(`${base}/mcp`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    })
    const body = res.status === 401 ? await res.json() as { error: { message: string, data: { code: string } } } : undefined
    if (res.status !== 401) await res.body?.cancel()
    return { status: res.status, challenge: res.headers.get('www-authenticate'), message: body?.error.message, code: body?.error.data.code }
  }
  const freshToken = async () => {
    const { params, verifier } = await authorize()
    const tokens = await redeem(params.get('code')!, verifier)
    t.equal(tokens.status, 200)
    return tokens.body as { access_token: string, refresh_token: string }
  }
  const nc = await connect({ servers: suite.nats.url })
  t.teardown(() => nc.close())
  const kv = await new Kvm(nc).open('WRIT_OAUTH')
  /** Rewrites what the bucket holds for a token (what time passing, or a token minted for another resource, would look like). */
  const rewrite = async (token: string, change: (payload: Record<string, unknown>) => void) => {
    const key = `AccessToken.${token}`
    const stored = (await kv.get(key))!.json<{ payload: Record<string, unknown>, expires_at: number | null }>()
    change(stored.payload)
    await kv.put(key, JSON.stringify(stored))
  }

  await t.test('the metadata says what writ accepts', async (t) => {
    const prm = await (await fetch(`${base}/.well-known/oauth-protected-resource/mcp`)).json()
    t.same(prm, { resource: `${base}/mcp`, authorization_servers: [`${base}/oauth`], scopes_supported: ['mcp'], bearer_methods_supported: ['header'], resource_name: 'writ' })
    const as = await (await fetch(`${base}/.well-known/oauth-authorization-server/oauth`)).json() as Record<string, unknown>
    t.match(as, {
      issuer: `${base}/oauth`, authorization_endpoint: `${base}/oauth/auth`, token_endpoint: `${base}/oauth/token`, registration_endpoint: `${base}/oauth/reg`,
      code_challenge_methods_supported: ['S256'], response_types_supported: ['code'], authorization_response_iss_parameter_supported: true,
      client_id_metadata_document_supported: true,
    })
    t.same([...as.grant_types_supported as string[]].sort(), ['authorization_code', 'refresh_token'], 'authorization code (and refresh) only')
    say(`metadata: S256 only, response_types [code], grants ${JSON.stringify(as.grant_types_supported)}, iss in responses, CIMD supported`)
  })

  await t.test('static bearer tokens keep working; an OAuth token is for /mcp only', async (t) => {
    const agent = await connectMcp(base, fx.tokens.agent)
    t.teardown(() => agent.close())
    t.ok((await agent.client.listTools()).tools.length > 0, 'a static agent token still lists the tools')
    const { access_token } = await freshToken()
    t.equal((await connectWith(access_token)).status, 200, 'the OAuth token works on /mcp')
    const v1 = await fetch(`${base}/v1/actions`, { headers: auth(access_token) })
    t.equal(v1.status, 401, 'and is refused on /v1 (its audience is /mcp)')
    say(`static token on /mcp -> 200; OAuth token on /v1 -> ${v1.status}`)
  })

  await t.test('a call without a token is discovery, not a failed authentication', async (t) => {
    // More tokenless calls than limits.failed_auth_per_minute (30): connectors behind one cloud address must not lock each other out.
    const answers = await Promise.all(Array.from({ length: 40 }, () => fetch(`${base}/mcp`, {
      method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    }).then(async (r) => { await r.body?.cancel(); return r.status })))
    t.same([...new Set(answers)], [401], 'every one is told to authorize, none is rate-limited')
    const guess = await connectWith('not-a-token')
    t.equal(guess.status, 401, 'a wrong token still counts as a failure')
  })

  await t.test('a token for another resource', async (t) => {
    const { params } = await authorize('https://other.example.com/mcp')
    t.equal(params.get('error'), 'invalid_target', 'writ will not issue one')
    t.equal(params.get('iss'), `${base}/oauth`, 'the error names the issuer too')
    const { access_token } = await freshToken()
    await rewrite(access_token, (p) => { p.aud = 'https://other.example.com/mcp' })
    const res = await connectWith(access_token)
    t.equal(res.status, 401, 'and one whose audience is another resource is refused')
    t.match(res, { code: 'WRIT_ERR_UNAUTHORIZED', message: `the bearer token is not valid: the token is not for ${base}/mcp`, challenge: /error="invalid_token"/ })
    say(`authorize resource=https://other.example.com/mcp -> error=${params.get('error')}; token with aud=https://other.example.com/mcp on /mcp -> ${res.status} ${res.message}`)
  })

  await t.test('an expired token', async (t) => {
    const { access_token } = await freshToken()
    await rewrite(access_token, (p) => { p.iat = Math.floor(Date.now() / 1000) - 7200; p.exp = Math.floor(Date.now() / 1000) - 3600 })
    const res = await connectWith(access_token)
    t.match(res, { status: 401, message: /unknown or expired/ })
    say(`expired token on /mcp -> ${res.status} ${res.message}`)
  })

  await t.test('a revoked token', async (t) => {
    const { access_token } = await freshToken()
    const revoke = await fetch(`${base}/oauth/token/revocation`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: access_token, client_id: clientId }).toString(),
    })
    t.equal(revoke.status, 200, 'the client revokes it (RFC 7009)')
    const res = await connectWith(access_token)
    t.match(res, { status: 401, message: /unknown or expired/ })
    say(`revoked token on /mcp -> ${res.status} ${res.message}`)
  })

  await t.test('a replayed authorization code', async (t) => {
    const { params, verifier } = await authorize()
    const code = params.get('code')!
    const first = await redeem(code, verifier)
    t.equal(first.status, 200)
    const again = await redeem(code, verifier)
    t.match(again, { status: 400, body: { error: 'invalid_grant' } }, 'the second redemption is refused')
    const res = await connectWith(first.body.access_token)
    t.match(res, { status: 401 }, 'and the tokens of the first are revoked with it')
    say(`replayed code -> ${again.status} ${again.body.error}; the first redemption's access token -> ${res.status}`)
  })

  await t.test('a wrong PKCE verifier', async (t) => {
    const { params } = await authorize()
    const wrong = await redeem(params.get('code')!, randomBytes(32).toString('base64url'))
    t.match(wrong, { status: 400, body: { error: 'invalid_grant' } })
    say(`wrong code_verifier -> ${wrong.status} ${wrong.body.error} (${wrong.body.error_description})`)
  })

  await t.test('refresh tokens rotate; an old one is refused', async (t) => {
    const { refresh_token } = await freshToken()
    const refresh = (token: string) => exchangeCode(base, { grant_type: 'refresh_token', refresh_token: token, client_id: clientId, resource: `${base}/mcp` })
    const next = await refresh(refresh_token)
    t.equal(next.status, 200)
    t.not(next.body.refresh_token, refresh_token, 'a new refresh token comes with the new access token')
    t.ok(next.body.expires_in <= 3600)
    t.equal((await connectWith(next.body.access_token)).status, 200)
    const old = await refresh(refresh_token)
    t.match(old, { status: 400, body: { error: 'invalid_grant' } }, 'the rotated-out one is refused')
    const after = await connectWith(next.body.access_token)
    t.equal(after.status, 401, 'and its reuse revokes the connection: a stolen refresh token is caught the moment either party uses it again')
    say(`refresh -> 200 (new refresh token); the old refresh token again -> ${old.status} ${old.body.error}, and the connection is revoked (/mcp -> ${after.status})`)
  })

  await t.test('a person the agent\'s oauth rule does not name cannot connect as it; declining answers access_denied', async (t) => {
    const outsider = await walkConsent(base, authorizationUrl().url, fx.tokens.outsider, { decision: 'allow', agent: OAUTH_AGENT })
    t.ok('status' in outsider && outsider.status === 403, 'dev-1 (developers) posting Allow as the agent is refused')
    t.match('html' in outsider ? outsider.html : '', `You may not connect a client as &quot;${OAUTH_AGENT}&quot;`)
    t.match('html' in outsider ? outsider.html : '', 'You may not connect a client as any agent here', 'and the page offers no agent to pick')
    const declined = await walkConsent(base, authorizationUrl().url, fx.tokens.outsider, { decision: 'deny' })
    const back = 'callback' in declined ? declined.callback.searchParams : undefined
    t.equal(back?.get('error'), 'access_denied', 'declining sends the client access_denied')
    t.equal(back?.get('iss'), `${base}/oauth`)
    t.equal(back?.get('code'), null, 'and no code')
    say(`dev-1 allowing as ${OAUTH_AGENT} -> 403 (not named by its oauth rule); declining -> callback error=access_denied`)
  })

  await t.test('a client ID metadata document from a host not allowed', async (t) => {
    const cimd = new TestOAuthClient(callback.url, 'https://evil.example.net/oauth/client.json')
    const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { authProvider: cimd })
    await t.rejects(new Client({ name: 'cimd', version: '1' }).connect(transport), UnauthorizedError)
    const url = cimd.authorizationUrl!
    t.equal(url.searchParams.get('client_id'), 'https://evil.example.net/oauth/client.json', 'the SDK offered its metadata document URL as client id')
    const res = await fetch(url, { redirect: 'manual' })
    t.equal(res.status, 400, 'writ refuses without fetching it')
    t.match(await res.text(), /invalid_client/)
    say(`authorize with client_id=https://evil.example.net/oauth/client.json -> ${res.status} invalid_client (host not in oauth.client_metadata_documents.allowed_hosts)`)
  })

  t.comment(transcript.filter((l) => !/^(GET|POST) /.test(l)).join('\n'))
})

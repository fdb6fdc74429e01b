/**
 * MCP authorization as a client like Claude Code drives it: the MCP SDK's own
 * OAuth flow against writ. The first call gets a 401 naming the
 * protected-resource metadata; the SDK discovers the authorization server,
 * registers itself (dynamic registration), and sends the person to the
 * authorization URL; in Chromium the person signs in through the portal and
 * consents on writ's page (which client, which agent, on whose behalf, for how
 * long); the SDK redeems the code (PKCE, `iss` checked) and lists the tools and
 * runs an action as the agent, on behalf of that person. Then the person
 * revokes the connection on "Connected agents", and the next call is refused.
 */
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Client, StreamableHTTPClientTransport, UnauthorizedError } from '@modelcontextprotocol/client'
import type { AuditEvent } from '@writ/control-plane'
import { auth } from './helpers/cp-fixtures.js'
import { artifactsDir, launchBrowser } from './helpers/browser.js'
import { NODE, OAUTH_AGENT, TestOAuthClient, startCallback, startOAuthSuite } from './helpers/oauth-suite.js'

t.test('the MCP SDK connects through OAuth: discovery, consent in the browser, token, tool calls, revocation', async (t) => {
  const { fx, app, base, transcript, fetch: recording } = await startOAuthSuite(t, { dynamic_registration: true }, true)
  const callback = await startCallback()
  t.teardown(() => callback.close())
  const oauthClient = new TestOAuthClient(callback.url)
  const say = (line: string) => { transcript.push(line) }

  say('== 1. discovery from the 401 and registration')
  const first = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { authProvider: oauthClient, fetch: recording })
  await t.rejects(new Client({ name: 'oauth-test', version: '1.0.0' }).connect(first), UnauthorizedError, 'without a token the SDK is told to authorize')
  t.match(transcript.find((l) => l.startsWith('POST') && l.includes('/mcp ->')), `-> 401 (WWW-Authenticate: Bearer resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`)
  t.ok(transcript.some((l) => l.startsWith(`GET ${base}/.well-known/oauth-protected-resource/mcp -> 200`)), 'the SDK read the protected-resource metadata')
  t.ok(transcript.some((l) => l.startsWith(`GET ${base}/.well-known/oauth-authorization-server/oauth -> 200`)), 'and the RFC 8414 metadata')
  t.ok(transcript.some((l) => l.startsWith(`POST ${base}/oauth/reg -> 201`)), 'and registered itself')
  const authorizationUrl = oauthClient.authorizationUrl!
  t.ok(authorizationUrl, 'the SDK asked to send the person to the authorization URL')
  t.equal(authorizationUrl.searchParams.get('code_challenge_method'), 'S256')
  t.equal(authorizationUrl.searchParams.get('resource'), `${base}/mcp`, 'the resource indicator is the exact /mcp URL')
  say(`authorization URL: ${authorizationUrl.origin}${authorizationUrl.pathname}?${[...authorizationUrl.searchParams.keys()].join('&')}`)

  say('== 2. the person signs in through the portal and consents (Chromium)')
  const browser = await launchBrowser()
  t.teardown(() => browser.close())
  const context = await browser.context()
  const page = await context.newPage()
  await page.goto(authorizationUrl.href)
  await page.waitForURL(/\/ui\/sign-in/)
  say(`browser: ${new URL(page.url()).pathname} (not signed in: the portal's sign-in, then back to the consent page)`)
  await page.fill('#token', fx.tokens.operator)
  await page.click('button[type=submit]')
  await page.waitForURL(/\/ui\/oauth\/consent\//)
  const consent = await page.locator('main').innerText()
  for (const part of ['Connect Test MCP client to writ?', `${base}/mcp`, callback.url, 'ops-1', OAUTH_AGENT, 'Access tokens last 1 hour(s)', 'Connected agents']) {
    t.match(consent, part, `the consent page says ${part}`)
  }
  say(`consent page says: ${consent.replace(/\s+/g, ' ').trim()}`)
  await page.screenshot({ path: join(artifactsDir(), 'mcp-oauth-consent.png'), fullPage: true })
  await page.click('button[value=allow]')
  await page.waitForURL((u) => u.href.startsWith(callback.url))
  const params = callback.last()!
  t.ok(params.get('code'), 'the browser came back to the client with a code')
  t.equal(params.get('iss'), `${base}/oauth`, 'and the issuer (RFC 9207)')
  say(`callback: code=<${params.get('code')!.length} chars> iss=${params.get('iss')}`)

  say('== 3. the SDK redeems the code')
  await first.finishAuth(params)
  const tokens = oauthClient.saved!
  t.equal(tokens.token_type.toLowerCase(), 'bearer')
  t.ok(tokens.expires_in !== undefined && tokens.expires_in <= 3600, 'the access token lasts at most an hour')
  t.ok(tokens.refresh_token, 'with a refresh token')
  say(`tokens: token_type=${tokens.token_type} expires_in=${tokens.expires_in} scope=${tokens.scope} refresh_token=<present>`)

  say('== 4. tool calls with the token')
  const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), { authProvider: oauthClient, fetch: recording })
  const client = new Client({ name: 'oauth-test', version: '1.0.0' })
  await client.connect(transport)
  t.teardown(() => client.close())
  const tools = await client.listTools()
  t.ok(tools.tools.some((x) => x.name === 'run_action'), 'tools/list answers')
  say(`tools/list: ${tools.tools.map((x) => x.name).join(', ')}`)
  const run = await client.callTool({ name: 'run_action', arguments: { action: 'testops.echo', node: NODE, args: { message: 'hello over oauth' }, reason: 'check the OAuth connection', wait_seconds: 20 } })
  const answer = run.structuredContent as Record<string, any>
  t.equal(answer.status, 'succeeded', 'run_action ran as the agent')
  t.match(JSON.stringify(answer), 'hello over oauth')
  say(`run_action testops.echo: status=${answer.status} run_id=${answer.run_id}`)
  const record = (await app.writ.store.get(String(answer.run_id)))!.run
  t.match(record, { requester: { id: OAUTH_AGENT, kind: 'agent' }, requester_person: 'ops-1' }, 'the run is the agent principal\'s, on behalf of the person who consented')
  const gated = await client.callTool({ name: 'run_action', arguments: { action: 'testops.restart', node: NODE, reason: 'needs a person', wait_seconds: 0 } })
  const pending = gated.structuredContent as Record<string, any>
  t.equal(pending.status, 'pending_approval')
  const own = await fetch(`${base}/v1/runs/${pending.run_id}/approve`, { method: 'POST', headers: { ...auth(fx.tokens.operator), 'content-type': 'application/json' }, body: '{}' })
  t.equal(own.status, 403, 'the person behind the connection cannot approve the run it asked for')
  t.match(await own.json(), { error: { code: 'WRIT_ERR_SELF_APPROVAL' } })
  say(`run_action testops.restart: status=${pending.status}; ops-1 approving it -> ${own.status} WRIT_ERR_SELF_APPROVAL`)
  const granted = (await (await fetch(`${base}/v1/audit?type=oauth.granted`, { headers: auth(fx.tokens.operator) })).text()).trim().split('\n').map((l) => JSON.parse(l) as AuditEvent)
  t.match(granted[0], { type: 'oauth.granted', actor: { id: 'ops-1' }, data: { agent: OAUTH_AGENT, resource: `${base}/mcp` } }, 'the consent is on the record')

  say('== 5. the person revokes the connection on "Connected agents"')
  await page.goto(`${base}/ui/oauth/connections`)
  const listed = await page.locator('main').innerText()
  t.match(listed, 'Test MCP client')
  t.match(listed, `acts as ${OAUTH_AGENT}`)
  await page.click('button:has-text("Revoke")')
  await page.waitForURL(/revoked=1/)
  t.match(await page.locator('main').innerText(), 'Connection revoked')
  const afterRevoke = await fetch(`${base}/mcp`, {
    method: 'POST', headers: { authorization: `Bearer ${tokens.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
  })
  t.equal(afterRevoke.status, 401, 'the revoked token is refused on the next call')
  const refusal = await afterRevoke.json() as { error: { data: { code: string }, message: string } }
  t.match(refusal.error, { data: { code: 'WRIT_ERR_UNAUTHORIZED' }, message: /revoked|unknown/ })
  say(`after revocation: POST /mcp -> ${afterRevoke.status} ${refusal.error.message}`)
  const refreshed = await fetch(`${base}/oauth/token`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token!, client_id: String(oauthClient.client?.client_id) }).toString(),
  })
  t.equal(refreshed.status, 400, 'and so is its refresh token')
  say(`after revocation: refresh -> ${refreshed.status} ${(await refreshed.json() as { error: string }).error}`)

  writeFileSync(join(artifactsDir(), 'mcp-oauth-transcript.txt'), `${transcript.join('\n')}\n`)
  t.comment(transcript.join('\n'))
})

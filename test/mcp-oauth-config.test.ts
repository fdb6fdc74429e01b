/**
 * MCP authorization's configuration: a wrong `oauth` setting or an agent
 * principal that can sign in no way stops the boot, naming the setting.
 */
import t from 'tap'
import { parseConfig } from '@writ/control-plane'
import { startCpSuite } from './helpers/cp-fixtures.js'
import { PortalVisitor } from './helpers/portal-visitor.js'
import { startOAuthSuite } from './helpers/oauth-suite.js'

const base = { packs: { dirs: ['/packs'] }, signing: { key_file: '/k.pem' } }
const hash = 'a'.repeat(64)

t.test('oauth settings and agents connected through OAuth', async (t) => {
  const ok = parseConfig({ ...base, oauth: {}, principals: [{ id: 'connector', kind: 'agent', oauth: { groups: ['oncall'] } }] })
  t.match(ok.oauth, { access_token_ttl: '1h', requests_per_minute: 300, grant_ttl: '720h', dynamic_registration: false, client_metadata_documents: { allowed_hosts: [], max_bytes: 5120 } }, 'defaults: short tokens, no registration, no documents fetched')
  t.same(ok.principals[0]?.oauth, { people: [], groups: ['oncall'] }, 'an agent may have an oauth rule and no token')
  const cases: Array<[unknown, RegExp]> = [
    [{ ...base, oauth: { access_token_ttl: '2h' } }, /oauth\.access_token_ttl: between 1s and 1h/],
    [{ ...base, oauth: { client_metadata_documents: { allowed_hosts: ['https://claude.ai'] } } }, /oauth\.client_metadata_documents\.allowed_hosts\.0: a lower-case host name/],
    [{ ...base, oauth: { registration: true } }, /oauth: Unrecognized key/],
    [{ ...base, principals: [{ id: 'nobody', kind: 'agent' }] }, /principals\.0: an agent signs in with a token \(token_sha256\) or through MCP authorization \(oauth\)/],
    [{ ...base, principals: [{ id: 'ops', kind: 'operator', token_sha256: hash, oauth: { people: ['ops'] } }] }, /principals\.0\.oauth: only an agent is connected through OAuth/],
    [{ ...base, principals: [{ id: 'a', kind: 'agent', oauth: { people: ['bad name!'] } }] }, /principals\.0\.oauth\.people\.0/],
  ]
  for (const [input, re] of cases) t.throws(() => parseConfig(input), { name: 'ConfigError', message: re }, String(re))
})

t.test('without oauth: static tokens only, and the portal says how to turn it on', async (t) => {
  const { app, fx } = await startCpSuite(t)
  const mcp = await app.inject({ method: 'POST', url: '/mcp', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, payload: { jsonrpc: '2.0', id: 1, method: 'ping' } })
  t.equal(mcp.statusCode, 401)
  t.equal(mcp.headers['www-authenticate'], 'Bearer realm="writ"', 'the 401 names no resource metadata')
  t.equal((await app.inject({ url: '/.well-known/oauth-protected-resource/mcp' })).statusCode, 404, 'and there is none')
  t.equal((await app.inject({ url: '/oauth/auth' })).statusCode, 404, 'nor an authorization server')
  const visitor = new PortalVisitor(app)
  await visitor.signIn(fx.tokens.operator)
  const page = await visitor.get('/ui/oauth/connections')
  t.equal(page.statusCode, 404)
  t.match(page.body, 'MCP authorization (OAuth) is not configured on this control plane')
  t.notMatch((await visitor.get('/ui')).body, 'Connected agents', 'the portal does not offer the page')
})

t.test('the authorization server has a request budget per address', async (t) => {
  const { base } = await startOAuthSuite(t, { requests_per_minute: 10 })
  const statuses: number[] = []
  for (let i = 0; i < 12; i++) {
    const res = await fetch(`${base}/oauth/auth?client_id=nobody`, { redirect: 'manual' })
    await res.body?.cancel()
    statuses.push(res.status)
  }
  t.same(statuses.slice(0, 10), Array(10).fill(400), 'ten requests are answered (a bad client id here)')
  t.same(statuses.slice(10), [429, 429], 'the eleventh waits for the next minute')
  const metadata = await fetch(`${base}/.well-known/oauth-protected-resource/mcp`)
  t.equal(metadata.status, 429, 'the metadata documents are in the same budget')
})

/**
 * MCP authorization suites: a control plane with `oauth` configured (its own
 * NATS, a real runner), an agent principal people may connect through OAuth,
 * an OAuth client as the MCP SDK drives it (an `OAuthClientProvider` whose
 * redirect URI is a real loopback HTTP server), a recording fetch for the
 * transcript, and a walk through the portal's sign-in and consent without a
 * browser (the refusal suites; the flow suite uses Chromium).
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthClientProvider, OAuthDiscoveryState, OAuthTokens } from '@modelcontextprotocol/client'
import { buildApp, parseConfig, type Config, type ConfigInput } from '@writ/control-plane'
import { makeCpFixture, type CpFixture } from './cp-fixtures.js'
import { eventually } from './cp-fake-runner.js'
import { startRealRunner } from './cp-real-runner.js'
import { freePort, startNatsServer, type NatsServerHandle } from './nats-server.js'
import { CookieJar, PortalVisitor } from './portal-visitor.js'

export const OAUTH_AGENT = 'claude-agent'
export const NODE = 'host-1'

export interface OAuthSuite {
  nats: NatsServerHandle
  fx: CpFixture
  app: Awaited<ReturnType<typeof buildApp>>
  base: string
  /** The config the app was built from (another replica is built from it too). */
  config: Config
  transcript: string[]
  /** A fetch that writes each exchange (method, URL without query values, status) to the transcript. */
  fetch: typeof fetch
}

export async function startOAuthSuite(t: { teardown(fn: () => unknown): void }, oauth: ConfigInput['oauth'] = {}, runner = false): Promise<OAuthSuite> {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const config = parseConfig({
    ...fx.config, listen: { host: '127.0.0.1', port }, public_url: base, oauth, instance_id: 'cp-a',
    principals: [
      ...fx.config.principals,
      // Connected only through OAuth (no token of its own): ops-1 by name, anyone in oncall by group.
      { id: OAUTH_AGENT, kind: 'agent', groups: ['sre-agents'], oauth: { people: ['ops-1'], groups: ['oncall'] } },
    ],
  })
  const app = await buildApp(config)
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port })
  if (runner) {
    const r = await startRealRunner(fx, nats.url, NODE)
    t.teardown(() => r.close())
    await eventually(() => app.writ.fleet.find(NODE)?.online, 10_000, 'runner heartbeat')
  }
  const transcript: string[] = []
  const recording: typeof fetch = async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input))
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET')
    const res = await fetch(input, init)
    const shown = `${url.origin}${url.pathname}${[...url.searchParams.keys()].length ? `?${[...url.searchParams.keys()].join('&')}` : ''}`
    const challenge = res.headers.get('www-authenticate')
    transcript.push(`${method} ${shown} -> ${res.status}${challenge ? ` (WWW-Authenticate: ${challenge})` : ''}`)
    return res
  }
  return { nats, fx, app, base, config, transcript, fetch: recording }
}

/** The redirect URI: a loopback server that keeps the last callback's query. */
export async function startCallback(): Promise<{ url: string, last(): URLSearchParams | undefined, close(): Promise<void>, server: Server }> {
  let last: URLSearchParams | undefined
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    // A browser also asks this origin for /favicon.ico.
    if (url.pathname !== '/callback') { res.writeHead(404).end(); return }
    last = url.searchParams
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><title>Connected</title><p>You can close this window.</p>')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`
  return { url, last: () => last, close: () => new Promise((resolve) => server.close(() => resolve())), server }
}

/** The MCP SDK's OAuth client state, kept in memory as a CLI client keeps it on disk. */
export class TestOAuthClient implements OAuthClientProvider {
  client: OAuthClientInformationMixed | undefined
  saved: OAuthTokens | undefined
  verifier = ''
  authorizationUrl: URL | undefined
  discovery: OAuthDiscoveryState | undefined

  constructor(readonly redirectUrl: string, readonly clientMetadataUrl?: string) {}

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'Test MCP client', redirect_uris: [this.redirectUrl], grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'], token_endpoint_auth_method: 'none',
    }
  }

  clientInformation() { return this.client }
  saveClientInformation(info: OAuthClientInformationMixed) { this.client = info }
  tokens() { return this.saved }
  saveTokens(tokens: OAuthTokens) { this.saved = tokens }
  redirectToAuthorization(url: URL) { this.authorizationUrl = url }
  saveCodeVerifier(v: string) { this.verifier = v }
  codeVerifier() { return this.verifier }
  saveDiscoveryState(state: OAuthDiscoveryState) { this.discovery = state }
  discoveryState() { return this.discovery }
}

/** What the person decides on the consent page. */
export interface ConsentChoice { decision: 'allow' | 'deny', agent?: string }

/** Where a walk through sign-in and consent ended: back at the client, or on a portal page that refused. */
export type ConsentOutcome = { callback: URL } | { status: number, html: string }

/**
 * What a person's browser does with an authorization URL, without a browser:
 * the portal's token sign-in as `operatorToken`, the consent page (by default
 * Allow, as the OAuth agent), and the redirects back to the client.
 */
export async function walkConsent(base: string, authorizationUrl: string, operatorToken: string, choice: ConsentChoice = { decision: 'allow', agent: OAUTH_AGENT }): Promise<ConsentOutcome> {
  const jar = new CookieJar()
  let url = authorizationUrl
  let body: string | undefined
  let consented = false
  for (let hop = 0; hop < 12; hop++) {
    const res = await fetch(url, {
      method: body ? 'POST' : 'GET', redirect: 'manual', body,
      headers: { cookie: jar.header(), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
    })
    jar.keep(res.headers.getSetCookie())
    body = undefined
    const location = res.headers.get('location')
    if (location) {
      const next = new URL(location, url)
      if (next.origin !== base) return { callback: next }
      url = next.href
      continue
    }
    const html = await res.text()
    const csrf = PortalVisitor.field(html, '_csrf')
    const path = new URL(url).pathname
    if (consented || !(path === '/ui/sign-in' || path.startsWith('/ui/oauth/consent/'))) return { status: res.status, html }
    if (path === '/ui/sign-in') {
      url = `${base}/ui/sign-in`
      body = new URLSearchParams({ _csrf: csrf, token: operatorToken, next: new URL(res.url).searchParams.get('next') ?? '/ui' }).toString()
    } else {
      consented = true
      body = new URLSearchParams({ _csrf: csrf, decision: choice.decision, ...(choice.agent ? { agent: choice.agent } : {}) }).toString()
    }
  }
  throw new Error('the authorization did not come back to the client within 12 hops')
}

/** Allows as the OAuth agent; returns the callback URL. */
export async function consentWithoutBrowser(base: string, authorizationUrl: string, operatorToken: string): Promise<URL> {
  const outcome = await walkConsent(base, authorizationUrl, operatorToken)
  if ('callback' in outcome) return outcome.callback
  throw new Error(`the consent ended on a page: ${outcome.status} ${outcome.html.slice(0, 300)}`)
}

/** A token endpoint exchange as a client makes it (public client, PKCE). */
export async function exchangeCode(base: string, form: Record<string, string>): Promise<{ status: number, body: Record<string, any> }> {
  const res = await fetch(`${base}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString() })
  return { status: res.status, body: await res.json() as Record<string, any> }
}

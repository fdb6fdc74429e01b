/**
 * A browser-like visitor of the portal over `app.inject`: keeps its cookies
 * as a browser would (every cookie, replaced and cleared by Set-Cookie),
 * reads a page's CSRF token and form fields, opens the live socket with its
 * cookies. Also a cookie jar and a walk through a real OpenID provider's
 * sign-in and consent pages (oidc-provider's development interactions) for
 * single sign-on without a browser.
 */
// The injectWS decorator's type comes with the plugin's declarations.
import type {} from '@fastify/websocket'
import type { WebSocket } from 'ws'
import type { buildApp } from '@writ/control-plane'

type App = Awaited<ReturnType<typeof buildApp>>

/** Cookies of one site by name (one test talks to one portal; paths are not needed to tell them apart). */
export class CookieJar {
  readonly cookies = new Map<string, string>()

  keep(set: string | string[] | undefined): void {
    for (const line of Array.isArray(set) ? set : set ? [set] : []) {
      const [pair = ''] = line.split(';')
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      if (value === '' || /;\s*max-age=0/i.test(line) || /;\s*expires=thu, 01 jan 1970/i.test(line)) this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }

  header(): string { return [...this.cookies].map(([n, v]) => `${n}=${v}`).join('; ') }
}

export class PortalVisitor {
  readonly jar = new CookieJar()
  constructor(private readonly app: App, private readonly extraHeaders: Record<string, string> = {}) {}

  private headers(more: Record<string, string> = {}): Record<string, string> {
    const cookie = this.jar.header()
    return { 'user-agent': 'Mozilla/5.0 writ-test', ...this.extraHeaders, ...(cookie ? { cookie } : {}), ...more }
  }

  async get(url: string, headers: Record<string, string> = {}) {
    const res = await this.app.inject({ method: 'GET', url, headers: this.headers(headers) })
    this.jar.keep(res.headers['set-cookie'])
    return res
  }

  async post(url: string, form: Record<string, string>, headers: Record<string, string> = {}) {
    const res = await this.app.inject({
      method: 'POST', url, payload: new URLSearchParams(form).toString(),
      headers: this.headers({ 'content-type': 'application/x-www-form-urlencoded', ...headers }),
    })
    this.jar.keep(res.headers['set-cookie'])
    return res
  }

  /** Opens `/ui/live` with this visitor's cookies. */
  live(): Promise<WebSocket> {
    return this.app.injectWS('/ui/live', { headers: this.headers() })
  }

  static field(html: string, name: string): string {
    return new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1] ?? ''
  }

  /** Signs in with an operator token through the sign-in form. */
  async signIn(token: string): Promise<void> {
    const page = await this.get('/ui/sign-in')
    const res = await this.post('/ui/sign-in', { _csrf: PortalVisitor.field(page.body, '_csrf'), token, next: '/ui' })
    if (res.statusCode !== 303) throw new Error(`sign-in failed: ${res.statusCode} ${res.body.slice(0, 300)}`)
  }

  /** Posts the sign-out form of `page` (any signed-in page). */
  async signOut(): Promise<void> {
    const page = await this.get('/ui')
    const res = await this.post('/ui/sign-out', { _csrf: PortalVisitor.field(page.body, '_csrf') })
    if (res.statusCode !== 303) throw new Error(`sign-out failed: ${res.statusCode} ${res.body.slice(0, 300)}`)
  }

  /**
   * Opens `url` as a browser would: follows the portal's redirects and, when
   * one leads to the identity provider, walks its pages as `sso.login` (with
   * `sso.provider`'s cookies, so a second sign-on finds the provider's own
   * session and goes straight through) and comes back through the callback.
   * Returns the last response (a page, or a refusal).
   */
  async browse(url: string, sso?: { login: string, provider: CookieJar }) {
    let res = await this.get(url)
    for (let hop = 0; hop < 8 && (res.statusCode === 302 || res.statusCode === 303); hop++) {
      const location = String(res.headers.location)
      if (location.startsWith('/')) { res = await this.get(location); continue }
      if (!sso) return res
      const back = new URL(await throughProvider(location, sso.login, sso.provider))
      res = await this.get(`${back.pathname}${back.search}`)
    }
    return res
  }
}

/**
 * Walks a browser through oidc-provider's development sign-in (any password)
 * and consent pages, starting at the authorization URL, until the provider
 * redirects back to a URL outside itself: that URL (the client's callback).
 */
export async function throughProvider(authUrl: string, login: string, jar: CookieJar): Promise<string> {
  const origin = new URL(authUrl).origin
  let url = authUrl
  let method: 'GET' | 'POST' = 'GET'
  let body: string | undefined
  for (let hop = 0; hop < 12; hop++) {
    const res = await fetch(url, {
      method, redirect: 'manual', body,
      headers: { cookie: jar.header(), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
    })
    jar.keep(res.headers.getSetCookie())
    const location = res.headers.get('location')
    if (location) {
      const next = new URL(location, url).href
      if (!next.startsWith(origin)) return next
      url = next
      method = 'GET'
      body = undefined
      continue
    }
    const html = await res.text()
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1]
    const prompt = /name="prompt" value="([a-z]+)"/.exec(html)?.[1]
    if (!action || !prompt) throw new Error(`the provider answered ${res.status} without a form: ${html.slice(0, 300)}`)
    url = new URL(action, url).href
    method = 'POST'
    body = new URLSearchParams(prompt === 'login' ? { prompt, login, password: 'any password' } : { prompt }).toString()
  }
  throw new Error(`the provider did not send the browser back within 12 hops (last: ${url})`)
}

/**
 * Single sign-on for the portal, in the real browser against a real OpenID
 * provider on loopback: the Slack link of a run waiting for approval sends a
 * signed-out operator through the provider and back onto that run, where
 * they approve it; a person the config does not map is refused with a page
 * that says so; a tampered `state`, a replayed code and an answer from
 * another issuer are refused and sign nobody in.
 */
import t from 'tap'
import type { Page } from 'playwright-core'
import { buildApp, parseConfig } from '@writ/control-plane'
import { freePort, startNatsServer } from './helpers/nats-server.js'
import { auth, makeCpFixture } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'
import { STOCK_PACKS } from './helpers/runner-harness.js'
import { allocationLike, startNomadDouble } from './doubles/nomad-api.js'
import { launchBrowser } from './helpers/browser.js'
import { OIDC_CLIENT, startOidcProvider } from './helpers/oidc-provider.js'

const NODE = 'nomad-client-7'
const ALLOC = '7d3f1c2a-4b5e-6f70-8192-a3b4c5d6e7f9'
const USERS = {
  'alice@example.test': { email: 'alice@example.test', groups: ['oncall', 'sre'] },
  'mallory@example.test': { email: 'mallory@example.test', groups: ['oncall'] },
}

t.test('single sign-on in the browser', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const nomad = await startNomadDouble({ extraAllocs: [allocationLike({ id: ALLOC, nodeId: NODE, jobId: 'victoria-metrics', taskGroup: 'storage' })] })
  t.teardown(() => nomad.close())
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const callback = `${base}/ui/sign-in/oidc/callback`
  const idp = await startOidcProvider({ redirectUris: [callback], users: USERS })
  t.teardown(() => idp.close())
  // Another real provider with the same client: the mix-up attacker's.
  const otherIdp = await startOidcProvider({ redirectUris: [callback], users: USERS })
  t.teardown(() => otherIdp.close())

  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  const config = parseConfig({
    ...fx.config, listen: { host: '127.0.0.1', port }, public_url: base,
    packs: { dirs: [...fx.config.packs.dirs, STOCK_PACKS] },
    // alice signs in only through the provider; her groups come from its groups claim, not from here.
    principals: [...fx.config.principals, { id: 'alice', kind: 'operator', sso: 'alice@example.test', groups: [] }],
    portal: { ...fx.config.portal, token_sign_in: false, oidc: { issuer: idp.issuer, ...OIDC_CLIENT, groups_claim: 'groups', allowed_groups: ['oncall', 'sre'], name: 'Example SSO', scopes: ['openid', 'email', 'groups'] } },
  })
  const app = await buildApp(config)
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port })
  const runner = await startRealRunner(fx, nats.url, NODE, { packDirs: config.packs.dirs, nomadAddr: nomad.addr })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find(NODE)?.online, 10_000, 'runner heartbeat')

  const res = await fetch(`${base}/v1/runs`, {
    method: 'POST', headers: { ...auth(fx.tokens.agent), 'content-type': 'application/json' },
    body: JSON.stringify({ node: NODE, action: 'nomad.alloc_stop', args: { alloc_id: ALLOC }, reason: 'the volume under it was reformatted' }),
  })
  const stop = await res.json() as { id: string, status: string, approval: { url: string } }
  t.equal(stop.status, 'pending_approval')
  const link = stop.approval.url

  const browser = await launchBrowser()
  t.teardown(() => browser.close())
  const signInAtProvider = async (page: Page, login: string): Promise<void> => {
    await page.locator('input[name=login]').fill(login)
    await page.locator('input[name=password]').fill('any password')
    await page.getByRole('button', { name: 'Sign-in' }).click()
    // The provider asks once for consent to share the claims.
    const consent = page.getByRole('button', { name: /continue/i })
    if (await consent.isVisible().catch(() => false)) await consent.click()
  }
  const transcript: string[] = []
  const note = (line: string): void => { transcript.push(line) }
  /** A refusal page's heading and message, for the transcript. */
  const said = (text: string): string => text.split('\n').map((l) => l.trim()).filter(Boolean).slice(0, 2).join(': ')

  await t.test('the Slack link goes through the provider and lands on the run, which alice approves', async (t) => {
    const page = await (await browser.context({ width: 375, height: 812 })).newPage()
    const hops: string[] = []
    page.on('request', (r) => { if (r.isNavigationRequest()) hops.push(r.url()) })
    await page.goto(link)
    t.match(page.url(), new RegExp(`^${idp.issuer}/interaction/`), 'a signed-out operator is sent straight to the identity provider')
    note(`GET ${link} → ${page.url()} (the provider's sign-in)`)
    await signInAtProvider(page, 'alice@example.test')
    await page.waitForURL(link)
    t.pass('after the provider, the operator lands on the run from the link')
    note(`signed in as alice@example.test at the provider → back on ${page.url()}`)
    t.ok(hops.some((u) => u.startsWith(callback)), 'through the callback')
    t.match(await page.locator('header').innerText(), /Signed in as alice/)
    await page.getByRole('button', { name: 'Approve' }).click()
    await page.waitForURL(`${link}?done=1`)
    const done = await eventually(async () => {
      const r = (await app.writ.store.get(stop.id))?.run
      return r?.status === 'succeeded' ? r : undefined
    }, 15_000, 'the stop to run')
    t.match(done.approval?.approvals, [{ by: 'alice' }], 'the approval is alice\'s, with the groups the provider gave (oncall)')
    t.same(nomad.requests.filter((r) => r.method === 'POST').map((r) => r.path), [`/v1/allocation/${ALLOC}/stop`], 'exactly one stop')
    note(`alice approved; run ${stop.id} ${done.status}; Nomad got POST /v1/allocation/${ALLOC}/stop once`)
    await page.context().close()
  })

  await t.test('a person the config does not map is refused with a page that says so', async (t) => {
    const page = await (await browser.context()).newPage()
    await page.goto(`${base}/ui`)
    await signInAtProvider(page, 'mallory@example.test')
    await page.waitForURL(`${callback}**`)
    const text = await page.locator('main').innerText()
    t.match(text, 'Not an operator here')
    t.match(text, 'Example SSO signed you in as mallory@example.test, but no writ operator is configured for it')
    t.notMatch(await page.locator('header').innerText(), /Signed in as/, 'nobody is signed in')
    note(`mallory@example.test (not in the config) → 403 "${said(text)}"`)
    await page.context().close()
  })

  await t.test('a tampered state, a replayed code and another issuer\'s answer are refused', async (t) => {
    const context = await browser.context()
    const page = await context.newPage()
    // A first, good sign-in establishes alice's session (and consent) at the provider.
    await page.goto(`${base}/ui`)
    await signInAtProvider(page, 'alice@example.test')
    await page.waitForURL(`${base}/ui`)
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.waitForURL(`${base}/ui/sign-in`)

    // The browser's own cookies, hop by hop, without following the last redirect:
    // a sign-in begins here (its state in this browser's session) and the
    // provider answers with the callback URL the browser would be sent to.
    const redirect = async (url: string): Promise<string> => {
      const res = await context.request.get(url, { maxRedirects: 0 })
      const to = res.headers().location
      if (!to) throw new Error(`${url} answered ${res.status()} without a redirect`)
      return new URL(to, url).href
    }
    const beginSignIn = (): Promise<string> => redirect(`${base}/ui/sign-in/oidc?next=%2Fui`)
    const providerAnswer = async (authUrl: string): Promise<string> => {
      let url = authUrl
      for (let hop = 0; hop < 5 && !url.startsWith(callback); hop++) url = await redirect(url)
      if (!url.startsWith(callback)) throw new Error(`the provider did not answer with the callback: ${url}`)
      return url
    }

    // Tampered state: the provider's answer comes back with another state.
    const answer = new URL(await providerAnswer(await beginSignIn()))
    answer.searchParams.set('state', `${answer.searchParams.get('state')}x`)
    const tampered = await page.goto(answer.href)
    t.equal(tampered?.status(), 400, 'tampered state: 400')
    const tamperedText = await page.locator('main').innerText()
    t.match(tamperedText, /Sign-in refused/)
    t.match(tamperedText, /state/)
    note(`tampered state → ${tampered?.status()}: ${said(tamperedText)}`)

    // Replayed code: a good answer signs in once; the same URL again, and its
    // code under a fresh sign-in's state, do not.
    const good = await providerAnswer(await beginSignIn())
    await page.goto(good)
    t.equal(new URL(page.url()).pathname, '/ui', 'the good answer signs in')
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.waitForURL(`${base}/ui/sign-in`)
    const again = await page.goto(good)
    t.equal(again?.status(), 400, 'the same callback twice: 400')
    t.match(await page.locator('main').innerText(), /No sign-in under way/)
    const fresh = new URL(await beginSignIn()).searchParams.get('state') ?? ''
    const oldCode = new URL(good).searchParams.get('code') ?? ''
    const replay = await page.goto(`${callback}?code=${encodeURIComponent(oldCode)}&state=${encodeURIComponent(fresh)}&iss=${encodeURIComponent(idp.issuer)}`)
    t.equal(replay?.status(), 400, 'replayed code: 400')
    const replayText = await page.locator('main').innerText()
    t.match(replayText, /refused the sign-in code \("invalid_grant"/)
    note(`replayed code → ${replay?.status()}: ${said(replayText)}`)

    // Another issuer (a mix-up): our request goes to the other provider, whose answer comes back to us.
    const ours = new URL(await beginSignIn())
    await page.goto(`${otherIdp.issuer}${ours.pathname}${ours.search}`)
    await signInAtProvider(page, 'alice@example.test')
    await page.waitForURL(`${callback}**`)
    t.match(page.url(), `iss=${encodeURIComponent(otherIdp.issuer)}`, 'the answer names the other issuer')
    const wrongText = await page.locator('main').innerText()
    t.match(wrongText, /Sign-in refused/)
    t.match(wrongText, /iss/)
    note(`answer from another issuer (${otherIdp.issuer}) → ${said(wrongText)}`)

    t.notMatch(await page.locator('header').innerText(), /Signed in as/, 'nothing signed anybody in')
    const runs = await context.request.get(`${base}/ui/runs`, { maxRedirects: 0 })
    t.equal(runs.status(), 303, 'the portal still wants a sign-in')
    await context.close()
  })

  await t.test('token sign-in is switched off; the sign-in page offers only the provider', async (t) => {
    const res = await fetch(`${base}/ui/sign-in`)
    const html = await res.text()
    t.match(html, 'Sign in with Example SSO')
    t.notMatch(html, 'Operator token', 'no token field')
  })

  await t.test('a provider whose discovery names another issuer is refused', async (t) => {
    const liar = await startOidcProvider({ redirectUris: [callback], users: USERS, issuerHost: 'localhost' })
    t.teardown(() => liar.close())
    const reachedAt = liar.issuer.replace('localhost', '127.0.0.1')
    const other = await buildApp(parseConfig({ ...config, listen: { host: '127.0.0.1', port: 0 }, portal: { ...config.portal, oidc: { ...config.portal.oidc!, issuer: reachedAt } } }))
    t.teardown(() => other.close())
    const start = await other.inject({ method: 'GET', url: '/ui/sign-in/oidc?next=%2Fui' })
    t.equal(start.statusCode, 503)
    t.match(start.body, /Single sign-on is unavailable/)
    t.match(start.body, /issuer/)
  })

  t.comment(`single sign-on transcript:\n${transcript.join('\n')}`)
})

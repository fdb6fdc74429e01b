/**
 * An open page follows its run: a decision made elsewhere (another operator,
 * the CLI, another replica) shows on it without a reload, and its stale forms
 * go away. A run on a node that went quiet says why its preview is missing.
 */
import t from 'tap'
import { buildApp, parseConfig } from '@writ/control-plane'
import { auth, startCpSuite } from './helpers/cp-fixtures.js'
import { eventually, startFakeRunner } from './helpers/cp-fake-runner.js'
import { STOCK_PACKS } from './helpers/runner-harness.js'
import { launchBrowser, signInWithToken } from './helpers/browser.js'
import { freePort } from './helpers/nats-server.js'


t.test('a decision made elsewhere updates the open run page and the inbox', async (t) => {
  const { fx } = await startCpSuite(t)
  const port = await freePort()
  const config = parseConfig({ ...fx.config, listen: { host: '127.0.0.1', port }, public_url: `http://127.0.0.1:${port}` })
  const app = await buildApp(config)
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port })
  const runner = await startFakeRunner({ natsUrl: fx.config.nats.servers[0] as string, nodeId: 'host-l', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('host-l')?.online, 10_000, 'heartbeat')
  const gate = async () => (await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.restart', node: 'host-l', args: {}, reason: 'live' } })).json().id as string
  const first = await gate()

  const browser = await launchBrowser()
  t.teardown(() => browser.close())
  const ctx = await browser.context({ width: 375, height: 800 })
  const page = await ctx.newPage()
  await signInWithToken(page, `http://127.0.0.1:${port}/ui/sign-in`, fx.tokens.operator, '**/ui')
  t.match(await page.locator('main').innerText(), 'Restart a service (pretend)', 'the inbox lists the waiting run')

  const inbox = await ctx.newPage()
  await inbox.goto(`http://127.0.0.1:${port}/ui`)
  await page.goto(`http://127.0.0.1:${port}/ui/runs/${first}`)
  t.equal(await page.getByRole('button', { name: 'Approve' }).count(), 1)
  // The page's script marks the body once the server confirmed its subscription.
  await page.locator('body[data-live-state="subscribed"]').waitFor({ state: 'attached', timeout: 10_000 })
  await inbox.locator('body[data-live-state="subscribed"]').waitFor({ state: 'attached', timeout: 10_000 })

  const second = await gate()
  await inbox.waitForFunction((id) => document.body.innerHTML.includes(id), second, { timeout: 10_000 })
  t.pass('the open inbox showed a run that arrived after it was opened')

  const denied = await app.inject({ method: 'POST', url: `/v1/runs/${first}/deny`, headers: auth(fx.tokens.operator2), payload: { reason: 'decided on the phone bridge' } })
  t.equal(denied.statusCode, 200)
  await page.locator('#live-note').waitFor({ state: 'visible', timeout: 10_000 })
  t.match(await page.locator('#live-note').innerText(), 'it is now denied', 'the open page says what happened')
  t.match(await page.locator('#run-status').innerText(), /denied/)
  t.equal(await page.getByRole('button', { name: 'Approve' }).count(), 0, 'the stale forms are gone')
  t.equal(runner.writs.length, 0)

  // Signing out in one tab ends the session everywhere: the open pages say so instead of following on.
  await inbox.getByRole('button', { name: 'Sign out' }).click()
  await inbox.waitForURL('**/ui/sign-in')
  await page.locator('body[data-live-state="ended"]').waitFor({ state: 'attached', timeout: 10_000 })
  t.match(await page.locator('#live-note').innerText(), 'Your session has ended', 'the open run page says its session ended')
})

t.test('a node that went quiet: the page says the preview is unavailable, and why', async (t) => {
  const { fx } = await startCpSuite(t)
  const config = parseConfig({ ...fx.config, packs: { dirs: [...fx.config.packs.dirs, STOCK_PACKS] } })
  const app = await buildApp(config)
  t.teardown(() => app.close())
  const runner = await startFakeRunner({ natsUrl: fx.config.nats.servers[0] as string, nodeId: 'host-q', packDirs: config.packs.dirs, publicKeyFile: fx.publicKeyFile })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('host-q')?.online, 10_000, 'heartbeat')
  await runner.kill()
  await eventually(() => app.writ.fleet.find('host-q')?.online === false, 10_000, 'the node to go offline')
  const run = (await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'nomad.alloc_stop', node: 'host-q', args: { alloc_id: '5456bd7a-9fc0-c0dd-6131-cbee77f57577' }, reason: 'stop it' } })).json()
  t.equal(run.status, 'pending_approval', 'a gated run still waits for a person')
  const recorded = await eventually(async () => (await app.writ.store.get(run.id))?.run.approval?.preview, 10_000, 'the preview attempt')
  t.match(recorded.unavailable, /node host-q has not sent a heartbeat since/)
  const page = await app.inject({ method: 'GET', url: '/ui/sign-in' })
  const cookie = String(page.headers['set-cookie']).split(';')[0] as string
  const csrf = /name="_csrf" value="([^"]*)"/.exec(page.body)?.[1] ?? ''
  const signed = await app.inject({ method: 'POST', url: '/ui/sign-in', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ _csrf: csrf, token: fx.tokens.operator, next: `/ui/runs/${run.id}` }).toString() })
  const session = String(signed.headers['set-cookie']).split(';')[0] as string
  const view = await app.inject({ method: 'GET', url: `/ui/runs/${run.id}`, headers: { cookie: session } })
  t.match(view.body, /Preview unavailable: node host-q has not sent a heartbeat since/, 'the approver is told the preview is missing and why')
})

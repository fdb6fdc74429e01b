/**
 * The freeze switch in a real browser (Debian's chromium): an operator signs
 * in, opens Nodes, freezes every agent with a reason, sees the banner on every
 * page, and unfreezes from the same section — forms with the session's CSRF
 * token, no script needed.
 */
import t from 'tap'
import { buildApp, parseConfig } from '@writ/control-plane'
import { freePort, startNatsServer } from './helpers/nats-server.js'
import { makeCpFixture } from './helpers/cp-fixtures.js'
import { launchBrowser, signInWithToken } from './helpers/browser.js'

t.test('freeze and unfreeze from the Nodes page in a browser', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const app = await buildApp(parseConfig({ ...fx.config, listen: { host: '127.0.0.1', port }, public_url: base }))
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port })
  const browser = await launchBrowser()
  t.teardown(() => browser.close())
  const page = await (await browser.context()).newPage()

  await signInWithToken(page, `${base}/ui/nodes`, fx.tokens.operator)

  await page.getByLabel('Reason (every refused agent and Slack read it)').fill('storage incident, hands off')
  await page.getByLabel('Scope').selectOption('agents')
  await page.getByRole('button', { name: 'Freeze', exact: true }).click()
  await page.waitForURL(/\/ui\/nodes\?brakes=frozen/)
  t.match(await page.getByRole('status').filter({ hasText: 'Frozen.' }).textContent(), /Every replica refuses/)
  t.match(app.writ.brakes.freezes, [{ scope: 'agents', by: 'ops-1', reason: 'storage incident, hands off' }])

  await page.goto(`${base}/ui/runs`)
  const banner = page.locator('.frozen-banner')
  t.match(await banner.textContent(), /Frozen: every agent — by ops-1.*storage incident, hands off/s, 'the banner is on every page')

  await banner.getByRole('link', { name: 'Unfreeze on the Nodes page' }).click()
  await page.getByRole('button', { name: 'Unfreeze every agent' }).click()
  await page.waitForURL(/\/ui\/nodes\?brakes=unfrozen/)
  t.equal(app.writ.brakes.freezes.length, 0, 'unfrozen')
  t.equal(await page.locator('.frozen-banner').count(), 0, 'the banner is gone')
})

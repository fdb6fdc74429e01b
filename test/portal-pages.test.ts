/**
 * The portal as an approver reads it, in Chromium at 375×812 and 1280×800:
 * the inbox cards say the concrete change, a decided run reads as history
 * (what happened first, kernel records with their times, the whole output a
 * download away), lists work on a phone, every page under /ui is a page (no
 * JSON, an unknown route and a feature that is off included), and a run that
 * finished before the page's live socket connected shows as finished.
 * Screenshots go to test/artifacts/.
 */
import t from 'tap'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { buildApp, parseConfig } from '@writ/control-plane'
import { freePort, startNatsServer } from './helpers/nats-server.js'
import { auth, makeCpFixture } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'
import { STOCK_PACKS } from './helpers/runner-harness.js'
import { allocationLike, startNomadDouble } from './doubles/nomad-api.js'
import { artifactsDir, launchBrowser, signInWithToken } from './helpers/browser.js'

const NODE_NAME = 'nomad-client-3'
const ALLOC = 'a8198d79-4b5e-6f70-8192-a3b4c5d6e7f8'
const VIEWPORTS = [{ width: 375, height: 812 }, { width: 1280, height: 800 }] as const

async function setup(t: { teardown(fn: () => unknown): void }) {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const probe = await startNomadDouble()
  const nodeId = probe.ids.nodeWithAllocs
  await probe.close()
  const nomad = await startNomadDouble({ extraAllocs: [allocationLike({ id: ALLOC, nodeId, jobId: 'victoria-metrics', taskGroup: 'storage' })] })
  t.teardown(() => nomad.close())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const config = parseConfig({
    ...fx.config, listen: { host: '127.0.0.1', port }, public_url: base, packs: { dirs: [...fx.config.packs.dirs, STOCK_PACKS] },
    policy: { rules: [
      { name: 'reads', match: { max_risk: 'low' }, decision: 'allow' },
      { name: 'restarts are urgent', match: { actions: ['testops.restart'] }, decision: 'require_approval', approver_groups: ['oncall'], quorum: 1, ttl: '90s' },
      { name: 'changes wait', match: { risk: ['medium', 'high', 'critical'] }, decision: 'require_approval', approver_groups: ['oncall'], quorum: 1, ttl: '15m' },
    ] },
  })
  const app = await buildApp(config)
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port })
  const runner = await startRealRunner(fx, nats.url, nodeId, { nodeName: NODE_NAME, packDirs: config.packs.dirs, nomadAddr: nomad.addr })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find(NODE_NAME)?.online, 10_000, 'runner heartbeat')
  const request = async (body: Record<string, unknown>, token = fx.tokens.agent): Promise<Record<string, any>> => {
    const res = await fetch(`${base}/v1/runs`, {
      method: 'POST', headers: { ...auth(token), 'content-type': 'application/json' }, body: JSON.stringify({ node: NODE_NAME, session_id: 'incident-9', ...body }),
    })
    return res.json() as Promise<Record<string, any>>
  }
  const browser = await launchBrowser()
  t.teardown(() => browser.close())
  return { fx, app, base, nodeId, request, browser: browser.browser, context: browser.context }
}

async function signedIn(context: (v: { width: number, height: number }) => Promise<import('playwright-core').BrowserContext>, base: string, token: string, viewport: { width: number, height: number }): Promise<Page> {
  const page = await (await context(viewport)).newPage()
  await signInWithToken(page, `${base}/ui/sign-in`, token, `${base}/ui`)
  return page
}

t.test('inbox, pending and decided runs, runs list and audit at both widths', async (t) => {
  const { fx, app, base, nodeId, request, context } = await setup(t)
  // The investigation: kernel records read from this host, then two changes that differ only in their arguments.
  const kernel = await request({ action: 'debugging.dmesg_tail', args: {}, reason: 'what did the kernel say about the multipath device?', wait: 15 })
  t.equal(kernel.status, 'succeeded', kernel.status_reason)
  const off = await request({ action: 'nomad.node_eligibility', args: { node_id: nodeId, eligibility: 'ineligible' }, reason: 'nothing new here until the storage is checked', evidence: [kernel.id] })
  const on = await request({ action: 'nomad.node_eligibility', args: { node_id: nodeId, eligibility: 'eligible' }, reason: 'storage checked; let work back on' })
  const stop = await request({ action: 'nomad.alloc_stop', args: { alloc_id: ALLOC }, reason: 'it writes into a volume that was just reformatted', evidence: [kernel.id] })
  for (const r of [off, on, stop]) t.equal(r.status, 'pending_approval')
  await eventually(async () => (await app.writ.store.get(stop.id))?.run.approval?.preview?.runs.length, 10_000, 'the stop\'s preview')

  const out = artifactsDir()
  for (const viewport of VIEWPORTS) {
    const w = viewport.width
    const page = await signedIn(context, base, fx.tokens.operator, viewport)
    const cards = await page.locator('ul.cards h2').allInnerTexts()
    t.ok(cards.includes(`Mark ${NODE_NAME} INELIGIBLE`) && cards.includes(`Mark ${NODE_NAME} ELIGIBLE`), `${w} px: the two eligibility cards say which way the node goes (${cards.join(' | ')})`)
    await page.screenshot({ path: join(out, `inbox-${w}.png`), fullPage: true })

    await page.goto(`${base}/ui/runs/${off.id}`)
    t.equal(await page.locator('h1').innerText(), `Mark ${NODE_NAME} INELIGIBLE`, 'the run page\'s title is the summary')
    t.match(await page.title(), `Mark ${NODE_NAME} INELIGIBLE`)
    const effects = await page.locator('ul.effects').innerText()
    t.match(effects, 'Nothing new is placed on the node')
    t.notMatch(effects, 'move back onto it', 'only the effects that apply to these arguments')
    t.match(await page.locator('[data-countdown]').innerText(), /^\d+ min left$/, 'a live countdown')
    t.match(await page.locator('.glance time').first().getAttribute('title') ?? '', /^\d{4}-\d\d-\d\dT.*Z/, 'the full UTC time on hover')
    t.notOk((await page.locator('details.more').getAttribute('open')) !== null, 'the call and the binding fold into Details')
    t.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), `${w} px: nothing overflows the screen`)
    await page.screenshot({ path: join(out, `run-pending-${w}.png`) })
    await page.screenshot({ path: join(out, `run-pending-${w}-full.png`), fullPage: true })
    await page.context().close()
  }

  // ops-1 approves the stop on the page; the run then reads as history.
  const phone = await signedIn(context, base, fx.tokens.operator, VIEWPORTS[0])
  await phone.goto(`${base}/ui/runs/${stop.id}`)
  t.equal(await phone.locator('h1').innerText(), `Stop allocation a8198d79 (victoria-metrics.storage[0]) on ${NODE_NAME}`, 'the allocation\'s name from the impact preview is in the title')
  await phone.getByLabel('Comment (optional)').fill('stop it; restore from the snapshot')
  await phone.getByRole('button', { name: 'Approve' }).click()
  await phone.waitForURL(`**/ui/runs/${stop.id}?done=1`)
  await eventually(async () => (await app.writ.store.get(stop.id))?.run.status === 'succeeded', 15_000, 'the stop to run')
  // Denied from the page: the reason field opens under Deny.
  await phone.goto(`${base}/ui/runs/${on.id}`)
  await phone.getByText('Deny…').click()
  await phone.getByLabel('Reason for denying (the agent is told)').fill('not before the storage check is written up')
  await phone.getByRole('button', { name: 'Deny', exact: true }).click()
  await phone.waitForURL(`**/ui/runs/${on.id}?done=1`)
  await phone.context().close()

  for (const viewport of VIEWPORTS) {
    const w = viewport.width
    const page = await signedIn(context, base, fx.tokens.operator2, viewport)
    await page.goto(`${base}/ui/runs/${stop.id}`)
    const happened = await page.locator('section.happened').innerText()
    t.match(happened, /What happened[\s\S]*Approved by ops-1[\s\S]*stop it; restore from the snapshot[\s\S]*Result[\s\S]*"EvalID"/, 'a decided run: who decided, when, and the result first')
    t.match(await page.locator('#run-status').innerText(), /^Succeeded/)
    t.equal(await page.locator('.decide').count(), 0, 'no decision bar on a decided run')
    t.match(await page.locator('section[aria-labelledby="preview-h"] p.note').first().innerText(), /^As of .*, read before the action ran\.$/, 'the preview is marked as of when it was read')
    const kernelLines = page.locator('details.evidence ol.kernel li')
    t.ok(await kernelLines.count() > 0, 'the cited kernel records are listed')
    t.match(await kernelLines.last().locator('time').getAttribute('datetime') ?? '', /^\d{4}-\d\d-\d\dT/, 'each with its wall-clock time')
    t.match(await page.locator('details.evidence a[download]').first().getAttribute('href') ?? '', `/ui/runs/${kernel.id}/output`)
    await page.screenshot({ path: join(out, `run-decided-${w}.png`) })
    await page.screenshot({ path: join(out, `run-decided-${w}-full.png`), fullPage: true })

    await page.goto(`${base}/ui/runs`)
    const list = await page.locator('main').innerText()
    t.match(list, `Stop allocation a8198d79 on ${NODE_NAME}`, 'the runs list shows summaries')
    t.notMatch(list, 'impact preview for run', 'preview runs are hidden by default')
    t.match(list, /Denied/, 'statuses in plain words')
    t.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), `${w} px: the runs list fits the screen`)
    await page.screenshot({ path: join(out, `runs-${w}.png`), fullPage: true })
    await page.getByRole('link', { name: 'Show them' }).click()
    t.match(await page.locator('main').innerText(), `Read allocation a8198d79 on ${NODE_NAME}`, 'asked for, the preview runs are listed')

    await page.goto(`${base}/ui/audit`)
    t.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), `${w} px: the audit trail fits the screen`)
    t.match(await page.locator('.timeline time').first().innerText(), /·/, 'audit times read in the viewer\'s zone with a relative form')
    const trail = await page.locator('.timeline').innerText()
    t.match(trail, `by the runner on ${NODE_NAME}`, 'a runner\'s events name its node')
    t.notMatch(trail, /by node:[0-9a-f]{8}-/, 'not its node id')
    await page.screenshot({ path: join(out, `audit-${w}.png`) })
    await page.context().close()
  }
  const download = await fetch(`${base}/ui/runs/${kernel.id}/output`, { redirect: 'manual' })
  t.ok(download.status >= 300 && download.status < 400 && /\/ui\/sign-in/.test(download.headers.get('location') ?? ''), 'the whole output needs a signed-in operator too')
})

t.test('no page under /ui answers JSON: unknown routes, features that are off, bad input', async (t) => {
  const { fx, base, request, browser, context } = await setup(t)
  const run = await request({ action: 'debugging.loadavg', args: {}, reason: 'a run to open', wait: 15 })
  const page = await signedIn(context, base, fx.tokens.operator, VIEWPORTS[0])
  const urls = [
    '/ui', '/ui/runs', '/ui/audit', '/ui/nodes', `/ui/runs/${run.id}`, '/ui/runs/run_doesnotexist', '/ui/runs/%00', '/ui/no-such-page', '/ui/runs/x/y/z',
    '/ui/passkeys', '/ui/sign-in/oidc', '/ui/audit?before=zero', '/ui/runs?status=bogus', '/ui?cursor=!', '/ui/live', '/ui/assets/portal-nothing.css',
  ]
  for (const url of urls) {
    const res = await page.goto(`${base}${url}`)
    t.match(res?.headers()['content-type'], /^text\/html/, `${url} answers a page (${res?.status()})`)
    // (An asset's address is not a page a person opens: it gets the page without the session's navigation.)
    if (!url.startsWith('/ui/assets/')) t.ok(await page.locator('nav[aria-label="Portal"] a[href="/ui"]').count() === 1, `${url}: the page has the portal's navigation`)
  }
  await page.goto(`${base}/ui/passkeys`)
  t.match(await page.locator('main').innerText(), /passkeys are not configured[\s\S]*add a passkeys section/, 'a feature that is off says how to turn it on')
  await page.goto(`${base}/ui/no-such-page`)
  t.match(await page.locator('main').innerText(), /Not found[\s\S]*no page \/ui\/no-such-page/)

  const signedOut = await (await browser.newContext()).newPage()
  for (const url of ['/ui/no-such-page', '/ui/sign-in/link/not-a-code', '/ui/sign-in/oidc']) {
    const res = await signedOut.goto(`${base}${url}`)
    t.match(res?.headers()['content-type'], /^text\/html/, `signed out, ${url} answers a page`)
  }
  await signedOut.context().close()

  // Under two minutes left, the countdown turns to a warning.
  const urgent = await request({ action: 'testops.restart', args: {}, reason: 'the worker is wedged' })
  await page.goto(`${base}/ui/runs/${urgent.id}`)
  const countdown = page.locator('.countdown')
  t.match(await countdown.getAttribute('class'), /urgent/, 'the countdown is a warning')
  await page.waitForFunction(() => /^1 min \d+ s left — decide now$/.test(document.querySelector('.countdown')?.textContent ?? ''), undefined, { timeout: 10_000 })
  t.pass('and counts down by the second')
})

t.test('a run that finished before the page\'s live socket connected is shown as finished', async (t) => {
  const { fx, app, base, nodeId, request, context } = await setup(t)
  const run = await request({ action: 'nomad.node_eligibility', args: { node_id: nodeId, eligibility: 'ineligible' }, reason: 'hold placements for a moment' })
  t.equal(run.status, 'pending_approval')
  const page = await signedIn(context, base, fx.tokens.operator, VIEWPORTS[0])
  // The page's socket is held back until the run has been approved elsewhere and has finished.
  let release!: () => void
  const finished = new Promise<void>((resolve) => { release = resolve })
  await page.routeWebSocket(/\/ui\/live$/, async (ws) => { await finished; ws.connectToServer() })
  await page.goto(`${base}/ui/runs/${run.id}`)
  t.equal(await page.locator('body').getAttribute('data-live-status'), 'pending_approval', 'the page was rendered while the run waited')
  const binding = (await app.writ.store.get(run.id))?.run.approval?.binding
  const approved = await fetch(`${base}/v1/runs/${run.id}/approve`, { method: 'POST', headers: { ...auth(fx.tokens.operator2), 'content-type': 'application/json' }, body: JSON.stringify({ binding }) })
  t.equal(approved.status, 200)
  await eventually(async () => (await app.writ.store.get(run.id))?.run.status === 'succeeded', 15_000, 'the run to finish')
  release()
  await page.waitForFunction(() => document.getElementById('run-status')?.textContent?.startsWith('Succeeded'), undefined, { timeout: 10_000 })
  t.pass('the page says the run succeeded')
  t.equal(await page.locator('.decide').count(), 0, 'and its decision bar is gone')
  t.match(await page.locator('#live-note').innerText(), 'it is now succeeded')
})

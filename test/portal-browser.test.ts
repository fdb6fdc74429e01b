/**
 * The moment the product exists for, in a real browser: an agent asks to stop
 * a live allocation, Slack gets a link, an operator opens it on a phone, signs
 * in, sees what will happen (side effects, the impact preview, the evidence),
 * approves; the runner stops exactly that allocation once, and the record
 * shows who allowed it.
 */
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildApp, parseConfig, type AuditEvent } from '@writ/control-plane'
import { freePort, startNatsServer } from './helpers/nats-server.js'
import { auth, makeCpFixture } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'
import { STOCK_PACKS } from './helpers/runner-harness.js'
import { allocationLike, startNomadDouble } from './doubles/nomad-api.js'
import { artifactsDir, launchBrowser } from './helpers/browser.js'
import { reviewLink, startSlackReceiver } from './helpers/slack-receiver.js'


const NODE = 'nomad-client-7'
const ALLOC = '7d3f1c2a-4b5e-6f70-8192-a3b4c5d6e7f8'

t.test('an approval from a Slack link, in the browser, at 375 px and 1280 px', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const slack = await startSlackReceiver()
  t.teardown(() => slack.close())
  const nomad = await startNomadDouble({
    extraAllocs: [allocationLike({
      id: ALLOC, nodeId: NODE, jobId: 'victoria-metrics', taskGroup: 'storage',
      volumes: { data: { Name: 'data', Type: 'csi', Source: 'vmstorage-data-0', ReadOnly: false, AccessMode: 'single-node-writer', AttachmentMode: 'file-system' } },
    })],
  })
  t.teardown(() => nomad.close())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const config = parseConfig({
    ...fx.config, listen: { host: '127.0.0.1', port }, public_url: base,
    packs: { dirs: [...fx.config.packs.dirs, STOCK_PACKS] },
    notify: { slack: { webhook_url: slack.url, max_attempts: 5, timeout: '5s', retry_base: '100ms' } },
  })
  const app = await buildApp(config)
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port })
  const runner = await startRealRunner(fx, nats.url, NODE, { packDirs: config.packs.dirs, nomadAddr: nomad.addr })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find(NODE)?.online, 10_000, 'runner heartbeat')

  const agent = async (body: Record<string, unknown>) => {
    const res = await fetch(`${base}/v1/runs`, { method: 'POST', headers: { ...auth(fx.tokens.agent), 'content-type': 'application/json' }, body: JSON.stringify({ node: NODE, session_id: 'incident-42', ...body }) })
    return res.json() as Promise<Record<string, any>>
  }
  // The agent's investigation: earlier runs in the same session, one of them cited.
  const look = await agent({ action: 'nomad.alloc_status', args: { alloc_id: ALLOC }, reason: 'which job holds the volume that came back empty?', wait: 15 })
  t.equal(look.status, 'succeeded')
  const load = await agent({ action: 'testops.echo', args: { message: 'load is normal' }, reason: 'rule out load', wait: 15 })
  t.equal(load.status, 'succeeded')
  const stop = await agent({
    action: 'nomad.alloc_stop', args: { alloc_id: ALLOC }, reason: 'victoria-metrics writes into a volume that was just reformatted; stop it before it overwrites what can be recovered',
    expected: 'the allocation stops; no replacement is placed until the volume is restored', evidence: [look.id],
  })
  t.equal(stop.status, 'pending_approval')
  t.match(stop.approval, { url: `${base}/ui/runs/${stop.id}` })

  const message = await eventually(() => slack.messages.find((m) => JSON.stringify(m).includes(stop.id)), 10_000, 'the Slack message')
  t.match(message, { unfurl_links: false, unfurl_media: false, text: /Approval needed: nomad\.alloc_stop on nomad-client-7 \(high risk\)/ })
  const text = JSON.stringify(message.blocks)
  for (const part of ['Stop one allocation', 'agent-1', 'the allocation stops; no replacement is placed', 'Kills every task of the allocation', 'Expires']) t.match(text, part, `the message says ${part}`)
  const link = reviewLink(message)
  t.equal(link, `${base}/ui/runs/${stop.id}`, 'the Review button links to the run page')

  await eventually(async () => (await app.writ.store.get(stop.id))?.run.approval?.preview, 10_000, 'the impact preview to be recorded')
  const previewRun = (await app.writ.store.get(stop.id))!.run.approval!.preview!.runs[0]!
  await eventually(async () => (await app.writ.store.get(previewRun.run_id))?.run.status === 'succeeded', 10_000, 'the preview read')

  const browser = await launchBrowser()
  t.teardown(() => browser.close())
  const phone = await browser.context({ width: 375, height: 812 })
  const page = await phone.newPage()
  await page.goto(link as string)
  t.match(page.url(), /\/ui\/sign-in\?next=%2Fui%2Fruns%2F/, 'a signed-out operator is sent to sign in first')
  await page.getByLabel('Operator token').fill(fx.tokens.operator)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL(`**/ui/runs/${stop.id}`)
  t.pass('after sign-in the operator lands on the run from the link')

  const body = await page.locator('main').innerText()
  for (const part of [
    'Stop one allocation', 'nomad-client-7', 'high risk', 'Kills every task of the allocation', 'agent-1', 'victoria-metrics writes into a volume',
    'the allocation stops; no replacement is placed', 'min left', 'Impact preview', 'victoria-metrics', 'storage', 'vmstorage-data-0', 'running',
    'Evidence trail', 'cited', 'nomad.alloc_status', 'testops.echo',
  ]) t.match(body, part, `the page shows ${part}`)
  const out = artifactsDir()
  await page.screenshot({ path: join(out, 'run-page-375.png'), fullPage: true })
  const wide = await (await browser.context({ width: 1280, height: 900 })).newPage()
  await wide.context().addCookies(await phone.cookies())
  await wide.goto(link as string)
  await wide.screenshot({ path: join(out, 'run-page-1280.png'), fullPage: true })
  const noOverflow = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1)
  t.ok(noOverflow, 'nothing overflows a 375 px screen')

  t.equal(nomad.requests.filter((r) => r.method === 'POST').length, 0, 'opening the page stopped nothing')
  await page.getByLabel('Comment (optional)').fill('stop it; restore from snapshot next')
  await page.getByRole('button', { name: 'Approve' }).click()
  await page.waitForURL(`**/ui/runs/${stop.id}?done=1`)
  t.match(await page.locator('main').innerText(), 'Your decision is recorded.')

  const done = await eventually(async () => {
    const r = (await app.writ.store.get(stop.id))?.run
    return r && r.status === 'succeeded' ? r : undefined
  }, 15_000, 'the stop to run')
  t.match(done.approval?.approvals, [{ by: 'ops-1', comment: 'stop it; restore from snapshot next' }])
  const stops = nomad.requests.filter((r) => r.method === 'POST')
  t.same(stops.map((r) => r.path), [`/v1/allocation/${ALLOC}/stop`], 'the Nomad double received exactly one stop, for that allocation')
  await page.reload()
  t.match(await page.locator('#run-status').innerText(), /Succeeded/)
  await page.screenshot({ path: join(out, 'run-page-375-after.png'), fullPage: true })

  const audit = await (await fetch(`${base}/v1/audit?run_id=${stop.id}`, { headers: auth(fx.tokens.operator) })).text()
  const events = audit.trim().split('\n').map((l) => JSON.parse(l) as AuditEvent)
  const granted = events.find((e) => e.type === 'approval.granted')
  t.match(granted, { actor: { id: 'ops-1', kind: 'operator' }, data: { comment: 'stop it; restore from snapshot next', quorum_met: true } }, 'the audit shows the approver')
  t.ok(events.findIndex((e) => e.type === 'approval.granted') < events.findIndex((e) => e.type === 'run.dispatched'), 'approved before dispatched')
  const followUp = await eventually(() => slack.messages.find((m) => m !== message && JSON.stringify(m).includes(stop.id)), 10_000, 'the outcome message')
  t.match(followUp.text, /Approved by ops-1/)
  writeFileSync(join(out, 'slack-messages.json'), `${JSON.stringify(slack.messages.filter((m) => JSON.stringify(m).includes(stop.id)), null, 2)}\n`)
})

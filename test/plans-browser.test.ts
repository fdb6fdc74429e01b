/**
 * A gated plan over ten nodes, approved once, in a real browser: the agent
 * asks through MCP, Slack gets one message for the whole plan, an operator
 * opens its page (at 375 px and 1280 px), finds a node in the frozen list,
 * approves once — and every one of the ten runners runs it, each having
 * checked that its place is under the root the approval bound.
 */
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildApp, parseConfig } from '@writ/control-plane'
import type { NodeRunner } from '@writ/node-runner'
import { freePort, startNatsServer } from './helpers/nats-server.js'
import { makeCpFixture } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'
import { artifactsDir, launchBrowser, signInWithToken } from './helpers/browser.js'
import { reviewLink, startSlackReceiver } from './helpers/slack-receiver.js'
import { connectMcp } from './helpers/mcp-client.js'

const NODES = Array.from({ length: 10 }, (_, i) => `web-${String(i + 1).padStart(2, '0')}`)

t.test('a gated 10-node plan, one Slack message, approved once in Chromium', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const slack = await startSlackReceiver()
  t.teardown(() => slack.close())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const config = parseConfig({ ...fx.config, listen: { host: '127.0.0.1', port }, public_url: base, notify: { slack: { webhook_url: slack.url, max_attempts: 5, timeout: '5s', retry_base: '100ms' } } })
  const app = await buildApp(config)
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port })
  const runners: NodeRunner[] = []
  t.teardown(async () => { for (const r of runners) await r.close() })
  for (const n of NODES) runners.push(await startRealRunner(fx, nats.url, n))
  await eventually(() => app.writ.fleet.onlineCount === NODES.length, 10_000, 'the ten runners')

  const agent = await connectMcp(base, fx.tokens.agent)
  t.teardown(() => agent.close())
  const transcript: string[] = []
  const call = async (name: string, args: Record<string, unknown>) => {
    transcript.push(`→ ${name} ${JSON.stringify(args)}`)
    const a = await agent.call(name, args)
    transcript.push(`← ${JSON.stringify(a.value)}`)
    return a.value as Record<string, any>
  }
  const asked = await call('run_action', {
    action: 'testops.restart', targets: { selector: 'ID matches "^web-"' }, rollout: { batch: 5 },
    reason: 'roll the web tier onto the fixed config, one approval for all ten', expected: 'each web node restarts once, five at a time',
  })
  t.match(asked, { status: 'pending_approval', counts: { targets: 10, pending_approval: 10 }, approval: { quorum: 1, approver_groups: ['oncall'] } })
  const planUrl = asked.url as string
  t.equal(planUrl, `${base}/ui/plans/${asked.plan_id}`)

  const message = await eventually(() => slack.messages.find((m) => JSON.stringify(m).includes(asked.plan_id)), 10_000, 'the Slack message')
  t.match(message.text, /Approval needed: testops\.restart \(high risk\), requested by agent-1/)
  t.match(JSON.stringify(message.blocks), '10 nodes', 'the message says the plan covers ten nodes')
  t.equal(reviewLink(message), planUrl, 'the Review button links to the plan page')

  const browser = await launchBrowser()
  t.teardown(() => browser.close())
  const phone = await browser.context({ width: 375, height: 812 })
  const page = await phone.newPage()
  await signInWithToken(page, planUrl, fx.tokens.operator, `**/ui/plans/${asked.plan_id}`)
  const body = await page.locator('main').innerText()
  for (const part of ['Restart a service (pretend) on 10 nodes', 'Waiting for approval', 'ID matches "^web-"', 'batches of 5', 'Restarts the service.',
    'roll the web tier onto the fixed config', 'each web node restarts once', 'over root', 'web-01', 'web-10', 'Your decision, for all 10 nodes']) {
    t.match(body, part, `the page shows ${part}`)
  }
  const out = artifactsDir()
  await page.screenshot({ path: join(out, 'plan-page-375.png'), fullPage: true })
  t.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), 'nothing overflows a 375 px screen')
  const wide = await (await browser.context({ width: 1280, height: 900 })).newPage()
  await wide.context().addCookies(await phone.cookies())
  await wide.goto(planUrl)
  await wide.screenshot({ path: join(out, 'plan-page-1280.png'), fullPage: true })

  await page.getByLabel('Find a node').fill('web-07')
  await page.getByRole('button', { name: 'Search' }).click()
  t.equal(await page.locator('tbody tr').count(), 1, 'the target list searches')

  await page.getByLabel('Comment (optional)').fill('all ten, five at a time')
  await page.getByRole('button', { name: 'Approve the plan' }).click()
  await page.waitForURL(`**/ui/plans/${asked.plan_id}?done=1`)
  t.match(await page.locator('main').innerText(), 'Your decision is recorded.')

  const done = await call('wait_for_run', { run_id: asked.plan_id, wait_seconds: 30 })
  t.match(done, { status: 'succeeded', counts: { succeeded: 10 }, groups: [{ count: 10, status: 'succeeded' }] })
  // The open page follows the rollout by itself (it reloads as targets finish): wait for it to say so, not navigate over it.
  await page.waitForFunction(() => /Succeeded/.test(document.querySelector('#plan-status')?.textContent ?? ''), undefined, { timeout: 30_000 })
  await page.waitForLoadState('load')
  t.match(await page.locator('#plan-status').innerText(), /Succeeded/)
  await page.screenshot({ path: join(out, 'plan-page-375-after.png'), fullPage: true })
  const plansMessages = slack.messages.filter((m) => JSON.stringify(m).includes(asked.plan_id))
  t.equal(plansMessages.filter((m) => /Approval needed/.test(String(m.text))).length, 1, 'one Slack approval message for the whole plan')
  writeFileSync(join(out, 'plan-mcp-transcript.txt'), `${transcript.join('\n')}\n`)
  t.comment(`MCP transcript:\n${transcript.map((l) => (l.length > 2000 ? `${l.slice(0, 2000)}…` : l)).join('\n')}`)
})

/**
 * The approver's first screen: an operator opens a gated stock action's run
 * page from a phone (375×812) or a laptop (1280×800) and can decide without
 * scrolling — the Approve control lies inside the first viewport, under a
 * title that says the concrete change.
 */
import t from 'tap'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
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

t.test('every gated stock action can be decided on the first screen, at 375 px and 1280 px', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const nomadProbe = await startNomadDouble()
  const nodeId = nomadProbe.ids.nodeWithAllocs
  await nomadProbe.close()
  const nomad = await startNomadDouble({
    extraAllocs: [allocationLike({
      id: ALLOC, nodeId, jobId: 'victoria-metrics', taskGroup: 'storage',
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
    // As in `writ dev`: every change, medium risk included, waits for an operator.
    policy: { rules: [
      { name: 'reads', match: { max_risk: 'low' }, decision: 'allow' },
      { name: 'changes wait', match: { risk: ['medium', 'high', 'critical'] }, decision: 'require_approval', approver_groups: ['oncall'], quorum: 1, ttl: '15m' },
    ] },
  })
  const app = await buildApp(config)
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port })
  const runner = await startRealRunner(fx, nats.url, nodeId, { nodeName: NODE_NAME, packDirs: config.packs.dirs, nomadAddr: nomad.addr })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find(NODE_NAME)?.online, 10_000, 'runner heartbeat')

  const request = async (body: Record<string, unknown>): Promise<Record<string, any>> => {
    const res = await fetch(`${base}/v1/runs`, {
      method: 'POST', headers: { ...auth(fx.tokens.agent), 'content-type': 'application/json' },
      body: JSON.stringify({ node: NODE_NAME, session_id: 'incident-7', ...body }),
    })
    return res.json() as Promise<Record<string, any>>
  }
  const gated = [
    { summary: `Stop allocation a8198d79 (victoria-metrics.storage[0]) on ${NODE_NAME}`, action: 'nomad.alloc_stop', args: { alloc_id: ALLOC }, reason: 'victoria-metrics writes into a volume that was just reformatted; stop it before it overwrites what can be recovered' },
    { summary: `Drain ${NODE_NAME}, deadline 1h, system jobs stay`, action: 'nomad.node_drain', args: { node_id: nodeId, deadline: '1h', ignore_system_jobs: true }, reason: 'the node keeps losing its multipath paths; move the work off it' },
    { summary: `Mark ${NODE_NAME} INELIGIBLE`, action: 'nomad.node_eligibility', args: { node_id: nodeId, eligibility: 'ineligible' }, reason: 'nothing new on this node until the storage is checked' },
  ]
  const runs: Array<{ action: string, id: string, summary: string }> = []
  for (const { summary, ...g } of gated) {
    const r = await request({ ...g, expected: 'the change takes effect at once' })
    t.equal(r.status, 'pending_approval', `${g.action} waits for a person`)
    runs.push({ action: g.action, id: r.id as string, summary })
    // The page is measured as the approver sees it once the impact preview is in.
    await eventually(async () => {
      const refs = (await app.writ.store.get(r.id))?.run.approval?.preview?.runs ?? []
      if (refs.length === 0) return false
      for (const ref of refs) if ((await app.writ.store.get(ref.run_id))?.run.status !== 'succeeded') return false
      return true
    }, 15_000, `the impact preview of ${g.action}`)
  }

  const browser = await launchBrowser()
  t.teardown(() => browser.close())
  const signIn = async (page: Page): Promise<void> => {
    await signInWithToken(page, `${base}/ui/sign-in`, fx.tokens.operator, `${base}/ui`)
  }
  const out = artifactsDir()
  const positions: string[] = []
  for (const viewport of VIEWPORTS) {
    const context = await browser.context(viewport)
    const page = await context.newPage()
    await signIn(page)
    for (const r of runs) {
      await page.goto(`${base}/ui/runs/${r.id}`)
      t.equal(await page.locator('h1').innerText(), r.summary, `${r.action}: the title is the argument-aware summary`)
      const approve = page.getByRole('button', { name: /^Approve/ })
      const box = await approve.boundingBox()
      t.ok(box, `${r.action}: the page has an Approve button`)
      if (!box) continue
      positions.push(`${viewport.width}x${viewport.height} ${r.action}: Approve at y=${Math.round(box.y)} px (bottom ${Math.round(box.y + box.height)} px)`)
      t.ok(box.y >= 0 && box.y + box.height <= viewport.height, `${r.action} at ${viewport.width} px: Approve lies within the first ${viewport.height} px (it is at ${Math.round(box.y)} px)`)
      // Risk, node, requester, reason and time left sit above the decision bar, not under it.
      const facts = await page.locator('dl.glance').boundingBox()
      const bar = await page.locator('section.decide').boundingBox()
      t.ok(facts && bar && facts.y + facts.height <= bar.y, `${r.action} at ${viewport.width} px: the decision's facts are on the first screen, above the decision bar`)
      t.match(await page.locator('dl.glance').innerText(), /Risk[\s\S]*Node[\s\S]*Requested by[\s\S]*Reason[\s\S]*Time left[\s\S]*min left/)
      await page.screenshot({ path: join(out, `first-screen-${r.action.replace('.', '-')}-${viewport.width}.png`) })
    }
    await context.close()
  }
  t.comment(positions.join('\n'))
})

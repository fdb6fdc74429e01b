/**
 * A gated plan's impact preview: the moment a plan over seven nodes waits
 * for people, the control plane reads what its action would touch on an even
 * spread of five of them (first and last included) — never when a page is
 * opened — and the plan page shows each, so an approver sees what an
 * eligibility change on the fleet meets before the one decision. Approved,
 * the open page follows the rollout live and ends on the outcome without a
 * reload by hand.
 */
import t from 'tap'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { buildApp, parseConfig } from '@writ/control-plane'
import type { NodeRunner } from '@writ/node-runner'
import { freePort, startNatsServer } from './helpers/nats-server.js'
import { auth, makeCpFixture } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'
import { STOCK_PACKS } from './helpers/runner-harness.js'
import { allocationLike, startNomadDouble } from './doubles/nomad-api.js'
import { artifactsDir, launchBrowser, signInWithToken } from './helpers/browser.js'

t.test('a plan waiting for people previews a spread of its targets, and its page follows the rollout live', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const probe = await startNomadDouble()
  const busy = probe.ids.nodeWithAllocs
  await probe.close()
  const ids = [busy, ...Array.from({ length: 6 }, () => randomUUID())]
  const names = ids.map((_, i) => `store-${i + 1}`)
  // Every other node runs one allocation of its own: the work an eligibility change meets.
  const nomad = await startNomadDouble({ extraAllocs: ids.slice(1).map((nodeId, i) => allocationLike({ id: randomUUID(), nodeId, jobId: i === 5 ? 'victoria-metrics' : 'web', taskGroup: 'storage' })) })
  t.teardown(() => nomad.close())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const config = parseConfig({
    ...fx.config, listen: { host: '127.0.0.1', port }, public_url: base,
    packs: { dirs: [...fx.config.packs.dirs, STOCK_PACKS] },
    policy: { rules: [
      { name: 'reads', match: { max_risk: 'low' }, decision: 'allow' },
      { name: 'changes wait', match: { risk: ['medium', 'high', 'critical'] }, decision: 'require_approval', approver_groups: ['oncall'], quorum: 1, ttl: '15m' },
    ] },
  })
  const app = await buildApp(config)
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port })
  const runners: NodeRunner[] = []
  t.teardown(async () => { for (const r of runners) await r.close() })
  for (const [i, id] of ids.entries()) runners.push(await startRealRunner(fx, nats.url, id, { nodeName: names[i], packDirs: config.packs.dirs, nomadAddr: nomad.addr }))
  await eventually(() => names.every((n) => app.writ.fleet.find(n)?.online), 10_000, 'seven runners')

  const res = await fetch(`${base}/v1/plans`, {
    method: 'POST', headers: { ...auth(fx.tokens.agent), 'content-type': 'application/json' },
    body: JSON.stringify({
      action: 'nomad.node_eligibility', args: { node_id: { $target: 'id' }, eligibility: 'ineligible' }, targets: { nodes: names },
      reason: 'nothing new on the storage tier until the multipath fix is rolled out', rollout: { batch: 2 },
    }),
  })
  const asked = await res.json() as Record<string, any>
  t.equal(res.status, 202, JSON.stringify(asked))
  t.equal(asked.status, 'pending_approval')

  // The preview reads start when the plan starts waiting: five of seven, first and last included, each on its own node.
  const state = await eventually(async () => {
    const s = await app.writ.plans.store.state(asked.plan_id)
    const runs = s?.preview?.flatMap((e) => e.runs) ?? []
    if (s?.preview?.length !== 5) return undefined
    for (const r of runs) if (!['succeeded', 'failed'].includes((await app.writ.store.get(r.run_id))?.run.status ?? '')) return undefined
    return s
  }, 15_000, 'the sampled previews')
  t.same(state.preview?.map((e) => e.position), [0, 2, 3, 5, 6], 'an even spread, first and last included')
  t.same(state.preview?.map((e) => e.node), ['store-1', 'store-3', 'store-4', 'store-6', 'store-7'])
  for (const e of state.preview ?? []) {
    const run = (await app.writ.store.get(e.runs[0]?.run_id as string))?.run
    t.match(run, { action: 'nomad.node_allocs', status: 'succeeded', requester: { kind: 'system' } }, `${e.node}: a read-only preview run as the control plane`)
    t.equal(run?.node_id, ids[e.position], `${e.node}: read on the node it previews`)
  }

  const browser = await launchBrowser()
  t.teardown(() => browser.close())
  const phone = await browser.context({ width: 375, height: 812 })
  const page = await phone.newPage()
  await signInWithToken(page, asked.url as string, fx.tokens.operator, `**/ui/plans/${asked.plan_id}`)
  const preview = page.locator('#plan-preview')
  t.match(await preview.locator('h2').innerText(), 'Impact preview: 5 of the 7 gated nodes')
  t.match(await page.locator('.decide').innerText(), 'See what it touches on 5 of the nodes before you decide')
  const first = await preview.locator('details').first().innerText()
  t.match(first, /store-1 \(target 0\)[\s\S]*Allocations on the node[\s\S]*Allocations running on the node/, 'the first sampled node, open')
  await preview.locator('details').last().locator('summary').click()
  t.match(await preview.locator('details').last().innerText(), /store-7 \(target 6\)[\s\S]*victoria-metrics/, 'the last node shows the allocation the change meets')
  await page.screenshot({ path: join(artifactsDir(), 'plan-preview-375.png'), fullPage: true })

  await page.getByRole('button', { name: 'Approve the plan' }).click()
  await page.waitForURL(`**/ui/plans/${asked.plan_id}?done=1`)
  // No reload by hand: the page follows the rollout over the live socket (its refresh tag is only for pages without the script).
  await page.waitForFunction(() => /Succeeded/.test(document.querySelector('#plan-status')?.textContent ?? ''), undefined, { timeout: 30_000 })
  t.match(await page.locator('#plan-summary').innerText(), '7 succeeded')
  t.equal(await page.locator('noscript meta[http-equiv="refresh"]').count() + await page.locator('head > meta[http-equiv="refresh"]').count(), 0, 'a finished plan is not refreshed')
})

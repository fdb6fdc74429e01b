/**
 * One agent flooding the approval queue (issue #17, item 5): a burst of 1,100
 * gated requests is capped per requester with a typed 429 (over MCP a typed
 * `too_many_pending` answer) that stores nothing and is on the record, and another agent's genuine request stays in sight on
 * every surface. Where an operator raised the cap, the lists page instead of
 * cutting: `GET /v1/approvals` answers with a cursor, `writ pending` follows
 * it, the inbox pages and its badge counts every waiting run.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { buildApp, parseConfig, type AuditEvent } from '@writ/control-plane'
import { auth, startCpSuite, type CpFixture } from './helpers/cp-fixtures.js'
import { eventually, startFakeRunner } from './helpers/cp-fake-runner.js'
import { REPO_ROOT } from './helpers/runner-harness.js'
import { launchBrowser, signInWithToken } from './helpers/browser.js'
import { connectMcp } from './helpers/mcp-client.js'
import { freePort } from './helpers/nats-server.js'

type App = Awaited<ReturnType<typeof buildApp>>
const CLI = join(REPO_ROOT, 'control-plane', 'dist', 'cli.js')
const BURST = 1100

function writ(args: string[], env: Record<string, string>): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 99) : 0, stdout, stderr })
    })
  })
}

/** A control plane whose agents may send bursts (the rate limit is not what is under test), with a runner. */
async function floodable(t: { teardown(fn: () => unknown): void }, runs: Record<string, unknown> = {}): Promise<{ app: App, fx: CpFixture, url: string }> {
  const { fx } = await startCpSuite(t)
  const port = await freePort()
  const config = parseConfig({
    ...fx.config, listen: { host: '127.0.0.1', port }, public_url: `http://127.0.0.1:${port}`,
    limits: { ...fx.config.limits, rate_per_minute: 1_000_000 }, runs: { ...fx.config.runs, ...runs },
  })
  const app = await buildApp(config)
  t.teardown(() => app.close())
  const url = await app.listen({ host: '127.0.0.1', port })
  const runner = await startFakeRunner({ natsUrl: fx.config.nats.servers[0] as string, nodeId: 'host-f', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('host-f')?.online, 10_000, 'runner heartbeat')
  return { app, fx, url }
}

const gated = (app: App, token: string, reason: string) =>
  app.inject({ method: 'POST', url: '/v1/runs', headers: auth(token), payload: { action: 'testops.restart', node: 'host-f', args: {}, reason } })

async function burst(app: App, token: string, n: number): Promise<Array<{ statusCode: number, body: { id?: string, status?: string, error?: { code: string, message: string, limit?: number, pending?: number } } }>> {
  const answers = await Promise.all(Array.from({ length: n }, (_, i) => gated(app, token, `flood ${i}`)))
  return answers.map((a) => ({ statusCode: a.statusCode, body: a.json() }))
}

t.test('a burst of 1,100 gated requests from one agent: the first 20 wait, the rest are refused; another agent\'s request stays in sight', async (t) => {
  const { app, fx, url } = await floodable(t)
  const genuine = (await gated(app, fx.tokens.agent2, 'the genuine request: restart the stuck worker')).json()
  t.equal(genuine.status, 'pending_approval')

  const answers = await burst(app, fx.tokens.agent, BURST)
  const accepted = answers.filter((a) => a.statusCode === 202 && a.body.status === 'pending_approval')
  const refused = answers.filter((a) => a.statusCode === 429 && a.body.error?.code === 'WRIT_ERR_TOO_MANY_PENDING')
  t.comment(`flood figures: ${BURST} attempts by agent-1 in one burst → ${accepted.length} accepted, ${refused.length} refused (WRIT_ERR_TOO_MANY_PENDING)`)
  t.equal(accepted.length, 20, 'the default cap (runs.max_pending_per_requester: 20) lets 20 wait')
  t.equal(refused.length, BURST - 20, 'every other attempt is refused with the typed 429')
  t.match(refused[0]?.body.error, {
    message: /agent-1 already has 20 run\(s\) waiting for approval.*runs\.max_pending_per_requester: 20/, limit: 20, pending: 20,
  }, 'the refusal says the cap and how many are pending')

  t.equal(app.writ.store.list({ requester: 'agent-1' }, 10_000).length, 20, 'nothing was stored for a refused attempt')
  const audit = await app.inject({ method: 'GET', url: '/v1/audit?actor=agent-1&limit=100000', headers: auth(fx.tokens.operator) })
  const events = audit.body.trim().split('\n').map((l) => JSON.parse(l) as AuditEvent)
  t.equal(events.filter((e) => e.type === 'run.requested').length, 20, 'only the accepted runs have a request event')
  t.equal(events.filter((e) => e.type === 'request.rejected' && (e.data as { code: string }).code === 'WRIT_ERR_TOO_MANY_PENDING').length, BURST - 20, 'every refusal is on the record')

  const listed = (await app.inject({ method: 'GET', url: '/v1/approvals', headers: auth(fx.tokens.operator) })).json()
  t.ok(listed.approvals.some((a: { id: string }) => a.id === genuine.id), 'the genuine request is in GET /v1/approvals')
  t.equal(listed.total, 21, 'and the answer counts every waiting run')
  const pending = await writ(['pending'], { WRIT_URL: url, WRIT_TOKEN: fx.tokens.operator })
  t.equal(pending.code, 0, pending.stderr)
  t.match(pending.stdout, genuine.id, 'writ pending shows it')
  const inbox = await inboxIds(url, fx.tokens.operator)
  t.ok(inbox.ids.includes(genuine.id), 'the inbox shows it')
  t.equal(inbox.badge, 21, 'the badge counts every waiting run')

  const agent = await connectMcp(url, fx.tokens.agent)
  t.teardown(() => agent.close())
  const viaMcp = await agent.call('run_action', { action: 'testops.restart', node: 'host-f', reason: 'one more over MCP' })
  t.match(viaMcp, { isError: true, value: { status: 'too_many_pending', code: 'WRIT_ERR_TOO_MANY_PENDING', limit: 20, pending: 20, next: /wait for their decisions/ } }, 'over MCP the agent is told the same, and what to do')

  const one = accepted[0]?.body.id as string
  t.equal((await app.inject({ method: 'POST', url: `/v1/runs/${one}/deny`, headers: auth(fx.tokens.operator), payload: { reason: 'flooding' } })).statusCode, 200)
  t.equal((await gated(app, fx.tokens.agent, 'after a decision')).statusCode, 202, 'a decided run frees its place under the cap')
  t.equal((await gated(app, fx.tokens.agent, 'over the cap again')).statusCode, 429)
})

t.test('with the cap raised, the same flood pages instead of pushing the oldest request out of sight', async (t) => {
  const { app, fx, url } = await floodable(t, { max_pending_per_requester: 5000 })
  const genuine = (await gated(app, fx.tokens.agent2, 'the genuine request: restart the stuck worker')).json()
  const answers = await burst(app, fx.tokens.agent, BURST)
  t.equal(answers.filter((a) => a.statusCode === 202).length, BURST, 'the raised cap lets the whole burst wait')
  const all = BURST + 1

  await t.test('GET /v1/approvals answers one page, says there is more, and its cursor reaches the oldest run', async (t) => {
    const first = (await app.inject({ method: 'GET', url: '/v1/approvals', headers: auth(fx.tokens.operator) })).json()
    t.equal(first.approvals.length, 100)
    t.equal(first.total, all, 'the answer counts every waiting run')
    t.type(first.next_cursor, 'string', 'and hands a cursor to the next page')
    t.notOk(first.approvals.some((a: { id: string }) => a.id === genuine.id), 'the oldest request is not on the newest page')
    const seen = new Set<string>(first.approvals.map((a: { id: string }) => a.id))
    let cursor: string | null = first.next_cursor
    let pages = 1
    while (cursor && pages < 50) {
      const page = (await app.inject({ method: 'GET', url: `/v1/approvals?limit=1000&cursor=${cursor}`, headers: auth(fx.tokens.operator) })).json()
      for (const a of page.approvals as Array<{ id: string }>) seen.add(a.id)
      cursor = page.next_cursor
      pages++
    }
    t.equal(seen.size, all, 'following the cursor lists every waiting run once')
    t.ok(seen.has(genuine.id), 'the genuine request included')
    const bad = await app.inject({ method: 'GET', url: '/v1/approvals?cursor=%3Cscript%3E', headers: auth(fx.tokens.operator) })
    t.match(bad.json(), { error: { code: 'WRIT_ERR_VALIDATION' } }, 'a cursor that is not a run id is refused')
  })

  await t.test('writ pending follows the pages', async (t) => {
    const res = await writ(['pending'], { WRIT_URL: url, WRIT_TOKEN: fx.tokens.operator })
    t.equal(res.code, 0, res.stderr)
    t.match(res.stdout, genuine.id, 'the oldest request is listed')
    const json = await writ(['pending', '--json'], { WRIT_URL: url, WRIT_TOKEN: fx.tokens.operator })
    t.equal((JSON.parse(json.stdout) as unknown[]).length, all, '--json holds every waiting run')
  })

  await t.test('the inbox pages, and its badge counts every waiting run', async (t) => {
    const inbox = await inboxIds(url, fx.tokens.operator)
    t.equal(inbox.badge, all, 'the badge is exact, not the page\'s count')
    t.ok(inbox.pages > 1, 'the inbox paged')
    t.equal(new Set(inbox.ids).size, all, 'its pages show every waiting run once')
    t.ok(inbox.ids.includes(genuine.id), 'the genuine request included')
  })
})

/** Signs in to the portal in a real browser, reads the badge, and walks the inbox's pages. */
async function inboxIds(url: string, token: string): Promise<{ badge: number, ids: string[], pages: number }> {
  const browser = await launchBrowser()
  try {
    const page = await (await browser.context()).newPage()
    await signInWithToken(page, `${url}/ui/sign-in`, token, '**/ui')
    const badge = Number(await page.locator('nav .count').innerText())
    const ids: string[] = []
    let pages = 0
    for (;;) {
      pages++
      const hrefs = await page.locator('main ul.cards h2 a').evaluateAll((as) => as.map((a) => a.getAttribute('href') ?? ''))
      ids.push(...hrefs.map((h) => h.replace('/ui/runs/', '')))
      const older = page.getByRole('link', { name: 'Older requests' })
      if (pages >= 50 || await older.count() === 0) break
      const href = await older.getAttribute('href') ?? ''
      await Promise.all([page.waitForURL((u) => `${u.pathname}${u.search}` === href), older.click()])
    }
    return { badge, ids, pages }
  } finally { await browser.close() }
}

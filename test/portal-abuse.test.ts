/**
 * The portal against people and programs that should not get their way: a
 * link unfurler's GET, forms without (or with someone else's) CSRF token, the
 * requester, an outsider, a stale page, a second approval, a deny then an
 * approve, a late decision. Each is refused with a clear typed reason, each
 * refused POST is on the record, and nothing is dispatched.
 */
import t from 'tap'
import { buildApp, parseConfig, type AuditEvent } from '@writ/control-plane'
import { auth, startCpSuite } from './helpers/cp-fixtures.js'
import { eventually, startFakeRunner } from './helpers/cp-fake-runner.js'

type App = Awaited<ReturnType<typeof buildApp>>

/** A browser-like session against `app.inject`: keeps the cookie, reads the form's CSRF token and binding. */
class Visitor {
  cookie = ''
  constructor(private readonly app: App, private readonly userAgent = 'Mozilla/5.0 (iPhone) writ-test') {}

  async get(url: string) {
    const res = await this.app.inject({ method: 'GET', url, headers: { 'user-agent': this.userAgent, ...(this.cookie ? { cookie: this.cookie } : {}) } })
    this.keep(res.headers['set-cookie'])
    return res
  }

  async post(url: string, form: Record<string, string>) {
    const res = await this.app.inject({
      method: 'POST', url, payload: new URLSearchParams(form).toString(),
      headers: { 'user-agent': this.userAgent, 'content-type': 'application/x-www-form-urlencoded', ...(this.cookie ? { cookie: this.cookie } : {}) },
    })
    this.keep(res.headers['set-cookie'])
    return res
  }

  private keep(set: string | string[] | undefined): void {
    const first = Array.isArray(set) ? set[0] : set
    if (first) this.cookie = first.split(';')[0] as string
  }

  static field(html: string, name: string): string {
    return new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1] ?? ''
  }

  async signIn(token: string): Promise<void> {
    const page = await this.get('/ui/sign-in')
    const res = await this.post('/ui/sign-in', { _csrf: Visitor.field(page.body, '_csrf'), token, next: '/ui' })
    if (res.statusCode !== 303) throw new Error(`sign-in failed: ${res.statusCode} ${res.body.slice(0, 300)}`)
  }
}

async function setup(t: { teardown(fn: () => unknown): void }, ttl = '15m') {
  const { fx } = await startCpSuite(t)
  const config = parseConfig({ ...fx.config, policy: { rules: [
    { name: 'restart-needs-a-person', match: { actions: ['testops.restart'] }, decision: 'require_approval', approver_groups: ['oncall'], quorum: 1, ttl },
    { name: 'agents', match: { kinds: ['agent'] }, decision: 'allow' },
  ] } })
  const app = await buildApp(config)
  t.teardown(() => app.close())
  const runner = await startFakeRunner({ natsUrl: fx.config.nats.servers[0] as string, nodeId: 'host-p', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('host-p')?.online, 10_000, 'heartbeat')
  const gated = async (): Promise<string> => {
    const res = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.restart', node: 'host-p', args: {}, reason: 'restart it' } })
    return res.json().id as string
  }
  const events = async (runId: string): Promise<AuditEvent[]> => {
    const res = await app.inject({ method: 'GET', url: `/v1/audit?run_id=${runId}`, headers: auth(fx.tokens.operator) })
    return res.body.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditEvent)
  }
  const status = async (runId: string): Promise<string> => (await app.writ.store.get(runId))!.run.status
  return { fx, app, runner, gated, events, status }
}

const code = (html: string): string | undefined => /<strong>(WRIT_ERR_[A-Z_]+)<\/strong>/.exec(html)?.[1]

t.test('opening the link never decides anything, whoever opens it', async (t) => {
  const { fx, app, gated, events, status, runner } = await setup(t)
  const id = await gated()
  const before = (await events(id)).length
  for (const ua of ['Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)', 'curl/8.0', 'Mozilla/5.0']) {
    const res = await new Visitor(app, ua).get(`/ui/runs/${id}`)
    t.equal(res.statusCode, 303, `${ua}: a signed-out GET is sent to sign in`)
    t.match(res.headers.location, `/ui/sign-in?next=%2Fui%2Fruns%2F${id}`)
  }
  const signedIn = new Visitor(app, 'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)')
  await signedIn.signIn(fx.tokens.operator)
  for (const url of [`/ui/runs/${id}`, `/ui/runs/${id}/approve`, '/ui', '/ui/audit', '/ui/runs', '/ui/nodes', `/ui/runs/${id}?approve=1`]) {
    const res = await signedIn.get(url)
    t.ok(res.statusCode === 200 || res.statusCode === 404, `GET ${url} renders (${res.statusCode})`)
  }
  const badFilter = await signedIn.get('/ui/runs?status=bogus')
  t.equal(badFilter.statusCode, 400, 'a filter that makes no sense is refused, not silently dropped')
  t.equal(code(badFilter.body), 'WRIT_ERR_VALIDATION')
  t.equal(await status(id), 'pending_approval', 'still waiting')
  t.equal((await events(id)).length, before, 'no audit event from any GET')
  t.equal(runner.writs.length, 0, 'nothing dispatched')
})

t.test('decision forms refuse what they must, each attempt audited, nothing dispatched', async (t) => {
  const { fx, app, gated, events, status, runner } = await setup(t)
  const ops1 = new Visitor(app)
  await ops1.signIn(fx.tokens.operator)
  const ops2 = new Visitor(app)
  await ops2.signIn(fx.tokens.operator2)
  const id = await gated()
  const page = await ops1.get(`/ui/runs/${id}`)
  const csrf1 = Visitor.field(page.body, '_csrf')
  const binding = Visitor.field(page.body, 'binding')
  t.match(binding, /^[0-9a-f]{64}$/, 'the form carries the binding digest')
  const page2 = await ops2.get(`/ui/runs/${id}`)
  const csrf2 = Visitor.field(page2.body, '_csrf')

  const noToken = await ops1.post(`/ui/runs/${id}/approve`, { binding })
  t.equal(noToken.statusCode, 403)
  t.equal(code(noToken.body), 'WRIT_ERR_CSRF', 'a POST without a CSRF token is refused')
  const othersToken = await ops1.post(`/ui/runs/${id}/approve`, { _csrf: csrf2, binding })
  t.equal(othersToken.statusCode, 403)
  t.equal(code(othersToken.body), 'WRIT_ERR_CSRF', 'another operator\'s CSRF token is refused')
  const wrongBinding = await ops1.post(`/ui/runs/${id}/approve`, { _csrf: csrf1, binding: 'a'.repeat(64) })
  t.equal(wrongBinding.statusCode, 409)
  t.equal(code(wrongBinding.body), 'WRIT_ERR_BINDING_MISMATCH', 'a decision on another binding is refused')

  const requester = new Visitor(app)
  await requester.signIn(fx.tokens.agentsOperator)
  const rp = await requester.get(`/ui/runs/${id}`)
  t.match(rp.body, 'You requested this run; somebody else has to decide it.', 'the requester sees why there is no form')
  const selfApprove = await requester.post(`/ui/runs/${id}/approve`, { _csrf: Visitor.field(rp.body, '_csrf'), binding })
  t.equal(code(selfApprove.body), 'WRIT_ERR_SELF_APPROVAL', 'the requester (as an operator) cannot approve')

  const outsider = new Visitor(app)
  await outsider.signIn(fx.tokens.outsider)
  const op = await outsider.get(`/ui/runs/${id}`)
  t.match(op.body, 'you are not in those groups')
  const outside = await outsider.post(`/ui/runs/${id}/approve`, { _csrf: Visitor.field(op.body, '_csrf'), binding })
  t.equal(code(outside.body), 'WRIT_ERR_NOT_AN_APPROVER', 'an operator outside the approver groups is refused')

  t.equal(await status(id), 'pending_approval')
  t.equal(runner.writs.length, 0, 'nothing dispatched by any of them')
  const rejected = (await events(id)).filter((e) => e.type === 'request.rejected').map((e) => `${e.actor?.id}:${(e.data as { code: string }).code}`)
  t.same(rejected.sort(), ['dev-1:WRIT_ERR_NOT_AN_APPROVER', 'ops-1:WRIT_ERR_BINDING_MISMATCH', 'ops-1:WRIT_ERR_CSRF', 'ops-1:WRIT_ERR_CSRF', 'pat-ops:WRIT_ERR_SELF_APPROVAL'].sort(), 'every refused attempt is on the record, with who made it')

  const approved = await ops1.post(`/ui/runs/${id}/approve`, { _csrf: csrf1, binding })
  t.equal(approved.statusCode, 303, 'the real approval goes through')
  await eventually(() => runner.writs.length === 1, 5000, 'one writ')
  t.match(runner.writs[0]?.writ.approvals, [{ by: 'ops-1', binding }], 'the writ carries the approval and its binding')
  const second = await ops2.post(`/ui/runs/${id}/approve`, { _csrf: csrf2, binding })
  t.equal(second.statusCode, 409)
  t.equal(code(second.body), 'WRIT_ERR_ALREADY_DECIDED', 'a second approval is told it is decided')
  t.equal(runner.writs.length, 1, 'still one dispatch')

  const denied = await gated()
  const dp = await ops2.get(`/ui/runs/${denied}`)
  const deny = await ops2.post(`/ui/runs/${denied}/deny`, { _csrf: Visitor.field(dp.body, '_csrf'), binding: Visitor.field(dp.body, 'binding'), reason: 'not now' })
  t.equal(deny.statusCode, 303)
  const ap = await ops1.get(`/ui/runs/${denied}`)
  t.notMatch(ap.body, 'class="approve"', 'a denied run shows no approve form')
  const late = await ops1.post(`/ui/runs/${denied}/approve`, { _csrf: Visitor.field(ap.body, '_csrf'), binding: Visitor.field(dp.body, 'binding') })
  t.equal(code(late.body), 'WRIT_ERR_ALREADY_DECIDED', 'a deny followed by an approve is refused')
  t.equal(await status(denied), 'denied')
  t.equal(runner.writs.length, 1)
})

t.test('a comment or deny reason with control or bidi characters is refused on the page, audited, and decides nothing', async (t) => {
  const { fx, app, gated, events, status, runner } = await setup(t)
  const ops1 = new Visitor(app)
  await ops1.signIn(fx.tokens.operator)
  const id = await gated()
  const page = await ops1.get(`/ui/runs/${id}`)
  const form = { _csrf: Visitor.field(page.body, '_csrf'), binding: Visitor.field(page.body, 'binding') }
  const approve = await ops1.post(`/ui/runs/${id}/approve`, { ...form, comment: 'looks fine \u202e' })
  t.equal(approve.statusCode, 400)
  t.equal(code(approve.body), 'WRIT_ERR_UNSAFE_TEXT', 'a bidi override in the comment is refused')
  t.match(approve.body, /comment holds U\+202E RIGHT-TO-LEFT OVERRIDE at character 11/, 'the page names the field and the code point')
  const deny = await ops1.post(`/ui/runs/${id}/deny`, { ...form, reason: 'no\u0085reboot' })
  t.equal(code(deny.body), 'WRIT_ERR_UNSAFE_TEXT', 'a C1 newline in the deny reason is refused')
  t.match(deny.body, /reason holds U\+0085 NEXT LINE/)
  // The error stands next to the field it is about, in the deny form, which opens to show it.
  t.match(deny.body, /<details class="deny" open>[\s\S]*<input id="reason"[^>]*aria-invalid="true" aria-describedby="reason-error">\s*<p class="error field-error" id="reason-error" role="alert"><strong>WRIT_ERR_UNSAFE_TEXT<\/strong>: reason holds U\+0085/)
  t.match(approve.body, /<input id="comment"[^>]*aria-invalid="true"[^>]*>\s*<button[^>]*>Approve<\/button>\s*<p class="error field-error" id="comment-error"/, 'and the comment\'s beside the comment')
  t.equal(await status(id), 'pending_approval', 'the run still waits')
  t.equal(runner.writs.length, 0, 'nothing dispatched')
  const rejected = (await events(id)).filter((e) => e.type === 'request.rejected').map((e) => (e.data as { code: string }).code)
  t.same(rejected, ['WRIT_ERR_UNSAFE_TEXT', 'WRIT_ERR_UNSAFE_TEXT'], 'both attempts are on the record')
})

t.test('an approval after the window closed is refused and the run expires', async (t) => {
  const { fx, app, gated, status, runner, events } = await setup(t, '2s')
  const ops1 = new Visitor(app)
  await ops1.signIn(fx.tokens.operator)
  const id = await gated()
  const page = await ops1.get(`/ui/runs/${id}`)
  const expiresAt = Date.parse((await app.writ.store.get(id))!.run.approval!.expires_at)
  await eventually(() => Date.now() > expiresAt, 5000, 'the window to close')
  const late = await ops1.post(`/ui/runs/${id}/approve`, { _csrf: Visitor.field(page.body, '_csrf'), binding: Visitor.field(page.body, 'binding') })
  t.ok(['WRIT_ERR_APPROVAL_EXPIRED', 'WRIT_ERR_ALREADY_DECIDED'].includes(code(late.body) ?? ''), `refused after expiry (${code(late.body)})`)
  t.equal(await status(id), 'expired')
  t.equal(runner.writs.length, 0)
  t.ok((await events(id)).some((e) => e.type === 'run.expired'), 'the expiry is on the record')
})

t.test('sign-in: a one-time link works once; an agent token is not an operator; bad tokens are refused', async (t) => {
  const { fx, app } = await setup(t)
  const code1 = await app.portal.links.mint('ops-1')
  const v = new Visitor(app)
  const page = await v.get(`/ui/sign-in/link/${code1}`)
  t.match(page.body, 'signs you in as <strong>ops-1</strong>')
  t.equal((await v.get('/ui')).statusCode, 303, 'opening the link did not sign in')
  const ok = await v.post('/ui/sign-in/link', { _csrf: Visitor.field(page.body, '_csrf'), code: code1 })
  t.equal(ok.statusCode, 303)
  t.equal((await v.get('/ui')).statusCode, 200, 'the POST signed in')
  const again = new Visitor(app)
  const p2 = await again.get(`/ui/sign-in/link/${code1}`)
  t.match(p2.body, 'was used already')
  const agent = new Visitor(app)
  const sp = await agent.get('/ui/sign-in')
  const refused = await agent.post('/ui/sign-in', { _csrf: Visitor.field(sp.body, '_csrf'), token: fx.tokens.agent })
  t.equal(refused.statusCode, 401)
  t.match(refused.body, 'belongs to an agent')
  const bad = await agent.post('/ui/sign-in', { _csrf: Visitor.field(refused.body, '_csrf'), token: 'nope' })
  t.match(bad.body, 'That token is not valid.')
  t.notMatch(bad.body, 'nope', 'the token is not echoed')
  const redirect = await agent.post('/ui/sign-in', { _csrf: Visitor.field(bad.body, '_csrf'), token: fx.tokens.operator, next: 'https://evil.example/ui' })
  t.equal(redirect.headers.location, '/ui', 'next never leaves the portal')
})


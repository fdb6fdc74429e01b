/**
 * Break-glass over REST, end to end with a real node-runner process: an
 * approver runs a gated action alone where policy allows it; it dispatches at
 * once, Slack is told it was break-glass, the audit trail holds it, and a
 * review item waits for another approver. Until one acknowledges it, the
 * same operator's next break-glass is refused. Every bad attempt is a typed
 * error that dispatches nothing.
 *
 * Real: NATS, the control plane, the node-runner (its own process), a local
 * Slack webhook. Writes test/artifacts/break-glass-transcript.md.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildApp, type AuditEvent } from '@writ/control-plane'
import { startNatsServer } from './helpers/nats-server.js'
import { auth, makeCpFixture } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRunnerProcess } from './helpers/runner-process.js'
import { startSlackReceiver } from './helpers/slack-receiver.js'
import { artifactsDir } from './helpers/browser.js'
import { REPO_ROOT } from './helpers/runner-harness.js'

const NODE = 'bg-host-1'

t.test('break-glass: alone, at once, broadcast, audited, reviewed', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const slack = await startSlackReceiver()
  t.teardown(() => slack.close())
  const fx = makeCpFixture(nats.url, {
    notify: { slack: { webhook_url: slack.url } },
    policy: {
      rules: [
        { name: 'deploys-need-two', match: { actions: ['testops.deploy'] }, decision: 'require_approval', approver_groups: ['oncall'], quorum: 2, ttl: '15m', break_glass: true },
        { name: 'high-risk-needs-a-person', match: { risk: ['high', 'critical'] }, decision: 'require_approval', approver_groups: ['oncall'], quorum: 1, ttl: '15m' },
        { name: 'agents-low-risk', match: { groups: ['sre-agents'], max_risk: 'medium' }, decision: 'allow' },
      ],
    },
  })
  t.teardown(() => fx.cleanup())
  const app = await buildApp(fx.config)
  t.teardown(() => app.close())
  const runner = await startRunnerProcess(fx, nats.url, NODE, { packDirs: fx.config.packs.dirs })
  t.teardown(() => runner.stop())
  await eventually(() => app.writ.fleet.find(NODE)?.online, 10_000, 'runner heartbeat')

  const transcript: string[] = [`# Break-glass with its review item — ${new Date().toISOString()}`, '']
  const say = (line: string): void => { transcript.push(line); t.comment(line) }
  t.teardown(() => writeFileSync(join(artifactsDir(), 'break-glass-transcript.md'), `${transcript.join('\n')}\n`))
  const ask = async (action: string, args: Record<string, unknown> = {}) => {
    const res = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action, node: NODE, args, reason: 'release 4.2 fixes the outage' } })
    t.equal(res.statusCode, 202, res.body)
    return res.json() as { id: string, status: string }
  }
  const breakGlass = (token: string, id: string, payload: Record<string, unknown> = { reason: 'second approver unreachable; outage ongoing' }) =>
    app.inject({ method: 'POST', url: `/v1/runs/${id}/break-glass`, headers: auth(token), payload })
  const status = async (id: string, wait = 0) => (await app.inject({ method: 'GET', url: `/v1/runs/${id}${wait ? `?wait=${wait}` : ''}`, headers: auth(fx.tokens.operator) })).json()
  const code = (res: { json(): any }) => res.json().error?.code as string | undefined

  const first = await ask('testops.deploy')
  say(`1. agent-1 asks testops.deploy on ${NODE} → ${first.status} (policy rule deploys-need-two: 2 approvals from oncall, break_glass: true)`)

  t.test('bad attempts are typed errors and change nothing', async (t) => {
    const unlock = await ask('testops.unlock', { vault: 'prod', pin: '1234' })
    const cases: Array<[string, Awaited<ReturnType<typeof breakGlass>>, number, string]> = [
      ['an agent', await breakGlass(fx.tokens.agent, first.id), 403, 'WRIT_ERR_FORBIDDEN'],
      ['an operator outside the approver groups', await breakGlass(fx.tokens.outsider, first.id), 403, 'WRIT_ERR_NOT_AN_APPROVER'],
      ['the requester\'s own person', await breakGlass(fx.tokens.agentsOperator, first.id), 403, 'WRIT_ERR_SELF_APPROVAL'],
      ['no reason', await breakGlass(fx.tokens.operator, first.id, {}), 400, 'WRIT_ERR_VALIDATION'],
      ['a reason with a line break', await breakGlass(fx.tokens.operator, first.id, { reason: 'one\ntwo' }), 400, 'WRIT_ERR_UNSAFE_TEXT'],
      ['a stale binding', await breakGlass(fx.tokens.operator, first.id, { reason: 'outage', binding: 'a'.repeat(64) }), 409, 'WRIT_ERR_BINDING_MISMATCH'],
      ['a rule without break_glass', await breakGlass(fx.tokens.operator, unlock.id), 403, 'WRIT_ERR_BREAK_GLASS_NOT_ALLOWED'],
    ]
    for (const [who, res, http, expected] of cases) {
      t.equal(res.statusCode, http, `${who}: ${res.body}`)
      t.equal(code(res), expected, who)
    }
    say(`2. refused, nothing dispatched: ${cases.map(([who, res]) => `${who} → ${res.statusCode} ${code(res)}`).join('; ')}`)
    const notAllowed = cases.at(-1)?.[1]
    say(`   e.g. ${notAllowed?.json().error.message}`)
    t.equal((await status(first.id)).status, 'pending_approval')
    t.equal((await status(unlock.id)).status, 'pending_approval')
    const reviews = await app.inject({ method: 'GET', url: '/v1/reviews', headers: auth(fx.tokens.operator) })
    t.same(reviews.json(), { reviews: [] }, 'no review item was left')
  })

  t.test('ops-1 approves, the second approver is unreachable: ops-1 breaks the glass', async (t) => {
    const approve = await app.inject({ method: 'POST', url: `/v1/runs/${first.id}/approve`, headers: auth(fx.tokens.operator), payload: {} })
    t.equal(approve.json().status, 'pending_approval', '1 of 2')
    const res = await breakGlass(fx.tokens.operator, first.id)
    t.equal(res.statusCode, 200, res.body)
    const body = res.json()
    t.match(body.review, { run_id: first.id, by: 'ops-1', reason: 'second approver unreachable; outage ongoing', approver_groups: ['oncall'] })
    t.notOk(body.review.acknowledged_at)
    const done = await status(first.id, 10)
    t.equal(done.status, 'succeeded', done.status_reason)
    t.match(done.approval, { break_glass: { by: 'ops-1', review_id: body.review.id }, approvals: [{ by: 'ops-1', break_glass: true }] })
    say(`3. ops-1 approves (1 of 2), then POST /v1/runs/${first.id}/break-glass → ${res.statusCode}, review ${body.review.id}; the runner accepts the single break-glass approval → ${done.status}`)

    const audit = await app.inject({ method: 'GET', url: `/v1/audit?run_id=${first.id}`, headers: auth(fx.tokens.operator) })
    const events = audit.body.trim().split('\n').map((l) => JSON.parse(l) as AuditEvent)
    const bg = events.find((e) => e.type === 'run.break_glass')
    t.match(bg, { actor: { id: 'ops-1' }, data: { reason: 'second approver unreachable; outage ongoing', review_id: body.review.id, rule: 'deploys-need-two', approvals_before: 1, quorum: 2 } })
    const sent = events.find((e) => e.type === 'run.dispatched')
    t.match(sent?.data, { approvals: [{ by: 'ops-1', break_glass: true }] }, 'the writ carried one break-glass approval')
    say(`4. audit: ${events.map((e) => e.type).join(' → ')}`)

    await eventually(() => slack.messages.some((m) => String(m.text).includes('BREAK-GLASS')), 10_000, 'the break-glass broadcast')
    const notice = slack.messages.find((m) => String(m.text).includes('BREAK-GLASS'))
    t.match(notice?.text, /BREAK-GLASS by ops-1, alone \(quorum 2\)/)
    say(`5. Slack: ${String(notice?.text)}`)
  })

  t.test('until the review is acknowledged, ops-1 cannot break the glass again', async (t) => {
    const second = await ask('testops.deploy')
    const refused = await breakGlass(fx.tokens.operator, second.id)
    t.equal(refused.statusCode, 409, refused.body)
    t.equal(code(refused), 'WRIT_ERR_BREAK_GLASS_UNREVIEWED')
    t.equal((await status(second.id)).status, 'pending_approval', 'nothing was dispatched')
    say(`6. ops-1 breaks the glass on ${second.id} → ${refused.statusCode} ${code(refused)}: ${refused.json().error.message}`)

    const open = (await app.inject({ method: 'GET', url: '/v1/reviews?open=true', headers: auth(fx.tokens.operator2) })).json().reviews as Array<{ id: string, run_id: string }>
    t.equal(open.length, 1)
    const reviewId = open[0]?.id as string
    const own = await app.inject({ method: 'POST', url: `/v1/reviews/${reviewId}/ack`, headers: auth(fx.tokens.operator), payload: {} })
    t.equal(code(own), 'WRIT_ERR_REVIEW_FORBIDDEN', 'nobody acknowledges their own break-glass')
    const outsider = await app.inject({ method: 'POST', url: `/v1/reviews/${reviewId}/ack`, headers: auth(fx.tokens.outsider), payload: {} })
    t.equal(code(outsider), 'WRIT_ERR_REVIEW_FORBIDDEN', 'only the action\'s approvers acknowledge')
    const unknown = await app.inject({ method: 'POST', url: '/v1/reviews/v000000000deadbeef/ack', headers: auth(fx.tokens.operator2), payload: {} })
    t.equal(code(unknown), 'WRIT_ERR_REVIEW_NOT_FOUND')
    const ack = await app.inject({ method: 'POST', url: `/v1/reviews/${reviewId}/ack`, headers: auth(fx.tokens.operator2), payload: { comment: 'checked the deploy log; fine' } })
    t.equal(ack.statusCode, 200, ack.body)
    t.match(ack.json(), { id: reviewId, acknowledged_by: 'ops-2', comment: 'checked the deploy log; fine' })
    const again = await app.inject({ method: 'POST', url: `/v1/reviews/${reviewId}/ack`, headers: auth(fx.tokens.operator3), payload: {} })
    t.equal(code(again), 'WRIT_ERR_REVIEW_ACKNOWLEDGED')
    say(`7. ops-1 acknowledging its own → ${code(own)}; dev-1 → ${code(outsider)}; ops-2 acknowledges ${reviewId} → ${ack.statusCode}; again by ops-3 → ${code(again)}`)

    const now = await breakGlass(fx.tokens.operator, second.id)
    t.equal(now.statusCode, 200, now.body)
    t.equal((await status(second.id, 10)).status, 'succeeded')
    say(`8. ops-1 breaks the glass on ${second.id} again → ${now.statusCode}, ${(await status(second.id)).status}; new review ${now.json().review.id}`)
  })

  t.test('two break-glass attempts by one operator at the same moment: exactly one runs', async (t) => {
    const [a, b] = [await ask('testops.deploy'), await ask('testops.deploy')]
    const answers = await Promise.all([breakGlass(fx.tokens.operator2, a.id), breakGlass(fx.tokens.operator2, b.id)])
    t.same(answers.map((r) => r.statusCode).sort(), [200, 409], answers.map((r) => r.body).join('\n'))
    const statuses = await Promise.all([a.id, b.id].map(async (id) => (await status(id, 10)).status))
    t.same(statuses.sort(), ['pending_approval', 'succeeded'])
    say(`9. ops-2 breaks the glass on two runs at once → ${answers.map((r) => r.statusCode).join(', ')}; runs ${statuses.join(', ')}`)
  })

  t.test('from a terminal: writ break-glass, writ reviews, writ ack', async (t) => {
    const url = await app.listen({ host: '127.0.0.1', port: 0 })
    const writ = (token: string, ...args: string[]) => new Promise<{ code: number, stdout: string, stderr: string }>((resolve) => {
      execFile(process.execPath, [join(REPO_ROOT, 'control-plane', 'dist', 'cli.js'), ...args], { env: { ...process.env, WRIT_URL: url, WRIT_TOKEN: token } },
        (err, stdout, stderr) => resolve({ code: err ? Number(err.code) : 0, stdout, stderr }))
    })
    const run = await ask('testops.deploy')
    const broke = await writ(fx.tokens.operator3, 'break-glass', run.id, '--reason', 'pager storm; nobody else answers')
    t.equal(broke.code, 0, broke.stderr)
    t.match(broke.stderr, `this runs testops.deploy on ${NODE} alone, without its 2 approval(s)`)
    const reviewId = /review (v[0-9a-z]+) waits for another approver/.exec(broke.stdout)?.[1] as string
    t.ok(reviewId, broke.stdout)
    const open = await writ(fx.tokens.operator, 'reviews', '--open')
    t.match(open.stdout, new RegExp(`${reviewId}  testops\\.deploy on ${NODE} by ops-3 .* OPEN: waiting for another approver`))
    const ack = await writ(fx.tokens.operator, 'ack', reviewId, '--comment', 'seen')
    t.equal(ack.code, 0, ack.stderr)
    t.match(ack.stdout, `review ${reviewId} (run ${run.id}, break-glass by ops-3): acknowledged by ops-1`)
    const refused = await writ(fx.tokens.outsider, 'break-glass', run.id, '--reason', 'me too')
    t.equal(refused.code, 2)
    say(`10. $ writ break-glass ${run.id} --reason 'pager storm; nobody else answers' (ops-3) → ${broke.stdout.trim().split('\n').join(' / ')}`)
    say(`11. $ writ reviews --open → ${open.stdout.trim().split('\n')[0]}; $ writ ack ${reviewId} (ops-1) → ${ack.stdout.trim()}`)
  })
})

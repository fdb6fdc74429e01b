/**
 * Slack is told about runs that wait for people, and about what became of
 * them; a Slack outage or rate limit is retried as Slack asks and never
 * blocks, loses or delays a run.
 */
import t from 'tap'
import { auth } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { reviewLink } from './helpers/slack-receiver.js'
import { startNotifySuite } from './helpers/notify-suite.js'

async function setup(t: { teardown(fn: () => unknown): void }, slack: Record<string, unknown> = {}) {
  const suite = await startNotifySuite(t, { slack })
  /** writ_slack_post_failures_total and writ_slack_notices_dropped_total by reason, as /metrics says now. */
  const counted = async (name: 'writ_slack_post_failures_total' | 'writ_slack_notices_dropped_total'): Promise<Record<string, number>> => {
    const body = (await suite.app.inject({ method: 'GET', url: '/metrics' })).body
    return Object.fromEntries([...body.matchAll(new RegExp(`^${name}\\{reason="([a-z_]+)"\\} (\\d+)$`, 'gm'))].map((m) => [m[1], Number(m[2])]))
  }
  return { ...suite, counted }
}

t.test('500s and a 429 are retried, the 429 as long as Retry-After says; the run never waits', async (t) => {
  const { fx, app, slack, runner, gated, counted, logs } = await setup(t)
  slack.script.push({ status: 500 }, { status: 503 }, { status: 429, retryAfter: 1 })
  const run = await gated()
  t.equal(run.status, 'pending_approval', 'the request was answered while Slack was failing')
  const approved = await app.inject({ method: 'POST', url: `/v1/runs/${run.id}/approve`, headers: auth(fx.tokens.operator), payload: {} })
  t.equal(approved.statusCode, 200, 'and can be decided before Slack has heard of it')
  await eventually(() => runner.writs.length === 1, 5000, 'dispatch')
  t.equal(slack.messages.length, 0, 'the run was dispatched while Slack still had nothing')

  await eventually(() => slack.messages.length === 2, 10_000, 'both messages delivered')
  t.same(slack.attempts.map((a) => a.status), [500, 503, 429, 200, 200], 'retried after each failure, then the follow-up')
  const [, , limited, next] = slack.attempts
  t.ok((next?.at ?? 0) - (limited?.at ?? 0) >= 950, `waited the 1 s Retry-After (${(next?.at ?? 0) - (limited?.at ?? 0)} ms)`)
  const [request, outcome] = slack.messages
  t.match(request, { unfurl_links: false, unfurl_media: false, text: /^Approval needed: testops\.restart on host-s \(high risk\), requested by agent-1/ })
  t.equal(reviewLink(request as Record<string, any>), `https://writ.example.internal/ui/runs/${run.id}`, 'the button links to the run page under the public URL')
  t.notOk(JSON.stringify(request).includes('"action_id":"approve'), 'there is no approve button in Slack')
  t.match(outcome?.text, new RegExp(`run ${run.id}\\) — Approved by ops-1`))
  t.notMatch(logs(), /services\/T000/, 'the webhook URL (a secret) is never logged')
  t.match(logs(), /Slack answered with a server error; retrying/)
  t.same(await counted('writ_slack_post_failures_total'), { rate_limited: 1, server_error: 2, unreachable: 0, refused: 0 }, 'each failed post is counted by reason')
  t.same(await counted('writ_slack_notices_dropped_total'), { refused: 0, max_attempts: 0, outbox_full: 0, outbox_unavailable: 0, malformed: 0 }, 'nothing was dropped')
})

t.test('a Slack that never answers costs nothing but its messages', async (t) => {
  const { fx, app, slack, runner, gated, counted, logs } = await setup(t, { max_attempts: 2 })
  slack.script.push(...Array.from({ length: 10 }, () => ({ status: 500 })))
  const run = await gated()
  const approved = await app.inject({ method: 'POST', url: `/v1/runs/${run.id}/approve`, headers: auth(fx.tokens.operator), payload: {} })
  t.equal(approved.statusCode, 200)
  await eventually(() => runner.writs.length === 1, 5000, 'dispatch')
  await eventually(() => /given up after its last attempt/.test(logs()), 10_000, 'the give-up log line')
  t.equal(slack.messages.length, 0)
  await eventually(async () => (await counted('writ_slack_notices_dropped_total')).max_attempts === 2, 10_000, 'both notices counted as dropped')
  t.pass('the request and its outcome are counted as dropped after their last attempt (WritSlackNoticesDropped)')
  t.equal((await counted('writ_slack_post_failures_total')).server_error, 4, 'two attempts each, all 500s (WritSlackPostsFailing)')
})

t.test('a message Slack refuses (4xx) is dropped at once and counted as refused', async (t) => {
  const { slack, gated, counted, logs } = await setup(t)
  slack.script.push({ status: 404 })
  await gated()
  await eventually(() => /Slack refused the message/.test(logs()), 10_000, 'the refusal log line')
  t.equal(slack.attempts.length, 1, 'not retried: a revoked webhook stays revoked')
  t.same(await counted('writ_slack_notices_dropped_total'), { refused: 1, max_attempts: 0, outbox_full: 0, outbox_unavailable: 0, malformed: 0 })
  t.equal((await counted('writ_slack_post_failures_total')).refused, 1)
})

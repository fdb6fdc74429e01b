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

const setup = (t: { teardown(fn: () => unknown): void }, slack: Record<string, unknown> = {}) => startNotifySuite(t, { slack })

t.test('500s and a 429 are retried, the 429 as long as Retry-After says; the run never waits', async (t) => {
  const { fx, app, slack, runner, gated, logs } = await setup(t)
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
})

t.test('a Slack that never answers costs nothing but its messages', async (t) => {
  const { fx, app, slack, runner, gated, logs } = await setup(t, { max_attempts: 2 })
  slack.script.push(...Array.from({ length: 10 }, () => ({ status: 500 })))
  const run = await gated()
  const approved = await app.inject({ method: 'POST', url: `/v1/runs/${run.id}/approve`, headers: auth(fx.tokens.operator), payload: {} })
  t.equal(approved.statusCode, 200)
  await eventually(() => runner.writs.length === 1, 5000, 'dispatch')
  await eventually(() => /given up after its last attempt/.test(logs()), 10_000, 'the give-up log line')
  t.equal(slack.messages.length, 0)
})

/**
 * What an agent (or a runner, or an approver) wrote reaches Slack as text a
 * person reads, never as formatting: no mention pings, no `*bold*` claim, no
 * fake label line, no link. Asserted on the body Slack received.
 */
import t from 'tap'
import { auth } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startNotifySuite, textObjects } from './helpers/notify-suite.js'

/** Text that formats, mentions or links in Slack mrkdwn (and in notifications, which show the fallback text). */
const HOSTILE = [
  '@here', '@channel', '<!channel>', '<@U123>', '|the runbook>', '*URGENT', '*Approved by*', '_security-lead_', '~struck~', '`code`', '*PROD*', 'evil.example',
]

t.test('agent, runner and approver text is plain text in the message, with no mention, formatting or link', async (t) => {
  const { fx, app, slack, gated } = await startNotifySuite(t, { nodeName: 'db-1 *PROD* @here' })
  // Line breaks never get this far (WRIT_ERR_UNSAFE_TEXT): a fake label line is refused before Slack sees it.
  const reason = '@here <!channel> *URGENT: approved by security* ~struck~ `code` *Approved by* _security-lead_ log in at https://evil.example/login or www.evil.example or <https://evil.example/x|the runbook>'
  const expected = 'nothing; @channel see http://evil.example/x'
  const run = await gated(reason, { expected })
  t.equal(run.status, 'pending_approval')
  await app.inject({ method: 'POST', url: `/v1/runs/${run.id}/deny`, headers: auth(fx.tokens.operator), payload: { reason: '*approved* after all <@U123> https://evil.example/deny' } })
  await eventually(() => slack.messages.length === 2, 10_000, 'the request and its outcome in Slack')

  for (const [i, message] of slack.messages.entries()) {
    const name = i === 0 ? 'the approval request' : 'the outcome'
    for (const o of textObjects(message).filter((x) => x.type === 'mrkdwn')) {
      for (const h of HOSTILE) t.notOk(o.text.includes(h), `${name}: no mrkdwn text carries "${h}" (${JSON.stringify(o.text)})`)
    }
    for (const h of HOSTILE) t.notOk(String(message.text).includes(h), `${name}: the notification text carries no "${h}"`)
    t.notMatch(JSON.stringify(message), /https?:\/\/evil|www\.evil/, `${name}: no URL an agent wrote is left for a client to link`)
    for (const o of textObjects(message).filter((x) => x.type === 'plain_text')) t.equal(o.emoji, false, `${name}: plain text ${JSON.stringify(o.text.slice(0, 30))} shows emoji codes as typed`)
  }
  const [request, outcome] = slack.messages as [Record<string, any>, Record<string, any>]
  const plain = textObjects(request).filter((x) => x.type === 'plain_text').map((x) => x.text)
  t.ok(plain.some((x) => x.startsWith('@here <!channel> *URGENT: approved by security* ~struck~ `code` *Approved by* _security-lead_ log in at https[:]//evil.example/login or www[.]evil.example or <https[:]//evil.example/x|the runbook>')),
    'the reason is shown as written, as plain text, its URLs defanged')
  t.ok(plain.includes('nothing; @channel see http[:]//evil.example/x'), 'so is the expected outcome')
  t.ok(plain.includes('db-1 *PROD* @here'), 'and the name the runner gave its node')
  t.match(request.text, /^Approval needed: testops\.restart \(high risk\), requested by agent-1/, 'the notification names the action, risk and requester, and leaves out a node name that is not a plain host name')
  t.ok(textObjects(outcome).some((x) => x.type === 'plain_text' && x.text.includes('Denied by ops-1: *approved* after all <@U123> https[:]//evil.example/deny')), 'the denial reason is plain text too')
  t.match(outcome.text, new RegExp(`^testops\\.restart \\(run ${run.id}\\) — Denied by ops-1$`), 'the outcome notification holds no free text')
})

t.test('the approval request shows the arguments the person decides on, a sensitive one redacted', async (t) => {
  const { fx, app, slack } = await startNotifySuite(t, {
    rulesFirst: [{ name: 'logins-need-a-person', match: { actions: ['testops.login'] }, decision: 'require_approval', approver_groups: ['oncall'], quorum: 1, ttl: '15m' }],
  })
  const secret = 'Hunter2Hunter2'
  const res = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.login', node: 'host-s', args: { user: 'alice', password: secret }, reason: 'check the login works' } })
  t.equal(res.json().status, 'pending_approval')
  await eventually(() => slack.messages.length === 1, 10_000, 'the request in Slack')
  const message = slack.messages[0] as Record<string, any>
  const plain = textObjects(message).filter((x) => x.type === 'plain_text').map((x) => x.text)
  t.ok(plain.includes('user=alice\npassword=[redacted]'), `the arguments, one a line, the password redacted (${JSON.stringify(plain)})`)
  // An action without a summary is its title, the node and the arguments, as plain text.
  t.match(message.blocks[0], { type: 'header', text: { type: 'plain_text', text: 'Log in to a service (pretend) on host-s (user=alice, password=[redacted])' } }, 'the header says the concrete change')
  t.notMatch(JSON.stringify(message), secret, 'the secret is nowhere in what Slack received')
})

/**
 * One agent cannot flood Slack: notices take fair turns per requester, so a
 * burst from one agent never pushes out or holds back another's notice, and
 * a pile from one requester reaches Slack as one summary linking to the
 * inbox. A notice that is never posted is counted, and an alert rule
 * watches that count.
 */
import t from 'tap'
import { connect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { NOTIFY_STREAM } from '@writ/control-plane'
import { eventually } from './helpers/cp-fake-runner.js'
import { reviewLink } from './helpers/slack-receiver.js'
import { startNotifySuite } from './helpers/notify-suite.js'

const FLOOD = 12

t.test("one agent's burst reaches Slack as one summary, and another agent's notice is not held behind it", async (t) => {
  const { fx, nats, app, slack, gated } = await startNotifySuite(t, { slack: { coalesce_after: 3, max_attempts: 30, retry_base: '100ms' } })
  slack.down = true
  const flood: string[] = []
  for (let i = 0; i < FLOOD; i++) {
    const run = await gated(`flood ${i}`, {}, fx.tokens.agent2)
    t.equal(run.status, 'pending_approval')
    flood.push(run.id)
  }
  const mine = await gated('the one that matters')
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  const jsm = await jetstreamManager(nc)
  await eventually(async () => (await jsm.streams.info(NOTIFY_STREAM)).state.messages === FLOOD + 1, 10_000, 'every notice in the outbox')
  slack.down = false

  const url = `https://writ.example.internal/ui/runs/${mine.id}`
  await eventually(() => slack.messages.some((m) => reviewLink(m) === url), 30_000, "agent-1's approval request in Slack")
  const position = slack.messages.findIndex((m) => reviewLink(m) === url)
  t.ok(position <= 1, `agent-1's notice is among the first two messages Slack got after it came back (it was message ${position + 1} of ${slack.messages.length})`)
  await eventually(() => slack.messages.some((m) => /agent-2 has \d+ more runs? waiting for approval/.test(m.text)), 30_000, "agent-2's summary")
  const summaries = slack.messages.filter((m) => /^agent-2 has/.test(m.text))
  const announced = summaries.reduce((n, m) => n + Number(/agent-2 has (\d+)/.exec(m.text)?.[1] ?? 0), 0)
  const single = slack.messages.filter((m) => flood.some((id) => reviewLink(m) === `https://writ.example.internal/ui/runs/${id}`))
  t.equal(announced + single.length, FLOOD, `every notice of agent-2 is accounted for (${single.length} on their own, ${announced} in summaries)`)
  t.ok(summaries.length >= 1 && single.length <= 3, 'the pile went out as a summary, not one message per run')
  t.ok(slack.messages.length <= 4, `Slack got ${slack.messages.length} messages for ${FLOOD + 1} notices`)
  const summary = summaries[0] as Record<string, any>
  const button = summary.blocks?.[0]?.accessory
  t.match(button, { type: 'button', url: 'https://writ.example.internal/ui/' }, 'the summary links to the inbox')
  t.match(JSON.stringify(summary.blocks), /testops\.restart ×\d+/, 'and says which action the runs are for')
  t.notMatch(JSON.stringify(summary), /flood \d/, 'it carries no agent text')
  // Counted once the outbox confirms the summary's notices are gone, a moment after Slack has it.
  const coalesced = async (): Promise<number> => Number(/^writ_slack_notices_coalesced_total (\d+)$/m.exec((await app.inject({ method: 'GET', url: '/metrics' })).body)?.[1])
  await eventually(async () => (await coalesced()) === announced, 10_000, `writ_slack_notices_coalesced_total ${announced}`).catch(() => undefined)
  t.equal(await coalesced(), announced, 'writ_slack_notices_coalesced_total counts the notices summaries stood for')
})

t.test('a notice Slack refuses, or that still fails after its last attempt, is counted as dropped by reason', async (t) => {
  const { app, slack, gated } = await startNotifySuite(t, { slack: { max_attempts: 2 } })
  slack.script.push({ status: 400 })
  await gated('refused')
  const dropped = async (reason: string) => {
    const m = new RegExp(`^writ_slack_notices_dropped_total\\{reason="${reason}"\\} (\\d+)$`, 'm').exec((await app.inject({ method: 'GET', url: '/metrics' })).body)
    return m ? Number(m[1]) : 0
  }
  await eventually(async () => (await dropped('refused')) === 1, 10_000, 'writ_slack_notices_dropped_total{reason="refused"} 1')
  slack.script.push({ status: 500 }, { status: 503 })
  await gated('never posted')
  await eventually(async () => (await dropped('max_attempts')) === 1, 10_000, 'writ_slack_notices_dropped_total{reason="max_attempts"} 1')
  t.equal(slack.messages.length, 0, 'nothing reached Slack')
  t.equal(await dropped('refused'), 1)
})

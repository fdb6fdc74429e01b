/**
 * Slack notices live in the outbox on JetStream (`WRIT_NOTIFY`), not in one
 * control plane's memory: a control plane killed with -9 while Slack is down
 * loses none of the notices it had queued; another instance delivers each of
 * them exactly once when Slack is back.
 */
import t from 'tap'
import { connect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { NOTIFY_CONSUMER, NOTIFY_STREAM } from '@writ/control-plane'
import { startNatsServer } from './helpers/nats-server.js'
import { makeCpFixture } from './helpers/cp-fixtures.js'
import { eventually, startFakeRunner } from './helpers/cp-fake-runner.js'
import { startCpProcess } from './helpers/cp-process.js'
import { reviewLink, startSlackReceiver } from './helpers/slack-receiver.js'

const BASE = 'https://writ.example.internal'

/** Which notice a Slack message is: `pending:<run>` for a request, `decided:<run>` for an outcome. */
function noticeOf(message: Record<string, any>): string {
  const link = reviewLink(message)
  if (link) return `pending:${link.slice(`${BASE}/ui/runs/`.length)}`
  const outcome = /\(run (\S+)\) — /.exec(String(message.text))
  return outcome ? `decided:${outcome[1]}` : `unknown:${String(message.text)}`
}

t.test('notices queued while Slack is down survive a kill -9 and arrive exactly once through another instance', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const slack = await startSlackReceiver()
  t.teardown(() => slack.close())
  slack.down = true
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  const configFile = fx.writeConfigFile({
    public_url: BASE,
    notify: { slack: { webhook_url: slack.url, max_attempts: 50, timeout: '2s', retry_base: '200ms', ack_wait: '2s', coalesce_after: 5 } },
  })
  const runner = await startFakeRunner({ natsUrl: nats.url, nodeId: 'node-1', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile })
  t.teardown(() => runner.close())
  const first = await startCpProcess(configFile)
  t.teardown(() => first.stop())
  const as = (token: string) => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' })
  await eventually(async () => {
    const r = await fetch(`${first.url}/v1/nodes`, { headers: as(fx.tokens.agent) })
    return ((await r.json()) as { nodes: Array<{ online: boolean }> }).nodes.some((n) => n.online)
  }, 10_000, 'node visible')

  const expected: string[] = []
  const request = async (token: string, reason: string) => {
    const res = await fetch(`${first.url}/v1/runs`, { method: 'POST', headers: as(token), body: JSON.stringify({ action: 'testops.restart', node: 'node-1', args: {}, reason }) })
    const run = await res.json() as { id: string, status: string }
    t.equal(run.status, 'pending_approval')
    expected.push(`pending:${run.id}`)
    return run.id
  }
  const denied = await request(fx.tokens.agent, 'first')
  await request(fx.tokens.agent, 'second')
  await request(fx.tokens.agent2, 'third')
  await request(fx.tokens.agent2, 'fourth')
  const deny = await fetch(`${first.url}/v1/runs/${denied}/deny`, { method: 'POST', headers: as(fx.tokens.operator), body: JSON.stringify({ reason: 'not now' }) })
  t.equal(deny.status, 200)
  expected.push(`decided:${denied}`)

  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  const jsm = await jetstreamManager(nc)
  await eventually(async () => (await jsm.streams.info(NOTIFY_STREAM)).state.messages === expected.length, 10_000, 'every notice in the outbox')
  await eventually(() => slack.attempts.length > 0, 10_000, 'the first instance trying Slack while it is down')
  await first.kill9()
  t.equal(slack.messages.length, 0, 'Slack had accepted nothing when the control plane was killed')
  t.equal((await jsm.streams.info(NOTIFY_STREAM)).state.messages, expected.length, 'the notices outlive the instance that queued them')

  const second = await startCpProcess(configFile)
  t.teardown(() => second.stop())
  slack.down = false
  await eventually(() => slack.messages.length >= expected.length, 30_000, 'every notice in Slack')
  // Nothing is left to deliver: the outbox is empty and no notice is held or waiting for redelivery.
  await eventually(async () => {
    const info = await jsm.consumers.info(NOTIFY_STREAM, NOTIFY_CONSUMER)
    return (await jsm.streams.info(NOTIFY_STREAM)).state.messages === 0 && info.num_ack_pending === 0 && info.num_pending === 0
  }, 30_000, 'the outbox to drain')
  const got = slack.messages.map(noticeOf)
  t.same([...got].sort(), [...expected].sort(), 'every notice arrived exactly once')
  t.ok(got.indexOf(`pending:${denied}`) < got.indexOf(`decided:${denied}`), 'a run\'s request came before its outcome')
  t.notMatch(first.output() + second.output(), /services\/T000/, 'the webhook URL (a secret) is never logged')
})

/**
 * The arrangement of a Slack notification suite: a control plane (in process)
 * whose webhook is a local Slack receiver, a fake runner it can dispatch to,
 * and a way to request runs that need a person.
 */
import { Writable } from 'node:stream'
import { buildApp, createLogger, parseConfig } from '@writ/control-plane'
import { auth, startCpSuite } from './cp-fixtures.js'
import { eventually, startFakeRunner } from './cp-fake-runner.js'
import { startSlackReceiver } from './slack-receiver.js'

export interface NotifySuiteOptions {
  slack?: Record<string, unknown>
  /** The name the runner reports for itself (runner-controlled text). */
  nodeName?: string
  /** Policy rules evaluated before the fixture's. */
  rulesFirst?: unknown[]
}

export async function startNotifySuite(t: { teardown(fn: () => unknown): void }, opts: NotifySuiteOptions = {}) {
  const { fx, nats } = await startCpSuite(t)
  const slack = await startSlackReceiver()
  t.teardown(() => slack.close())
  let logs = ''
  const sink = new Writable({ write(chunk, _enc, done) { logs += chunk.toString(); done() } })
  const config = parseConfig({
    ...fx.config, public_url: 'https://writ.example.internal', log: { level: 'debug' },
    ...(opts.rulesFirst ? { policy: { rules: [...opts.rulesFirst, ...fx.config.policy.rules] } } : {}),
    notify: { slack: { webhook_url: slack.url, max_attempts: 6, timeout: '2s', retry_base: '50ms', ...opts.slack } },
  })
  const app = await buildApp(config, { logger: createLogger(config, sink) })
  t.teardown(() => app.close())
  const runner = await startFakeRunner({
    natsUrl: fx.config.nats.servers[0] as string, nodeId: 'host-s', nodeName: opts.nodeName, packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile,
  })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('host-s')?.online, 10_000, 'heartbeat')
  /** Requests a run that needs a person, as `token` (agent-1 by default). */
  const gated = async (reason = 'restart the worker', extra: Record<string, unknown> = {}, token = fx.tokens.agent) =>
    (await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(token), payload: { action: 'testops.restart', node: 'host-s', args: {}, reason, ...extra } })).json()
  return { fx, nats, app, slack, runner, gated, logs: () => logs }
}

/** Every Block Kit text object in a message (blocks, fields, accessories, elements), with its type. */
export function textObjects(message: Record<string, any>): Array<{ type: string, text: string, emoji?: boolean, verbatim?: boolean }> {
  const found: Array<{ type: string, text: string, emoji?: boolean, verbatim?: boolean }> = []
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) { for (const n of node) walk(n); return }
    if (node === null || typeof node !== 'object') return
    const o = node as Record<string, unknown>
    if ((o.type === 'plain_text' || o.type === 'mrkdwn') && typeof o.text === 'string') found.push(o as { type: string, text: string })
    for (const v of Object.values(o)) walk(v)
  }
  walk(message.blocks)
  return found
}

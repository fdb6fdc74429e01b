/**
 * Counters the alerts read exist from the start at 0 for every label value
 * known up front: a series that first appears at 1 has no increase() in
 * Prometheus, so the first forged writ a runner ever sees, or the first
 * approval that expires, would never alert.
 */
import t from 'tap'
import { RefusalCodeSchema, signWrit } from '@writ/packs/protocol'
import { startCpSuite } from './helpers/cp-fixtures.js'
import { freePort } from './helpers/nats-server.js'
import { startRunnerHarness } from './helpers/runner-harness.js'

async function refusals(port: number): Promise<Map<string, number>> {
  const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  return new Map([...body.matchAll(/^writ_runner_refusals_total\{code="([a-z_]+)"\} (\d+)$/gm)].map((m) => [m[1] as string, Number(m[2])]))
}

t.test('a fresh runner reports every refusal code at 0; a tampered writ moves bad_signature to 1', async (t) => {
  const port = await freePort()
  const h = await startRunnerHarness({ extraConfig: { metricsListen: `127.0.0.1:${port}` } })
  t.teardown(() => h.stop())

  const fresh = await refusals(port)
  t.same([...fresh.keys()].sort(), [...RefusalCodeSchema.options].sort(), 'one series per refusal code the protocol knows')
  t.ok([...fresh.values()].every((v) => v === 0), 'all at 0')

  const signed = signWrit(h.writ('canary.mark', { name: 'ok' }), h.key)
  const ack = await h.send({ ...signed, writ: { ...signed.writ, args: { name: 'tampered' } } })
  t.match(ack, { accepted: false, refusal: { code: 'bad_signature' } })
  const after = await refusals(port)
  t.equal(after.get('bad_signature'), 1, 'the tampered writ is counted')
  t.same([...after].filter(([code, v]) => code !== 'bad_signature' && v !== 0), [], 'no other code moved')
})

t.test('a fresh control plane reports every approval outcome at 0, and an empty wait histogram per decided outcome', async (t) => {
  const { app } = await startCpSuite(t)
  const body = (await app.inject({ method: 'GET', url: '/metrics' })).body
  for (const outcome of ['approved', 'approval_recorded', 'denied', 'expired']) {
    t.match(body, new RegExp(`^writ_approval_decisions_total\\{outcome="${outcome}"\\} 0$`, 'm'), `writ_approval_decisions_total{outcome="${outcome}"} 0`)
  }
  for (const outcome of ['approved', 'denied', 'expired']) {
    t.match(body, new RegExp(`^writ_approval_wait_seconds_bucket\\{le="\\+Inf",outcome="${outcome}"\\} 0$`, 'm'), `writ_approval_wait_seconds_bucket{le="+Inf",outcome="${outcome}"} 0`)
  }
})

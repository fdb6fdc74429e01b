/**
 * Break-glass under the approver registry: the passkey rule still applies.
 * The registry asks two passkey-signed approvals for the deploy; break-glass
 * without a passkey is refused with a typed error and changes nothing; with
 * the operator's own passkey over the run's binding it runs alone, and the
 * real runner (its own process, following the same registry) accepts the one
 * passkey-verified break-glass approval as the quorum.
 */
import t from 'tap'
import { bindingChallenge } from '@writ/packs/approvers'
import { auth } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRunnerProcess } from './helpers/runner-process.js'
import { startPasskeySuite } from './helpers/passkey-suite.js'

const NODE = 'bg-passkey-host'

t.test('break-glass needs the operator\'s passkey where the registry asks for passkeys', async (t) => {
  // The registry lets one passkey stand for its quorum of two on break-glass; testops.restart's rule does not.
  const { nats, fx, app, ops1, ops2, registryFile, approversPub } = await startPasskeySuite(t, { default: { groups: ['oncall'], quorum: 2, break_glass: true }, rules: [{ actions: ['testops.restart'], break_glass: false }], min_risk: 'high' }, {
    policy: { rules: [
      { name: 'deploys-need-two', match: { actions: ['testops.deploy', 'testops.restart'] }, decision: 'require_approval', approver_groups: ['oncall'], quorum: 2, ttl: '15m', break_glass: true },
      { name: 'agents-low-risk', match: { groups: ['sre-agents'], max_risk: 'medium' }, decision: 'allow' },
    ] },
  })
  const runner = await startRunnerProcess(fx, nats.url, NODE, { packDirs: fx.config.packs.dirs, flags: ['--approvers-registry', registryFile, '--approvers-key', approversPub] })
  t.teardown(() => runner.stop())
  await eventually(() => app.writ.fleet.find(NODE)?.online, 10_000, 'runner heartbeat')

  const asked = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.deploy', node: NODE, args: {}, reason: 'hotfix for the outage' } })
  const run = asked.json()
  t.match(run, { status: 'pending_approval', approval: { passkey_required: true, quorum: 2 } })

  const bare = await app.inject({ method: 'POST', url: `/v1/runs/${run.id}/break-glass`, headers: auth(fx.tokens.operator), payload: { reason: 'ops-2 is on a plane' } })
  t.equal(bare.statusCode, 403, bare.body)
  t.match(bare.json().error, { code: 'WRIT_ERR_PASSKEY_REQUIRED', break_glass: true })
  t.comment(`without a passkey: ${bare.statusCode} ${bare.json().error.code}: ${bare.json().error.message}`)
  const still = await app.inject({ method: 'GET', url: `/v1/runs/${run.id}`, headers: auth(fx.tokens.operator) })
  t.equal(still.json().status, 'pending_approval', 'nothing was dispatched')
  t.same((await app.inject({ method: 'GET', url: '/v1/reviews', headers: auth(fx.tokens.operator) })).json(), { reviews: [] }, 'and no review item left')

  const wrong = await app.inject({
    method: 'POST', url: `/v1/runs/${run.id}/break-glass`, headers: auth(fx.tokens.operator),
    payload: { reason: 'ops-2 is on a plane', passkey: ops2.passkey.assert(bindingChallenge(run.approval.binding)) },
  })
  t.equal(wrong.json().error?.code, 'WRIT_ERR_PASSKEY_REJECTED', 'another person\'s passkey does not count')

  const signed = await app.inject({
    method: 'POST', url: `/v1/runs/${run.id}/break-glass`, headers: auth(fx.tokens.operator),
    payload: { reason: 'ops-2 is on a plane', binding: run.approval.binding, passkey: ops1.passkey.assert(bindingChallenge(run.approval.binding)) },
  })
  t.equal(signed.statusCode, 200, signed.body)
  const done = await app.inject({ method: 'GET', url: `/v1/runs/${run.id}?wait=10`, headers: auth(fx.tokens.operator) })
  t.equal(done.json().status, 'succeeded', done.json().status_reason)
  t.match(done.json().approval.approvals, [{ by: 'ops-1', break_glass: true, passkey: { credential_id: ops1.passkey.credentialId } }])
  t.comment(`with ops-1's passkey: ${signed.statusCode}; the runner verified the one break-glass passkey against a registry quorum of 2 → ${done.json().status}`)

  // Where the registry does not allow it, policy's break_glass is not enough: refused before anything leaves.
  const restart = (await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.restart', node: NODE, args: {}, reason: 'the worker is stuck' } })).json()
  const notAllowed = await app.inject({
    method: 'POST', url: `/v1/runs/${restart.id}/break-glass`, headers: auth(fx.tokens.operator),
    payload: { reason: 'ops-2 is on a plane', binding: restart.approval.binding, passkey: ops1.passkey.assert(bindingChallenge(restart.approval.binding)) },
  })
  t.equal(notAllowed.statusCode, 403, notAllowed.body)
  t.match(notAllowed.json().error, { code: 'WRIT_ERR_BREAK_GLASS_NOT_ALLOWED', message: /approver registry \(rules\[0\] \(testops\.restart\)\) asks 2 passkey approvals and does not allow break-glass/ })
  t.equal((await app.inject({ method: 'GET', url: `/v1/runs/${restart.id}`, headers: auth(fx.tokens.operator) })).json().status, 'pending_approval', 'nothing was dispatched')
  t.comment(`registry without break_glass: ${notAllowed.statusCode} ${notAllowed.json().error.code}: ${notAllowed.json().error.message}`)
})

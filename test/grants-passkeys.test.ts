/**
 * A standing grant for an action the approver registry gates with passkeys:
 * the grant is made pending (its digest names its id and issue time, so no
 * passkey can sign it before it exists), then each approver signs that digest
 * with their published passkey — without one, with someone else's, or over
 * something else, the approval is refused with a typed error and changes
 * nothing. Once the registry's quorum of passkeys is in, covered requests
 * dispatch at once, and the real runner (its own process, following the same
 * registry) verifies the passkeys the grant carries before it runs anything.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { bindingChallenge } from '@writ/packs/approvers'
import { auth, runnerJournal } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRunnerProcess } from './helpers/runner-process.js'
import { REPO_ROOT } from './helpers/runner-harness.js'
import { TEST_RP } from './helpers/approver-registry.js'
import { startPasskeySuite } from './helpers/passkey-suite.js'
import { PortalVisitor } from './helpers/portal-visitor.js'

const NODE = 'grant-passkey-host'
const CLI = join(REPO_ROOT, 'control-plane', 'dist', 'cli.js')

function writ(args: string[], env: Record<string, string>): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, WRIT_TOKEN: '', ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 99) : 0, stdout, stderr })
    })
  })
}

t.test('a grant for a passkey-gated action is signed by its approvers\' passkeys over its digest, and runners check them', async (t) => {
  // The registry asks two passkeys for the restart; policy asks one approval: two it is.
  const { nats, fx, app, ops1, ops2, registryFile, approversPub, republish } = await startPasskeySuite(t, { default: { groups: ['oncall'], quorum: 1 }, rules: [{ actions: ['testops.restart'], quorum: 2 }], min_risk: 'high' })
  const runner = await startRunnerProcess(fx, nats.url, NODE, { packDirs: fx.config.packs.dirs, flags: ['--approvers-registry', registryFile, '--approvers-key', approversPub] })
  t.teardown(() => runner.stop())
  await eventually(() => app.writ.fleet.find(NODE)?.online, 10_000, 'runner heartbeat')

  const created = await app.inject({
    method: 'POST', url: '/v1/grants', headers: auth(fx.tokens.operator),
    payload: { principal: 'agent-1', action: 'testops.restart', node: NODE, args: 'any', uses: 2, expires_in: '1h', reason: 'incident 4711: the worker hangs' },
  })
  t.equal(created.statusCode, 201, created.body)
  const g = created.json()
  t.match(g, { status: 'pending', passkey_required: true, quorum: 2, approvals: [], sign_url: `${TEST_RP.origins[0]}/ui/grants#grant-${g.id}` })
  t.comment(`POST /v1/grants by ops-1 → ${created.statusCode} ${g.id} ${g.status}, passkey_required, 0 of ${g.quorum}`)

  const approve = (token: string, payload: Record<string, unknown>) => app.inject({ method: 'POST', url: `/v1/grants/${g.id}/approve`, headers: auth(token), payload })
  const unchanged = async (): Promise<void> => {
    const now = (await app.inject({ method: 'GET', url: `/v1/grants/${g.id}`, headers: auth(fx.tokens.operator) })).json()
    t.match(now, { status: 'pending', approvals: [] }, 'nothing changed')
  }

  const bare = await approve(fx.tokens.operator, { digest: g.digest })
  t.equal(bare.statusCode, 403)
  t.match(bare.json().error, { code: 'WRIT_ERR_PASSKEY_REQUIRED', message: new RegExp(`grant "${g.id}" needs your passkey's signature over its digest.*${TEST_RP.origins[0]}/ui/grants#grant-${g.id}`), grant_id: g.id, digest: g.digest })
  t.comment(`approve without a passkey → ${bare.statusCode} ${bare.json().error.code}: ${bare.json().error.message}`)
  await unchanged()

  const garbled = await approve(fx.tokens.operator, { digest: g.digest, passkey: { credential_id: 'not base64url!', signature: 'x' } })
  t.equal(garbled.statusCode, 400)
  t.match(garbled.json().error, { code: 'WRIT_ERR_VALIDATION', message: /passkey/ }, 'an assertion that is not one is refused by shape')
  await unchanged()
  const others = await approve(fx.tokens.operator, { digest: g.digest, passkey: ops2.passkey.assert(bindingChallenge(g.digest)) })
  t.match(others.json().error, { code: 'WRIT_ERR_PASSKEY_REJECTED', message: /registered to ops-2/ }, 'another person\'s passkey does not count')
  const elsewhere = await approve(fx.tokens.operator, { digest: g.digest, passkey: ops1.passkey.assert(bindingChallenge('cd'.repeat(32))) })
  t.match(elsewhere.json().error, { code: 'WRIT_ERR_PASSKEY_REJECTED', message: /not grant .*'s digest/ }, 'a passkey over something else does not count')
  t.comment(`ops-2's passkey → ${others.json().error.code}; ops-1's over another digest → ${elsewhere.json().error.code}: ${elsewhere.json().error.message}`)
  await unchanged()

  const first = await approve(fx.tokens.operator, { digest: g.digest, passkey: ops1.passkey.assert(bindingChallenge(g.digest)) })
  t.equal(first.statusCode, 200, first.body)
  t.match(first.json(), { status: 'pending', approvals: [{ by: 'ops-1', passkey: ops1.passkey.credentialId }] })
  const before = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.restart', node: NODE, args: {}, reason: 'the worker hangs again' } })
  t.equal(before.json().status, 'pending_approval', 'one passkey of two covers nothing yet')
  const second = await approve(fx.tokens.operator2, { digest: g.digest, passkey: ops2.passkey.assert(bindingChallenge(g.digest)) })
  t.match(second.json(), { status: 'active', approvals: [{ by: 'ops-1' }, { by: 'ops-2', passkey: ops2.passkey.credentialId }] })
  t.comment(`ops-1 then ops-2 sign the digest with their passkeys → ${second.json().status}`)

  const ran = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.restart', node: NODE, args: {}, reason: 'the worker hangs again' } })
  t.match(ran.json(), { grant: { id: g.id, uses_left: 1 } }, ran.body)
  const done = await app.inject({ method: 'GET', url: `/v1/runs/${ran.json().id}?wait=10`, headers: auth(fx.tokens.operator) })
  t.equal(done.json().status, 'succeeded', done.json().status_reason)
  t.comment(`agent-1 POST /v1/runs testops.restart → ${ran.statusCode} dispatched under the grant (uses_left ${ran.json().grant?.uses_left}) → ${done.json().status}`)
  // The runner verified both passkeys over the grant's digest against its own copy of the registry.
  const journal = runnerJournal(fx, NODE)
  const accepted = journal.find((e) => e.type === 'accepted' && e.run_id === ran.json().id)
  t.match(accepted?.data, { grant: g.id, passkeys: { verified: [{ by: 'ops-1', credential_id: ops1.passkey.credentialId }, { by: 'ops-2', credential_id: ops2.passkey.credentialId }] } })

  // From a terminal: the grant is made, and the CLI says where its passkeys sign it (a browser); approving without one is refused.
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const ops = { WRIT_URL: url, WRIT_OPERATOR_TOKEN: fx.tokens.operator }
  const given = await writ(['grant', 'testops.restart', '--to', 'agent-1', '--node', NODE, '--any-args', '--for', '30m', '--reason', 'incident 4712'], ops)
  t.equal(given.code, 0, given.stderr)
  t.match(given.stdout, /^g[0-9a-z]{17}  pending  testops.restart for agent-1 on grant-passkey-host \(any args\), unlimited uses, until .*, 0\/2 passkey-signed approvals\n/)
  const cliId = given.stdout.slice(0, 18)
  t.match(given.stderr, `grant ${cliId} needs 2 passkey signature(s) over its digest`)
  t.match(given.stderr, `sign it on the Grants page: ${TEST_RP.origins[0]}/ui/grants#grant-${cliId}`)
  t.comment(`$ writ grant testops.restart --to agent-1 --node ${NODE} --any-args --for 30m --reason "incident 4712"\n${given.stdout.trimEnd()}\n${given.stderr.trimEnd()}`)
  const cliApprove = await writ(['grant', 'approve', cliId], ops)
  t.equal(cliApprove.code, 2, 'refused: exit code 2')
  t.match(cliApprove.stderr, 'WRIT_ERR_PASSKEY_REQUIRED')
  t.comment(`$ writ grant approve ${cliId} → exit ${cliApprove.code}: ${cliApprove.stderr.trim().split('\n').pop()}`)

  // Once the registry no longer lists ops-2's passkey, the grant covers nothing: the request waits for approval again.
  republish([ops1], { default: { groups: ['oncall'], quorum: 1 }, rules: [{ actions: ['testops.restart'], quorum: 2 }], min_risk: 'high' })
  await eventually(() => app.writ.passkeys?.registry?.approvers.length === 1, 5000, 'the control plane to follow the registry')
  const after = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.restart', node: NODE, args: {}, reason: 'once more' } })
  t.equal(after.json().status, 'pending_approval', 'a grant whose passkeys the registry no longer lists covers nothing')
  const shown = (await app.inject({ method: 'GET', url: `/v1/grants/${g.id}`, headers: auth(fx.tokens.operator) })).json()
  t.match(shown, { status: 'active', covers_nothing: /asks 2 passkey signature\(s\) from oncall for testops.restart .*; this grant carries 1 it still lists, so it covers nothing: give a new one/ }, 'and says so')
  t.comment(`after ops-2's passkey left the registry → ${after.json().status}; GET /v1/grants/${g.id}: covers_nothing: ${shown.covers_nothing}`)
  const visitor = new PortalVisitor(app)
  await visitor.signIn(fx.tokens.operator)
  const page = await visitor.get('/ui/grants')
  t.match(page.body, new RegExp(`<tr id="grant-${g.id}">[\\s\\S]*?<small class="warn">covers nothing: the approver registry asks 2 passkey signature\\(s\\)`), 'the Grants page says it on the row')
})

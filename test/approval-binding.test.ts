/**
 * The approval binding (v2): a digest over exactly what runs — options
 * included — keyed by a per-run random salt that only the run record and the
 * writ hold. The attacks it stops: recovering a 4-digit sensitive pin by
 * trying every value against the binding and the fields every surface shows;
 * widening a run's limits after a person approved it. And a writ of another
 * format version is refused, never mis-verified.
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { approvalBinding, canonicalJson, newBindingSalt, signWrit, type Writ } from '@writ/packs/protocol'
import type { AuditEvent, Run } from '@writ/control-plane'
import { auth, startCpSuite } from './helpers/cp-fixtures.js'
import { eventually, startFakeRunner } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'
import { connectMcp } from './helpers/mcp-client.js'
import { startRunnerHarness } from './helpers/runner-harness.js'

const PIN = '4821'

/** Everything a signed-in operator's browser gets for a run page. */
async function runPage(app: Awaited<ReturnType<typeof startCpSuite>>['app'], token: string, runId: string): Promise<string> {
  const signIn = await app.inject({ method: 'GET', url: '/ui/sign-in' })
  const cookie = String(signIn.headers['set-cookie']).split(';')[0] as string
  const csrf = /name="_csrf" value="([^"]*)"/.exec(signIn.body)?.[1] ?? ''
  const signed = await app.inject({
    method: 'POST', url: '/ui/sign-in', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ _csrf: csrf, token, next: '/ui' }).toString(),
  })
  const session = String(signed.headers['set-cookie']).split(';')[0] as string
  return (await app.inject({ method: 'GET', url: `/ui/runs/${runId}`, headers: { cookie: session } })).body
}

/** The binding as it was computed before v2 (the algorithm is public): SHA-256 over the shown fields, no salt. */
function unsaltedBinding(shown: Run, pin: string): string {
  return createHash('sha256').update(canonicalJson({
    domain: 'writ.v1.approval-binding', run_id: shown.id, action: shown.action, pack_digest: shown.pack_digest, node_id: shown.node_id,
    args: { ...shown.args, pin }, reason: shown.reason, requester: { id: shown.requester.id, kind: shown.requester.kind },
  })).digest('hex')
}

/** Every binding the fields of `shown` (and `salt`, if the attacker had it) give for each of the 10,000 pins, against `binding`. */
function pinsMatching(shown: Run, binding: string, salt: string | undefined): string[] {
  const found: string[] = []
  for (let i = 0; i < 10_000; i++) {
    const pin = String(i).padStart(4, '0')
    const subject = {
      run_id: shown.id, action: shown.action, pack_digest: shown.pack_digest, node_id: shown.node_id, args: { ...shown.args, pin },
      reason: shown.reason, requester: shown.requester, options: shown.options, binding_salt: salt as string,
    }
    if (approvalBinding(subject) === binding || (salt === undefined && unsaltedBinding(shown, pin) === binding)) found.push(pin)
  }
  return found
}

t.test('a sensitive 4-digit pin cannot be recovered from the binding and everything shown; the salt is only in the writ', async (t) => {
  const { nats, fx, app } = await startCpSuite(t)
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const runner = await startFakeRunner({ natsUrl: nats.url, nodeId: 'web-1', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('web-1')?.online, 5000, 'node online')

  const created = await app.inject({
    method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent),
    payload: { action: 'testops.unlock', node: 'web-1', args: { vault: 'payroll', pin: PIN }, reason: 'unlock payroll for the audit', options: { timeout_ms: 2000 }, session_id: 'inc-7' },
  })
  t.equal(created.statusCode, 202, created.body)
  const id = created.json().id as string
  const salt = (await app.writ.store.get(id))?.run.binding_salt
  t.match(salt, /^[0-9a-f]{64}$/, 'the run record holds a 256-bit salt')

  // Everything anyone can read about the run: the agent, an operator, the portal, MCP, the audit trail.
  const shownRes = await app.inject({ method: 'GET', url: `/v1/runs/${id}`, headers: auth(fx.tokens.operator) })
  const shown = shownRes.json() as Run
  const agent = await connectMcp(url, fx.tokens.agent)
  t.teardown(() => agent.close())
  const surfaces: Record<string, string> = {
    'the POST answer': created.body,
    'GET /v1/runs/:id': shownRes.body,
    'GET /v1/runs': (await app.inject({ method: 'GET', url: '/v1/runs', headers: auth(fx.tokens.operator) })).body,
    'GET /v1/approvals': (await app.inject({ method: 'GET', url: '/v1/approvals', headers: auth(fx.tokens.operator) })).body,
    'the audit trail': (await app.inject({ method: 'GET', url: `/v1/audit?run_id=${id}`, headers: auth(fx.tokens.operator) })).body,
    'MCP wait_for_run': JSON.stringify((await agent.call('wait_for_run', { run_id: id, wait_seconds: 0 })).value),
    'MCP recent_runs': JSON.stringify((await agent.call('recent_runs', { session_id: 'inc-7' })).value),
    'the run page': await runPage(app, fx.tokens.operator, id),
  }
  for (const [where, body] of Object.entries(surfaces)) {
    t.notMatch(body, salt as string, `${where} does not hold the salt`)
    t.notMatch(body, /binding_salt/, `${where} does not name it`)
    t.notMatch(body, `"pin":"${PIN}"`, `${where} does not hold the pin`)
  }
  t.match(shown, { args: { vault: 'payroll', pin: '[redacted]' }, options: { timeout_ms: 2000 }, approval: { binding: /^[0-9a-f]{64}$/ } })

  // The attack: every shown field, every pin, the published algorithms.
  const binding = shown.approval?.binding as string
  t.same(pinsMatching(shown, binding, shown.binding_salt), [], 'no pin reproduces the binding from what is shown')
  t.same(pinsMatching(shown, binding, salt), [PIN], 'with the salt, the same search finds it: the search is real, the salt is what stops it')

  // The salt travels in the writ, signed, for the runner to recompute the binding.
  const approved = await app.inject({ method: 'POST', url: `/v1/runs/${id}/approve`, headers: auth(fx.tokens.operator), payload: { binding } })
  t.equal(approved.statusCode, 200, approved.body)
  t.notMatch(approved.body, salt as string, 'the approve answer does not hold the salt')
  await eventually(() => runner.writs.length === 1, 5000, 'the writ')
  const writ = runner.writs[0]?.writ as Writ
  t.equal(writ.binding_salt, salt, 'the writ carries the salt')
  t.same(writ.options, { timeout_ms: 2000 })
  t.equal(approvalBinding(writ), binding, 'the runner recomputes the approved binding from the writ')
  t.match(writ.approvals, [{ by: 'ops-1', binding }])
  await eventually(async () => (await app.writ.store.get(id))?.run.status === 'succeeded', 5000, 'the run to finish')
  const audit = (await app.inject({ method: 'GET', url: '/v1/audit', headers: auth(fx.tokens.operator) })).body
  t.notMatch(audit, salt as string, 'no audit event, dispatch included, holds the salt')
  t.match(audit, /"options":\{"timeout_ms":2000\}/, 'the request event records the options it was made with')

  // A run that needs no person answers with the stored record's bytes: without the salt too.
  const quick = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.echo', node: 'web-1', args: { message: 'hi' }, reason: 'say hi', wait: 5 } })
  t.equal(quick.statusCode, 200, quick.body)
  t.match(quick.json(), { status: 'succeeded', args: { message: 'hi' } })
  t.notMatch(quick.body, /binding_salt/, 'the answer built from the stored bytes leaves the salt out')
  t.match((await app.writ.store.get(quick.json().id))?.run.binding_salt, /^[0-9a-f]{64}$/, 'while the record keeps it')
})

t.test('a run recorded before binding v2 cannot be approved (runners would refuse it), only denied', async (t) => {
  const { nats, fx, app } = await startCpSuite(t)
  const runner = await startFakeRunner({ natsUrl: nats.url, nodeId: 'web-1', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('web-1')?.online, 5000, 'node online')
  const run = (await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.restart', node: 'web-1', args: {}, reason: 'restart it' } })).json()
  // As an older control plane stored it: no salt.
  await app.writ.store.update(run.id, ({ binding_salt: _salt, ...r }) => r)
  const approve = await app.inject({ method: 'POST', url: `/v1/runs/${run.id}/approve`, headers: auth(fx.tokens.operator), payload: { binding: run.approval.binding } })
  t.equal(approve.statusCode, 409)
  t.match(approve.json().error, { code: 'WRIT_ERR_BINDING_OUTDATED', message: /requested before this control plane was upgraded.*deny it and request it again/ })
  t.equal(runner.writs.length, 0, 'nothing dispatched')
  const deny = await app.inject({ method: 'POST', url: `/v1/runs/${run.id}/deny`, headers: auth(fx.tokens.operator), payload: { reason: 'from before the upgrade' } })
  t.equal(deny.json().status, 'denied')
})

t.test('options are bound: widening a run\'s limits after the approval makes the real runner refuse it', async (t) => {
  const { nats, fx, app } = await startCpSuite(t)
  const runner = await startRealRunner(fx, nats.url, 'host-1')
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('host-1')?.online, 10_000, 'runner heartbeat')
  const request = async () => (await app.inject({
    method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent),
    payload: { action: 'testops.restart', node: 'host-1', args: {}, reason: 'restart it', options: { timeout_ms: 1500, max_stdout_bytes: 1000 } },
  })).json()
  const approve = (id: string, binding: string) => app.inject({ method: 'POST', url: `/v1/runs/${id}/approve`, headers: auth(fx.tokens.operator), payload: { binding } })
  const settled = (id: string) => eventually(async () => {
    const r = (await app.writ.store.get(id))?.run
    return r && ['succeeded', 'refused_by_runner', 'failed'].includes(r.status) ? r : undefined
  }, 10_000, 'the run to end')

  const honest = await request()
  t.match(await runPage(app, fx.tokens.operator, honest.id), /id="run-options">.*<code>timeout_ms<\/code> = <code>1500<\/code>.*<code>max_stdout_bytes<\/code> = <code>1000<\/code>.*the action declares timeout 5s/s,
    'the run page shows the options next to the declared limits')
  t.equal((await approve(honest.id, honest.approval.binding)).statusCode, 200)
  t.equal((await settled(honest.id)).status, 'succeeded', 'approved as shown, it runs')

  const widened = await request()
  // Anyone who can write the run bucket (or a compromised control plane) lifts the limits the approver read.
  await app.writ.store.update(widened.id, (r) => ({ ...r, options: {} }))
  t.equal((await approve(widened.id, widened.approval.binding)).statusCode, 200)
  const refused = await settled(widened.id)
  t.match(refused, { status: 'refused_by_runner', refusal: { code: 'bad_approval', message: /bound to .*, not to this writ/ } }, 'the runner refuses: the approval does not cover these options')
})

t.test('the runner refuses a writ of another format version, and approvals bound with another salt', async (t) => {
  const h = await startRunnerHarness()
  t.teardown(() => h.stop())
  const older = h.writ('canary.echo', { text: 'hi' }, { v: 1 } as unknown as Partial<Writ>)
  const ack = await h.send(signWrit(older, h.key))
  t.match(ack, { accepted: false, refusal: { code: 'malformed', message: /writ format version 1, this runner verifies version 2 only \(the control plane is older than this runner\)/ } })

  const writ = h.writ('canary.echo', { text: 'hi' })
  const otherSalt = approvalBinding({ ...writ, binding_salt: newBindingSalt() })
  const approvedElsewhere = { ...writ, approvals: [{ by: 'ops-1', at: new Date().toISOString(), binding: otherSalt }] }
  const refused = await h.send(signWrit(approvedElsewhere, h.key))
  t.match(refused, { accepted: false, refusal: { code: 'bad_approval' } }, 'the same fields under another salt are another binding')
  const good = { ...writ, run_id: `${writ.run_id}b`, approvals: [{ by: 'ops-1', at: new Date().toISOString(), binding: '' }] }
  good.approvals[0]!.binding = approvalBinding(good)
  t.match(await h.send(signWrit(good, h.key)), { accepted: true }, 'bound with its own salt, it is accepted')
})

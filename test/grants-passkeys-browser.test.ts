/**
 * "Approve and allow this for 1 h" where the approver registry gates the
 * action with passkeys, in the real browser (Chromium's virtual
 * authenticator holding ops-1's passkey): the run page signs the run's
 * binding, the grant is made and the page leads to it on the Grants page,
 * where the same passkey signs the grant's digest; ops-2 signs it over REST.
 * The next request runs under the grant, and the real runner verifies both
 * passkeys over the grant's digest before it runs.
 */
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateSigningKeyPair, loadSigningKey } from '@writ/packs/protocol'
import { bindingChallenge } from '@writ/packs/approvers'
import { buildApp, parseConfig } from '@writ/control-plane'
import { freePort, startNatsServer } from './helpers/nats-server.js'
import { auth, makeCpFixture, runnerJournal } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'
import { publishRegistry } from './helpers/approver-registry.js'
import { createSoftwareAuthenticator } from './helpers/software-authenticator.js'
import { artifactsDir, launchBrowser, pageWithAuthenticator, signInWithToken } from './helpers/browser.js'

const NODE = 'grant-browser-host'

t.test('a passkey-gated "allow this for 1 h": the browser signs the run, then the grant; runners verify the grant\'s passkeys', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())
  // WebAuthn needs a host name: the portal is http://localhost (a secure context), listening on loopback.
  const port = await freePort()
  const base = `http://localhost:${port}`
  const ops1 = createSoftwareAuthenticator({ rpId: 'localhost', origin: base })
  const ops2 = createSoftwareAuthenticator({ rpId: 'localhost', origin: base })
  const approvers = generateSigningKeyPair()
  const approversPub = join(fx.dir, 'approvers.pub.pem')
  writeFileSync(approversPub, approvers.publicPem)
  const registryFile = join(fx.dir, 'approvers.json')
  const at = new Date(Date.now() - 60_000).toISOString()
  publishRegistry(registryFile, {
    v: 1, kind: 'writ.approver-registry', issued_at: at, relying_party: { id: 'localhost', origins: [base] },
    require: { min_risk: 'high', default: { groups: ['oncall'], quorum: 1 }, rules: [{ actions: ['testops.restart'], quorum: 2 }] },
    approvers: [['ops-1', ops1], ['ops-2', ops2]].map(([operator, a]) => ({
      operator: operator as string, person: operator as string, principals: [operator as string], groups: ['oncall'],
      credential_id: (a as typeof ops1).credentialId, public_key: (a as typeof ops1).publicKey, registered_at: at,
    })),
  }, loadSigningKey(approvers.privatePem))
  const app = await buildApp(parseConfig({
    ...fx.config, listen: { host: '127.0.0.1', port }, public_url: base,
    passkeys: { registry_file: registryFile, approvers_key_file: approversPub, reload_interval: '200ms' },
  }))
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port })
  const runner = await startRealRunner(fx, nats.url, NODE, { packDirs: fx.config.packs.dirs, approversRegistry: registryFile, approversKeys: [approversPub], approversReloadMs: 200 })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find(NODE)?.online, 10_000, 'runner heartbeat')
  await eventually(() => app.writ.passkeys?.registry, 10_000, 'the control plane to load the registry')

  const agentRun = async (reason: string) => (await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.restart', node: NODE, args: {}, reason } })).json()
  const run = await agentRun('the worker hangs: restart it')
  t.match(run, { status: 'pending_approval', approval: { passkey_required: true, quorum: 2 } })

  const browser = await launchBrowser()
  t.teardown(() => browser.close())
  const { page, cdp, authenticatorId } = await pageWithAuthenticator(browser)
  // ops-1's published passkey, held by the browser's authenticator.
  await cdp.send('WebAuthn.addCredential', {
    authenticatorId,
    credential: { credentialId: Buffer.from(ops1.credentialId, 'base64url').toString('base64'), isResidentCredential: false, rpId: 'localhost', privateKey: ops1.privateKeyPkcs8, signCount: 0 },
  })
  await signInWithToken(page, `${base}/ui/sign-in?next=${encodeURIComponent(`/ui/runs/${run.id}`)}`, fx.tokens.operator, `${base}/ui/runs/${run.id}`)

  await page.getByText('Allow this for 1 h…').click()
  await page.getByRole('button', { name: 'Approve with your passkey and allow this for 1 h' }).click()
  await page.waitForURL(/\/ui\/grants\?done=sign/)
  const main = page.locator('main')
  t.match(await main.innerText(), 'waits for passkey signatures over its digest')
  const grant = (await app.inject({ method: 'GET', url: '/v1/grants', headers: auth(fx.tokens.operator) })).json().grants[0]
  t.match(grant, { status: 'pending', passkey_required: true, quorum: 2, approvals: [], principal: 'agent-1', action: 'testops.restart' })
  const runNow = (await app.inject({ method: 'GET', url: `/v1/runs/${run.id}`, headers: auth(fx.tokens.operator) })).json()
  t.match(runNow.approval.approvals, [{ by: 'ops-1', passkey: { credential_id: ops1.credentialId } }], 'the run was approved with the passkey over its binding')
  t.comment(`portal: "Approve with your passkey and allow this for 1 h" on ${run.id} → run approved by ops-1 (passkey), grant ${grant.id} pending, 0 of 2 passkeys`)

  const row = page.locator(`#grant-${grant.id}`)
  await row.getByRole('button', { name: 'Sign with your passkey' }).click()
  await page.waitForURL(/\/ui\/grants\?done=approved/)
  const rowText = await page.locator(`#grant-${grant.id}`).innerText()
  t.match(rowText, /ops-1 \(passkey\) \(1 of 2 passkey signatures\)/)
  t.match(rowText, 'You approved it; it waits for 1 more from other approvers.')
  t.equal(await row.getByRole('button', { name: 'Sign with your passkey' }).count(), 0, 'no second signature offered to the one who signed')
  const signed = (await app.inject({ method: 'GET', url: `/v1/grants/${grant.id}`, headers: auth(fx.tokens.operator) })).json()
  t.match(signed, { status: 'pending', approvals: [{ by: 'ops-1', passkey: ops1.credentialId }] })
  await page.screenshot({ path: join(artifactsDir(), 'grant-passkey-390.png'), fullPage: true })

  const second = await app.inject({ method: 'POST', url: `/v1/grants/${grant.id}/approve`, headers: auth(fx.tokens.operator2), payload: { digest: grant.digest, passkey: ops2.assert(bindingChallenge(grant.digest)) } })
  t.match(second.json(), { status: 'active' }, second.body)
  t.comment(`ops-1 signed grant ${grant.id} in the browser, ops-2 over REST → ${second.json().status}`)

  const covered = await agentRun('the worker hangs again')
  t.match(covered, { grant: { id: grant.id } }, 'the next request runs under the grant')
  const done = await eventually(async () => {
    const r = (await app.writ.store.get(covered.id))?.run
    return r?.status === 'succeeded' ? r : undefined
  }, 20_000, 'the covered run to succeed')
  const journal = runnerJournal(fx, NODE)
  t.match(journal.find((e) => e.type === 'accepted' && e.run_id === covered.id)?.data, {
    grant: grant.id, passkeys: { verified: [{ by: 'ops-1', credential_id: ops1.credentialId }, { by: 'ops-2', credential_id: ops2.credentialId }] },
  }, 'the runner verified the browser\'s passkey and ops-2\'s over the grant\'s digest')
  const stored = await app.writ.grants.get(grant.id)
  const clientData = JSON.parse(Buffer.from(stored.approvals[0]!.passkey!.client_data_json, 'base64url').toString()) as { challenge: string, origin: string }
  t.same({ challenge: clientData.challenge, origin: clientData.origin }, { challenge: bindingChallenge(grant.digest), origin: base }, 'the browser signed the grant\'s digest on the portal\'s origin')
  t.comment(`agent-1's next restart ran under ${grant.id} → ${done.status}; runner journal: passkeys.verified = [ops-1, ops-2] over the grant's digest`)
})

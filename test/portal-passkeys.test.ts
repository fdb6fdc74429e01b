/**
 * Passkey-signed approvals end to end, in the real browser with Chromium's
 * virtual authenticator: an operator registers a passkey on the portal, an
 * administrator publishes the approver registry with the writ CLI (signed
 * with the approvers key), the runner and the control plane pick it up from
 * the file, and the operator approves `nomad.alloc_stop` with the passkey —
 * the control plane checks the assertion, the writ carries it, and the runner
 * verifies it itself before it stops exactly that allocation, once.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildApp, parseConfig, type AuditEvent } from '@writ/control-plane'
import { freePort, startNatsServer } from './helpers/nats-server.js'
import { auth, makeCpFixture, runnerJournal } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'
import { REPO_ROOT, STOCK_PACKS } from './helpers/runner-harness.js'
import { allocationLike, startNomadDouble } from './doubles/nomad-api.js'
import { artifactsDir, launchBrowser, pageWithAuthenticator, signInWithToken } from './helpers/browser.js'

const CLI = join(REPO_ROOT, 'control-plane', 'dist', 'cli.js')
const NODE = 'nomad-client-7'
const ALLOC = '7d3f1c2a-4b5e-6f70-8192-a3b4c5d6e7fa'

function writ(args: string[], env: Record<string, string>): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr })
    })
  })
}

t.test('register a passkey, publish the registry, approve nomad.alloc_stop with it; the runner verifies and runs it', async (t) => {
  const transcript: string[] = []
  const note = (line: string): void => { transcript.push(line) }
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const nomad = await startNomadDouble({ extraAllocs: [allocationLike({ id: ALLOC, nodeId: NODE, jobId: 'victoria-metrics', taskGroup: 'storage' })] })
  t.teardown(() => nomad.close())
  const fx = makeCpFixture(nats.url)
  t.teardown(() => fx.cleanup())

  // The administrator's side: an approvers key pair (not the dispatch key) and a policy.
  const keys = await writ(['keys', 'approvers', '--out', fx.dir], {})
  t.equal(keys.code, 0, keys.stderr)
  const approversKey = join(fx.dir, 'writ-approvers.pem')
  const approversPub = join(fx.dir, 'writ-approvers.pub.pem')
  const policy = join(fx.dir, 'approvers-policy.yaml')
  writeFileSync(policy, 'require:\n  min_risk: high\n  default: { groups: [oncall], quorum: 1 }\n')
  const registry = join(fx.dir, 'approvers.json')

  // WebAuthn needs a host name: the portal is http://localhost (a secure context), listening on loopback.
  const port = await freePort()
  const base = `http://localhost:${port}`
  const config = parseConfig({
    ...fx.config, listen: { host: '127.0.0.1', port }, public_url: base,
    packs: { dirs: [...fx.config.packs.dirs, STOCK_PACKS] },
    passkeys: { registry_file: registry, approvers_key_file: approversPub, reload_interval: '200ms' },
    // agent-2's stops need two approvers, or one breaking the glass (the registry's quorum is one passkey).
    policy: { ...fx.config.policy, rules: [
      { name: 'agent-2-stops-need-two', match: { actions: ['nomad.alloc_stop'], principals: ['agent-2'] }, decision: 'require_approval', approver_groups: ['oncall'], quorum: 2, ttl: '15m', break_glass: true },
      ...fx.config.policy.rules,
    ] },
  })
  const app = await buildApp(config)
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port })
  const admin = { WRIT_URL: base, WRIT_TOKEN: fx.tokens.operator2 }
  const exportRegistry = () => writ(['approvers', 'export', '--key', approversKey, '--policy', policy, '--out', registry], admin)

  const first = await exportRegistry()
  t.equal(first.code, 0, first.stderr)
  t.match(first.stderr, 'the registry names no approver, so runners refuse every action at or above high risk')
  note(`$ writ approvers export (nothing registered yet)\n${first.stdout.trim()}\n${first.stderr.trim()}`)

  const runner = await startRealRunner(fx, nats.url, NODE, { packDirs: config.packs.dirs, nomadAddr: nomad.addr, approversRegistry: registry, approversKeys: [approversPub], approversReloadMs: 200 })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find(NODE)?.online, 10_000, 'runner heartbeat')
  await eventually(() => app.writ.passkeys?.registry, 10_000, 'the control plane to load the published registry')

  const agentRun = async (reason: string) => {
    const res = await fetch(`${base}/v1/runs`, {
      method: 'POST', headers: { ...auth(fx.tokens.agent), 'content-type': 'application/json' },
      body: JSON.stringify({ node: NODE, action: 'nomad.alloc_stop', args: { alloc_id: ALLOC }, reason }),
    })
    return res.json() as Promise<{ id: string, status: string, approval: { url: string, passkey_required: boolean, binding: string } }>
  }

  const browser = await launchBrowser()
  t.teardown(() => browser.close())
  const { page, cdp, authenticatorId } = await pageWithAuthenticator(browser)

  // Signed in onto the Passkeys page (the inbox reloads itself whenever a run arrives).
  await signInWithToken(page, `${base}/ui/sign-in?next=%2Fui%2Fpasskeys`, fx.tokens.operator, `${base}/ui/passkeys`)

  await t.test('before a passkey is published, the run page cannot approve and says why', async (t) => {
    const early = await agentRun('stop it before it overwrites the restored data')
    t.match(early, { status: 'pending_approval', approval: { passkey_required: true } })
    await page.goto(early.approval.url)
    t.match(await page.locator('#passkey-needed').innerText(), 'none of your passkeys is in the published approver registry')
    t.equal(await page.getByRole('button', { name: /^Approve/ }).count(), 0, 'no approve button')
    const rest = await fetch(`${base}/v1/runs/${early.id}/approve`, { method: 'POST', headers: { ...auth(fx.tokens.operator), 'content-type': 'application/json' }, body: '{}' })
    const body = await rest.json() as { error: { code: string, message: string } }
    t.equal(rest.status, 403)
    t.equal(body.error.code, 'WRIT_ERR_PASSKEY_REQUIRED', body.error.message)
    note(`POST /v1/runs/${early.id}/approve without a passkey → ${rest.status} ${body.error.code}: ${body.error.message}`)
    const cli = await writ(['approve', early.id], { WRIT_URL: base, WRIT_TOKEN: fx.tokens.operator })
    t.equal(cli.code, 2)
    t.match(cli.stderr, 'WRIT_ERR_PASSKEY_REQUIRED')
  })

  await t.test('the operator registers a passkey on the portal; it waits for the registry', async (t) => {
    await page.getByRole('link', { name: 'Passkeys' }).click()
    await page.waitForURL(`${base}/ui/passkeys`)
    t.match(await page.locator('main').innerText(), 'You have not registered a passkey.')
    await page.getByLabel('Name it (which device it is)').fill('phone')
    await page.getByRole('button', { name: 'Register a passkey' }).click()
    await page.waitForURL(`${base}/ui/passkeys?registered=1`)
    const text = await page.locator('main').innerText()
    t.match(text, 'Passkey registered')
    t.match(text, /phone .* not published yet/s)
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId })
    t.equal(credentials.length, 1, 'the authenticator holds one credential')
    const stored = await app.writ.passkeys!.store.listFor('ops-1')
    t.equal(stored.length, 1)
    t.equal(Buffer.from(credentials[0]!.credentialId, 'base64').toString('base64url'), stored[0]!.credential_id, 'the portal stored the credential the authenticator made')
    note(`ops-1 registered passkey ${stored[0]!.credential_id.slice(0, 16)}… "phone" on ${base}/ui/passkeys (Chromium virtual authenticator, user verified)`)
    await page.screenshot({ path: join(artifactsDir(), 'passkeys-page-390.png'), fullPage: true })
  })

  await t.test('the administrator publishes the registry; runner and control plane reload it', async (t) => {
    const before = runner.approverRegistry()?.issued_at
    const second = await exportRegistry()
    t.equal(second.code, 0, second.stderr)
    t.match(second.stdout, /^\+ ops-1 \[oncall\] passkey .* "phone"/m, 'the export shows what it adds')
    note(`$ writ approvers export\n${second.stdout.trim()}`)
    const signed = JSON.parse(readFileSync(registry, 'utf8')) as { key_id: string, registry: { approvers: Array<{ operator: string }> } }
    t.not(signed.key_id, app.writ.dispatcher.keyId, 'signed with the approvers key, not the dispatch key')
    await eventually(() => runner.approverRegistry()?.issued_at !== before && runner.approverRegistry()?.approvers.length === 1, 10_000, 'the runner to reload the registry')
    await eventually(() => app.writ.passkeys?.registry?.approvers.length === 1, 10_000, 'the control plane to reload the registry')
    await page.reload()
    t.match(await page.locator('main').innerText(), 'published: it can sign approvals')
  })

  await t.test('approving with the passkey: the control plane checks it, the runner verifies it and stops the allocation once', async (t) => {
    const stop = await agentRun('victoria-metrics writes into a volume that was just reformatted')
    t.match(stop, { status: 'pending_approval', approval: { passkey_required: true } })
    await page.goto(stop.approval.url)
    const approve = page.getByRole('button', { name: 'Approve with your passkey' })
    t.ok(await approve.isVisible(), 'the page asks for the passkey')
    t.equal(nomad.requests.filter((r) => r.method === 'POST').length, 0, 'nothing stopped yet')
    await page.getByLabel('Comment (optional)').fill('signed with my passkey')
    await approve.click()
    await page.waitForURL(`${stop.approval.url}?done=1`)
    const done = await eventually(async () => {
      const r = (await app.writ.store.get(stop.id))?.run
      return r?.status === 'succeeded' ? r : undefined
    }, 20_000, 'the stop to run')
    const credential = (await app.writ.passkeys!.store.listFor('ops-1'))[0]!.credential_id
    t.match(done.approval?.approvals, [{ by: 'ops-1', comment: 'signed with my passkey', passkey: { credential_id: credential } }])
    t.same(nomad.requests.filter((r) => r.method === 'POST').map((r) => r.path), [`/v1/allocation/${ALLOC}/stop`], 'the Nomad double received exactly one stop, for that allocation')

    const clientData = JSON.parse(Buffer.from(done.approval!.approvals[0]!.passkey!.client_data_json, 'base64url').toString()) as { type: string, challenge: string, origin: string }
    t.same(clientData, { ...clientData, type: 'webauthn.get', challenge: Buffer.from(stop.approval.binding, 'hex').toString('base64url'), origin: base }, 'the browser signed the run\'s binding digest, on the portal\'s origin')
    const journal = runnerJournal(fx, NODE)
    const accepted = journal.find((e) => e.type === 'accepted' && e.run_id === stop.id)
    t.match(accepted?.data, { approvals: [{ by: 'ops-1', passkey: credential }], passkeys: { verified: [{ by: 'ops-1', credential_id: credential }] } }, 'the runner journaled the passkey it verified')
    const audit = (await (await fetch(`${base}/v1/audit?run_id=${stop.id}`, { headers: auth(fx.tokens.operator) })).text()).trim().split('\n').map((l) => JSON.parse(l) as AuditEvent)
    t.match(audit.find((e) => e.type === 'approval.granted'), { actor: { id: 'ops-1' }, data: { passkey: credential, quorum_met: true } })
    note(`ops-1 approved run ${stop.id} with the passkey (challenge = binding ${stop.approval.binding.slice(0, 16)}…, origin ${clientData.origin}); runner journal: passkeys.verified = [ops-1 ${credential.slice(0, 16)}…]; run ${done.status}; Nomad: POST /v1/allocation/${ALLOC}/stop × 1`)
    await page.reload()
    t.match(await page.locator('main').innerText(), /ops-1 \(passkey\)/)
    await page.screenshot({ path: join(artifactsDir(), 'run-page-passkey-390.png'), fullPage: true })
  })

  await t.test('breaking the glass on the run page signs with the passkey; the runner verifies it and stops the allocation', async (t) => {
    const res = await fetch(`${base}/v1/runs`, {
      method: 'POST', headers: { ...auth(fx.tokens.agent2), 'content-type': 'application/json' },
      body: JSON.stringify({ node: NODE, action: 'nomad.alloc_stop', args: { alloc_id: ALLOC }, reason: 'the writer is back and the second approver is unreachable' }),
    })
    const run = await res.json() as { id: string, approval: { url: string, quorum: number, passkey_required: boolean } }
    t.match(run, { approval: { quorum: 2, passkey_required: true } })
    const stopsBefore = nomad.requests.filter((r) => r.method === 'POST').length
    await page.goto(run.approval.url)
    await page.getByText('Break the glass…').click()
    await page.getByLabel('Why the quorum cannot be reached').fill('ops-2 is unreachable and the writer keeps overwriting the volume')
    await page.getByRole('checkbox', { name: /I run .* alone/ }).check()
    await page.getByRole('button', { name: /Break the glass with your passkey/ }).click()
    await page.waitForURL(`${run.approval.url}?done=1`)
    const done = await eventually(async () => {
      const r = (await app.writ.store.get(run.id))?.run
      return r?.status === 'succeeded' ? r : undefined
    }, 20_000, 'the break-glass stop to run')
    const credential = (await app.writ.passkeys!.store.listFor('ops-1'))[0]!.credential_id
    t.match(done.approval?.approvals, [{ by: 'ops-1', break_glass: true, passkey: { credential_id: credential } }], 'one approval, flagged break-glass, signed with the passkey')
    t.equal(nomad.requests.filter((r) => r.method === 'POST').length, stopsBefore + 1, 'Nomad received the one stop')
    const accepted = runnerJournal(fx, NODE).find((e) => e.type === 'accepted' && e.run_id === run.id)
    t.match(accepted?.data, { passkeys: { verified: [{ by: 'ops-1', credential_id: credential }] } }, 'the runner verified the break-glass passkey')
    note(`ops-1 broke the glass on run ${run.id} (policy quorum 2) from the run page, signing with the passkey; runner journal: passkeys.verified = [ops-1]; run ${done.status}`)
  })

  await t.test('a forged assertion over REST is refused before anything is recorded', async (t) => {
    const run = await agentRun('one more stop')
    const credential = (await app.writ.passkeys!.store.listFor('ops-1'))[0]!.credential_id
    const forged = { credential_id: credential, authenticator_data: 'AAAA', client_data_json: Buffer.from(JSON.stringify({ type: 'webauthn.get', challenge: Buffer.from(run.approval.binding, 'hex').toString('base64url'), origin: base })).toString('base64url'), signature: 'AAAA' }
    const res = await fetch(`${base}/v1/runs/${run.id}/approve`, { method: 'POST', headers: { ...auth(fx.tokens.operator), 'content-type': 'application/json' }, body: JSON.stringify({ passkey: forged }) })
    const body = await res.json() as { error: { code: string, message: string } }
    t.equal(res.status, 403)
    t.equal(body.error.code, 'WRIT_ERR_PASSKEY_REJECTED', body.error.message)
    t.equal((await app.writ.store.get(run.id))?.run.status, 'pending_approval', 'nothing was recorded')
    note(`POST /v1/runs/${run.id}/approve with a forged assertion → ${res.status} ${body.error.code}: ${body.error.message}`)
  })

  t.comment(`passkey browser transcript:\n${transcript.join('\n')}`)
})

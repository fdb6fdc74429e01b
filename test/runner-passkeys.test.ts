/**
 * The runner as the last line against a compromised control plane: writs for
 * `nomad.alloc_stop` correctly signed with the dispatch key, whose approvals
 * do not carry a valid quorum of passkey signatures from the approver
 * registry, are refused with a typed reason, journaled, and stop nothing. The
 * registry itself is refused at load when its signature is bad or made with
 * the dispatch key, and followed on disk when an administrator republishes it.
 */
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { pino } from 'pino'
import { approvalBinding, generateSigningKeyPair, loadSigningKey, signWrit, type ApprovalRef, type Writ } from '@writ/packs/protocol'
import { bindingChallenge, signApproverRegistry, type ApproverRegistryInput } from '@writ/packs/approvers'
import { loadRunnerConfig, startNodeRunner } from '@writ/node-runner'
import { startRunnerHarness, REPO_ROOT, STOCK_PACKS, type RunnerHarness } from './helpers/runner-harness.js'
import { allocationLike, startNomadDouble, type NomadDouble } from './doubles/nomad-api.js'
import { publishRegistry, registryOf, testApprover, TEST_RP } from './helpers/approver-registry.js'
import { createSoftwareAuthenticator } from './helpers/software-authenticator.js'
import { eventually } from './helpers/cp-fake-runner.js'

const pexec = promisify(execFile)
const ALLOC = '0b9f3c1e-2d4a-4b6c-8e0f-1a2b3c4d5e6f'
/** The runner's Nomad node id: the allocation runs here, so the runner's locality check lets the stop through. */
const NODE = '5e0d9a41-7c3b-4f28-9a61-2b8c4d7e1f03'

const dir = mkdtempSync(join(tmpdir(), 'writ-passkeys-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const approversPair = generateSigningKeyPair()
const approversKey = loadSigningKey(approversPair.privatePem)
const approversPub = join(dir, 'approvers.pub.pem')
writeFileSync(approversPub, approversPair.publicPem)
const registryFile = join(dir, 'approvers.json')

const ops1 = testApprover('ops-1', ['oncall'], { person: 'alex', principals: ['ops-1', 'agent-alex'] })
const ops2 = testApprover('ops-2', ['oncall'])
const dev1 = testApprover('dev-1', ['developers'])
const stranger = createSoftwareAuthenticator({ rpId: TEST_RP.id, origin: TEST_RP.origins[0] as string })
const quorumOne: ApproverRegistryInput['require'] = { min_risk: 'high', default: { groups: ['oncall'], quorum: 1 }, rules: [] }
const quorumTwo: ApproverRegistryInput['require'] = { min_risk: 'high', default: { groups: ['oncall'], quorum: 1 }, rules: [{ actions: ['nomad.alloc_stop'], quorum: 2 }] }
publishRegistry(registryFile, registryOf([ops1, ops2, dev1], quorumOne, new Date(Date.now() - 60_000)), approversKey)

let h: RunnerHarness
let nomad: NomadDouble
/** What the runner logged (it says when it refuses a registry replacement). */
const logLines: string[] = []
t.before(async () => {
  nomad = await startNomadDouble({ extraAllocs: [allocationLike({ id: ALLOC, nodeId: NODE, jobId: 'victoria-metrics', taskGroup: 'storage' })] })
  const log = pino({ level: 'info' }, { write: (line: string) => { logLines.push(line) } })
  h = await startRunnerHarness({ log, nodeId: NODE, extraConfig: { nomadAddr: nomad.addr, approversRegistry: registryFile, approversKeys: [approversPub], approversReloadMs: 100 } })
})
t.teardown(async () => { await h?.stop(); await nomad?.close() })

const stops = (): number => nomad.requests.filter((r) => r.method === 'POST').length
const journal = (): Array<{ type: string, run_id: string, data: Record<string, any> }> =>
  readFileSync(h.journal, 'utf8').trim().split('\n').map((l) => JSON.parse(l))

/** A writ for the stop, and an approval by `who` whose passkey signs `signed` (default: this writ's binding). */
function stopWrit(over: Partial<Writ> = {}): Writ {
  return h.writ('nomad.alloc_stop', { alloc_id: ALLOC }, { reason: 'victoria-metrics writes into a reformatted volume', ...over })
}
function approvedBy(writ: Writ, who: { operator: string, passkey: { assert(c: string): ApprovalRef['passkey'] } }, signed = approvalBinding(writ)): ApprovalRef {
  return { by: who.operator, at: new Date().toISOString(), binding: approvalBinding(writ), passkey: who.passkey.assert(bindingChallenge(signed)) }
}
function withApprovals(writ: Writ, make: (w: Writ) => ApprovalRef[]): Writ {
  return { ...writ, approvals: make(writ) }
}

t.test('a stop approved with a registered passkey over its own binding runs, and the journal names the passkey', async (t) => {
  const writ = withApprovals(stopWrit(), (w) => [approvedBy(w, ops1)])
  const before = stops()
  const ack = await h.send(signWrit(writ, h.key))
  t.ok(ack.accepted, JSON.stringify(ack))
  await eventually(() => stops() === before + 1, 10_000, 'the stop to reach Nomad')
  const accepted = journal().find((e) => e.type === 'accepted' && e.run_id === writ.run_id)
  t.match(accepted?.data, { approvals: [{ by: 'ops-1', passkey: ops1.passkey.credentialId }], passkeys: { verified: [{ by: 'ops-1', credential_id: ops1.passkey.credentialId }] } })
  t.notOk(JSON.stringify(accepted).includes('client_data_json'), 'the journal keeps the credential, not the whole assertion')
})

t.test('the compromised control plane: signed writs without a valid passkey quorum are refused, journaled, and stop nothing', async (t) => {
  const other = stopWrit({ reason: 'another run entirely' })
  const cases: Array<{ name: string, code: string, writ: () => Writ }> = [
    { name: '(a) no assertion: the approval only claims ops-1', code: 'passkey_required', writ: () => withApprovals(stopWrit(), (w) => [{ by: 'ops-1', at: new Date().toISOString(), binding: approvalBinding(w) }]) },
    { name: '(a) no approval at all', code: 'passkey_required', writ: () => stopWrit() },
    { name: '(b) an assertion ops-1 gave for another run', code: 'bad_passkey', writ: () => withApprovals(stopWrit(), (w) => [approvedBy(w, ops1, approvalBinding(other))]) },
    { name: '(c) an assertion from a credential not in the registry', code: 'unknown_approver', writ: () => withApprovals(stopWrit(), (w) => [approvedBy(w, { operator: 'ops-2', passkey: stranger })]) },
    { name: '(c) ops-1\'s passkey presented as ops-2\'s approval', code: 'unknown_approver', writ: () => withApprovals(stopWrit(), (w) => [approvedBy(w, { operator: 'ops-2', passkey: ops1.passkey })]) },
    { name: '(d) approved by the requester', code: 'self_approval', writ: () => withApprovals(stopWrit({ requester: { id: 'ops-1', kind: 'operator' } }), (w) => [approvedBy(w, ops1)]) },
    { name: '(d) approved by the person behind the requesting agent', code: 'self_approval', writ: () => withApprovals(stopWrit({ requester: { id: 'agent-alex', kind: 'agent' } }), (w) => [approvedBy(w, ops1)]) },
    { name: 'an approver outside the allowed groups', code: 'quorum_not_met', writ: () => withApprovals(stopWrit(), (w) => [approvedBy(w, dev1)]) },
  ]
  const before = stops()
  const transcript: string[] = []
  for (const c of cases) {
    const writ = c.writ()
    const ack = await h.send(signWrit(writ, h.key))
    t.equal(ack.accepted, false, `${c.name}: refused`)
    if (!ack.accepted) {
      t.equal(ack.refusal.code, c.code, `${c.name}: ${c.code}`)
      transcript.push(`${c.name}: ${ack.refusal.code} — ${ack.refusal.message}`)
    }
    const entry = await eventually(() => journal().find((e) => e.type === 'refused' && e.run_id === writ.run_id), 5000, `${c.name} journaled`)
    t.match(entry.data, { code: c.code, message: String }, `${c.name}: journaled with its reason`)
  }

  // (e): the administrator raises the stop to two approvers; the runner follows the file.
  const published = new Date()
  publishRegistry(registryFile, registryOf([ops1, ops2, dev1], quorumTwo, published), approversKey)
  await eventually(() => h.runner.approverRegistry()?.issued_at === published.toISOString(), 10_000, 'the runner to load the republished registry')
  const one = withApprovals(stopWrit(), (w) => [approvedBy(w, ops1)])
  const ack = await h.send(signWrit(one, h.key))
  t.equal(ack.accepted, false, '(e) one valid assertion where quorum is 2: refused')
  if (!ack.accepted) {
    t.equal(ack.refusal.code, 'quorum_not_met')
    transcript.push(`(e) one valid assertion where quorum is 2: ${ack.refusal.code} — ${ack.refusal.message}`)
  }
  await eventually(() => journal().find((e) => e.type === 'refused' && e.run_id === one.run_id && e.data.code === 'quorum_not_met'), 5000, '(e) journaled')
  // (f) the same one approval flagged break-glass: the control plane's policy cannot lower a quorum the registry does not let it.
  const glass = withApprovals(stopWrit(), (w) => [{ ...approvedBy(w, ops1), break_glass: true as const }])
  const glassAck = await h.send(signWrit(glass, h.key))
  t.equal(glassAck.accepted, false, '(f) one break-glass passkey where the registry allows no break-glass: refused')
  if (!glassAck.accepted) {
    t.equal(glassAck.refusal.code, 'quorum_not_met')
    t.match(glassAck.refusal.message, /does not allow break-glass/)
    transcript.push(`(f) one break-glass approval where the registry allows none: ${glassAck.refusal.code} — ${glassAck.refusal.message}`)
  }
  t.equal(stops(), before, 'no refused writ reached Nomad')
  t.comment(`runner refusals:\n${transcript.join('\n')}`)

  const two = withApprovals(stopWrit(), (w) => [approvedBy(w, ops1), approvedBy(w, ops2)])
  t.ok((await h.send(signWrit(two, h.key))).accepted, 'two distinct oncall passkeys make the quorum')
  await eventually(() => stops() === before + 1, 10_000, 'the stop to reach Nomad')
  // Back to one approver for the tests below, once the runner has it.
  const back = new Date()
  publishRegistry(registryFile, registryOf([ops1, ops2, dev1], quorumOne, back), approversKey)
  await eventually(() => h.runner.approverRegistry()?.issued_at === back.toISOString(), 10_000, 'the runner to load the quorum-one registry again')
})

t.test('an assertion that fails one WebAuthn check is refused as bad_passkey', async (t) => {
  const overrides = [
    { name: 'no user verification', over: { userVerified: false }, says: /verif/i },
    { name: 'another origin', over: { origin: 'https://evil.example' }, says: /origin/ },
    { name: 'another relying party', over: { rpId: 'evil.example' }, says: /RP ID/i },
    { name: 'a registration, not an assertion', over: { type: 'webauthn.create' }, says: /type/ },
  ]
  for (const o of overrides) {
    const writ = withApprovals(stopWrit(), (w) => [{ by: 'ops-1', at: new Date().toISOString(), binding: approvalBinding(w), passkey: ops1.passkey.assert(bindingChallenge(approvalBinding(w)), o.over) }])
    const ack = await h.send(signWrit(writ, h.key))
    t.equal(ack.accepted, false, `${o.name}: refused`)
    if (!ack.accepted) { t.equal(ack.refusal.code, 'bad_passkey', o.name); t.match(ack.refusal.message, o.says) }
  }
  const tampered = withApprovals(stopWrit(), (w) => {
    const a = approvedBy(w, ops1)
    const sig = Buffer.from(a.passkey!.signature, 'base64url')
    sig[sig.length - 1] = (sig[sig.length - 1] as number) ^ 1
    return [{ ...a, passkey: { ...a.passkey!, signature: sig.toString('base64url') } }]
  })
  const ack = await h.send(signWrit(tampered, h.key))
  t.equal(ack.accepted, false, 'a tampered signature: refused')
  if (!ack.accepted) t.equal(ack.refusal.code, 'bad_passkey')
})

t.test('a low-risk action needs no passkey, and a redelivered writ under check is a replay', async (t) => {
  const { ack, result } = await h.run('canary.echo', { text: 'no passkey needed' })
  t.ok(ack.accepted)
  t.equal(result?.status, 'succeeded')
  const writ = withApprovals(stopWrit(), (w) => [approvedBy(w, ops1)])
  const signed = signWrit(writ, h.key)
  const before = stops()
  const [first, second] = await Promise.all([h.send(signed), h.send(signed)])
  t.same([first.accepted, second.accepted].sort(), [false, true], 'exactly one delivery is accepted')
  const refused = [first, second].find((a) => !a.accepted)
  if (refused && !refused.accepted) t.equal(refused.refusal.code, 'replayed')
  await eventually(() => stops() === before + 1, 10_000, 'the stop')
  t.equal(stops(), before + 1, 'it ran once')
})

t.test('a registry replacement that does not verify, or is older, is refused and the one in force stays', async (t) => {
  const inForce = await eventually(() => h.runner.approverRegistry()?.approvers.length === 3 && h.runner.approverRegistry()?.issued_at, 10_000, 'the quorum-one registry')
  const refusals = (): string[] => logLines.filter((l) => l.includes('approver registry replacement refused'))
  const seen = refusals().length
  writeFileSync(registryFile, readFileSync(registryFile, 'utf8').replace('"oncall"', '"everyone"'))
  const tampered = await eventually(() => refusals()[seen], 10_000, 'the runner to look at the tampered file')
  t.match(tampered, /bad signature/)
  t.equal(h.runner.approverRegistry()?.issued_at, inForce, 'a tampered file is not loaded')
  publishRegistry(registryFile, registryOf([ops1], quorumOne, new Date(Date.parse(inForce) - 3600_000)), approversKey)
  const older = await eventually(() => refusals()[seen + 1], 10_000, 'the runner to look at the older file')
  t.match(older, /issued .* before the one in force/)
  t.equal(h.runner.approverRegistry()?.issued_at, inForce, 'an older registry is not loaded')
  t.equal(h.runner.approverRegistry()?.approvers.length, 3)
})

t.test('a registry with a bad signature, or signed by the dispatch key, is rejected at load with a clear error', async (t) => {
  const file = join(dir, 'load-test.json')
  const start = (registry: string, keys = [approversPub]) => {
    writeFileSync(file, registry)
    return startNodeRunner(loadRunnerConfig({}, {
      WRIT_NATS_URL: h.nats.url, WRIT_NODE_ID: 'load-test', WRIT_PACKS: STOCK_PACKS, WRIT_TRUSTED_KEYS: join(h.dir, 'trusted.pem'),
      WRIT_JOURNAL: join(dir, 'load-journal.jsonl'), WRIT_APPROVERS_REGISTRY: file, WRIT_APPROVERS_KEYS: keys.join(':'),
    }), pino({ level: 'silent' }))
  }
  const good = signApproverRegistry(registryOf([ops1], quorumOne), approversKey)
  const badSig = JSON.stringify({ ...good, registry: { ...good.registry, approvers: [{ ...good.registry.approvers[0], groups: ['everyone'] }] } })
  await t.rejects(start(badSig), { name: 'ApproverRegistryError', message: /bad signature: it does not verify against approvers key .* changed after it was signed/ })
  await t.rejects(start(JSON.stringify(signApproverRegistry(registryOf([ops1], quorumOne), h.key))), { name: 'ApproverRegistryError', message: /signed with dispatch key [0-9a-f]{16} .* must be signed with the separate approvers key/ })
  await t.rejects(start(JSON.stringify(signApproverRegistry(registryOf([ops1], quorumOne), loadSigningKey(generateSigningKeyPair().privatePem)))), { message: /signed with key [0-9a-f]{16}, not with the approvers key/ })
  await t.rejects(start(JSON.stringify(good), [join(h.dir, 'trusted.pem')]), { message: /approvers key [0-9a-f]{16} is also a dispatch key/ })
  await t.rejects(start(''), { message: /is empty: publish one with writ approvers export/ })
  await t.rejects(start('{"registry": {}}'), { message: /does not match the registry format at registry\./ })

  // The daemon says so and exits 2, before it connects anywhere.
  writeFileSync(file, badSig)
  const cli = join(REPO_ROOT, 'node-runner', 'dist', 'cli.js')
  const run = await pexec(process.execPath, [cli, 'run', '--nats-url', 'nats://127.0.0.1:1', '--node-id', 'x', '--packs', STOCK_PACKS, '--trusted-keys', join(h.dir, 'trusted.pem'),
    '--journal', join(dir, 'cli-journal.jsonl'), '--approvers-registry', file, '--approvers-key', approversPub]).then(() => ({ code: 0, stderr: '' }), (e: { code: number, stderr: string }) => e)
  t.equal(run.code, 2, 'exit code 2')
  t.match(run.stderr, /writ-node-runner: approver registry .*load-test\.json has a bad signature/)
  t.comment(`the runner's answer: ${run.stderr.trim()}`)
})

t.test('a plan target: passkeys must have signed the plan binding over its root, as the runner recomputes it', async (t) => {
  const { buildTestPlan } = await import('./helpers/plan-writs.js')
  const target = { node_id: NODE, action: 'nomad.alloc_stop', pack: 'nomad', pack_digest: h.digestOf('nomad'), args: { alloc_id: ALLOC } }
  const other = { ...target, node_id: 'some-other-node' }
  const before = stops()
  const plan = buildTestPlan(h.key, [other, target])
  const good = await h.send(plan.envelope(1, {}, [{ by: 'ops-1', at: new Date().toISOString(), binding: plan.binding, passkey: ops1.passkey.assert(bindingChallenge(plan.binding)) }]))
  t.equal(good.accepted, true, good.accepted ? '' : good.refusal.message)
  await eventually(() => stops() === before + 1, 10_000, 'the approved stop')
  // A compromised control plane re-labels a passkey signature given for another plan's root.
  const elsewhere = buildTestPlan(h.key, [other])
  const forged = buildTestPlan(h.key, [other, target])
  const refused = await h.send(forged.envelope(1, {}, [{ by: 'ops-1', at: new Date().toISOString(), binding: forged.binding, passkey: ops1.passkey.assert(bindingChallenge(elsewhere.binding)) }]))
  t.equal(refused.accepted ? undefined : refused.refusal.code, 'bad_passkey', refused.accepted ? '' : refused.refusal.message)
  const unsigned = buildTestPlan(h.key, [other, target])
  const none = await h.send(unsigned.envelope(1, {}, [{ by: 'ops-1', at: new Date().toISOString(), binding: unsigned.binding }]))
  t.equal(none.accepted ? undefined : none.refusal.code, 'passkey_required')
  t.equal(stops(), before + 1, 'nothing but the signed plan stopped anything')
})

/**
 * A standing grant for an action the approver registry gates: the grant's
 * approvals stand for the run's, so the runner verifies their passkeys itself
 * — each an assertion over the grant's digest from a registered approver who
 * is not the principal the grant is for, enough distinct people for the
 * registry's quorum. Writs correctly signed with the dispatch key (a
 * compromised control plane) whose grant lacks that are refused with a typed
 * code, journaled, and run nothing; one use of a grant is never spent twice
 * while passkeys are being checked.
 */
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { generateSigningKeyPair, grantDigest, loadSigningKey, signGrant, signWrit, type GrantApprovalRef, type GrantTerms, type SignedGrant } from '@writ/packs/protocol'
import { bindingChallenge, type ApproverRegistryInput } from '@writ/packs/approvers'
import { startRunnerHarness, type RunnerHarness } from './helpers/runner-harness.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { publishRegistry, registryOf, testApprover, type TestApprover } from './helpers/approver-registry.js'

const dir = mkdtempSync(join(tmpdir(), 'writ-grant-passkeys-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const approversPair = generateSigningKeyPair()
const approversPub = join(dir, 'approvers.pub.pem')
writeFileSync(approversPub, approversPair.publicPem)
const registryFile = join(dir, 'approvers.json')

const AGENT = 'agent-test'
const ops1 = testApprover('ops-1', ['oncall'])
const ops2 = testApprover('ops-2', ['oncall'])
// The person behind the agent also operates: their passkey never approves a grant for their own agent.
const pat = testApprover('pat-ops', ['oncall'], { person: 'pat', principals: ['pat-ops', AGENT] })
// canary.mark changes state (it creates a file), so this registry gates it, with a quorum of two.
const require: ApproverRegistryInput['require'] = { default: { groups: ['oncall'], quorum: 1 }, rules: [{ actions: ['canary.mark'], quorum: 2 }] }
publishRegistry(registryFile, registryOf([ops1, ops2, pat], require, new Date(Date.now() - 60_000)), loadSigningKey(approversPair.privatePem))

let h: RunnerHarness
t.before(async () => {
  h = await startRunnerHarness({ extraConfig: { approversRegistry: registryFile, approversKeys: [approversPub], approversReloadMs: 100 } })
})
t.teardown(async () => { await h?.stop() })

const grantId = (): string => `g${Date.now().toString(36).padStart(9, '0')}${randomBytes(4).toString('hex')}`

function terms(over: Partial<GrantTerms> = {}): GrantTerms {
  const now = Date.now()
  return {
    id: grantId(), principal: { id: AGENT, kind: 'agent' }, action: 'canary.mark', node_id: h.nodeId, args: 'any', uses: 2,
    reason: 'restart as often as needed during the incident', issued_at: new Date(now - 1000).toISOString(), expires_at: new Date(now + 3_600_000).toISOString(), ...over,
  }
}

/** A grant signed with the dispatch key, approved by `who`; each passkey signs `signs(digest)` (default: the grant's own digest). */
function grant(who: Array<TestApprover | { operator: string }>, over: Partial<GrantTerms> = {}, signs: (digest: string) => string = (d) => d): SignedGrant {
  const tt = terms(over)
  const digest = grantDigest(tt)
  const approvals: GrantApprovalRef[] = who.map((a) => ({
    by: a.operator, at: tt.issued_at, digest, ...('passkey' in a ? { passkey: a.passkey.assert(bindingChallenge(signs(digest))) } : {}),
  }))
  return signGrant({ v: 1, kind: 'writ.grant', ...tt, digest, approvals }, h.key)
}

const mark = () => ({ name: `m-${randomBytes(3).toString('hex')}` })
const send = (g: SignedGrant) => h.send(signWrit(h.writ('canary.mark', mark(), { grant: g }), h.key))
const journal = (): Array<{ type: string, run_id: string, data: Record<string, any> }> =>
  readFileSync(h.journal, 'utf8').trim().split('\n').map((l) => JSON.parse(l))

t.test('a grant two registered approvers signed with their passkeys over its digest covers the run', async (t) => {
  const g = grant([ops1, ops2])
  const writ = h.writ('canary.mark', mark(), { grant: g })
  const ack = await h.send(signWrit(writ, h.key))
  t.match(ack, { accepted: true }, JSON.stringify(ack))
  const accepted = journal().find((e) => e.type === 'accepted' && e.run_id === writ.run_id)
  t.match(accepted?.data, { grant: g.statement.id, passkeys: { verified: [{ by: 'ops-1', credential_id: ops1.passkey.credentialId }, { by: 'ops-2', credential_id: ops2.passkey.credentialId }] } })
  t.comment(`runner: grant ${g.statement.id} with passkeys of ops-1 and ops-2 over its digest → accepted`)
})

t.test('the compromised control plane: signed grants without a valid passkey quorum are refused, journaled, and run nothing', async (t) => {
  const runBinding = 'ab'.repeat(32)
  const cases: Array<{ name: string, code: string, message: RegExp, grant: () => SignedGrant }> = [
    { name: 'no passkey: the approvals only claim ops-1 and ops-2', code: 'passkey_required', message: /grant g\w+ carries none \(2 approval\(s\) without a passkey signature do not count\)/, grant: () => grant([{ operator: 'ops-1' }, { operator: 'ops-2' }]) },
    { name: 'one passkey where the registry asks two', code: 'quorum_not_met', message: /needs passkey approvals from 2 distinct people in oncall.*grant g\w+ has 1/, grant: () => grant([ops1, { operator: 'ops-2' }]) },
    { name: 'passkeys over a run\'s binding, not the grant\'s digest', code: 'bad_passkey', message: /not grant g\w+'s digest/, grant: () => grant([ops1, ops2], {}, () => runBinding) },
    { name: 'ops-1\'s passkey presented as ops-2\'s approval', code: 'unknown_approver', message: /registered to ops-1/, grant: () => grant([ops1, { operator: 'ops-2', passkey: ops1.passkey } as TestApprover]) },
    { name: 'the grantee\'s own person signs', code: 'self_approval', message: /pat-ops in grant g\w+ comes from the person who requested the run \(agent-test\)/, grant: () => grant([ops1, pat]) },
  ]
  for (const c of cases) {
    const g = c.grant()
    const writ = h.writ('canary.mark', mark(), { grant: g })
    const ack = await h.send(signWrit(writ, h.key))
    t.match(ack, { accepted: false, refusal: { code: c.code, message: c.message } }, c.name)
    t.comment(`runner: ${c.name} → ${ack.accepted ? 'accepted' : `${ack.refusal.code}: ${ack.refusal.message}`}`)
    const entry = await eventually(() => journal().find((e) => e.type === 'refused' && e.run_id === writ.run_id), 5000, `${c.name} journaled`)
    t.equal(entry.data.code, c.code, `${c.name}: journaled as refused`)
    t.notOk(journal().some((e) => e.run_id === writ.run_id && (e.type === 'accepted' || e.type === 'started')), `${c.name}: never accepted, nothing ran`)
  }
})

t.test('a grant with one use covers one of two writs sent at once, though both wait on the passkey check', async (t) => {
  const g = grant([ops1, ops2], { uses: 1 })
  const acks = await Promise.all([send(g), send(g)])
  t.equal(acks.filter((a) => a.accepted).length, 1, JSON.stringify(acks))
  t.match(acks.find((a) => !a.accepted), { refusal: { code: 'grant_used_up', message: /covers 1 run\(s\) and this runner already accepted 1/ } })
  t.comment(`runner: two writs at once under a 1-use grant → ${acks.map((a) => (a.accepted ? 'accepted' : a.refusal.code)).join(', ')}`)
  t.match(await send(g), { accepted: false, refusal: { code: 'grant_used_up' } }, 'and the next one too')
})

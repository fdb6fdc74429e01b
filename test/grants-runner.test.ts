/**
 * The runner checks a standing grant like an approval: the control plane's
 * signature over the grant's statement, that the writ is what the grant
 * covers (principal, action, node, arguments), its expiry, and the uses it
 * has accepted for its own node — counted from its journal, so a restart
 * does not give a used-up grant new uses.
 */
import t from 'tap'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { RunJournal } from '@writ/node-runner'
import { generateSigningKeyPair, grantDigest, loadSigningKey, signGrant, signWrit, type GrantTerms, type SignedGrant, type SigningKey } from '@writ/packs/protocol'
import { startRunnerHarness, type RunnerHarness } from './helpers/runner-harness.js'
import { buildTestPlan } from './helpers/plan-writs.js'

const grantId = (): string => `g${Date.now().toString(36).padStart(9, '0')}${randomBytes(4).toString('hex')}`

function grant(h: RunnerHarness, over: Partial<GrantTerms> = {}, key: SigningKey = h.key): SignedGrant {
  const now = Date.now()
  const terms: GrantTerms = {
    id: grantId(), principal: { id: 'agent-test', kind: 'agent' }, action: 'canary.mark', node_id: h.nodeId, args: 'any', uses: 2,
    reason: 'restart as often as needed during the incident', issued_at: new Date(now - 1000).toISOString(), expires_at: new Date(now + 3_600_000).toISOString(), ...over,
  }
  const digest = grantDigest(terms)
  return signGrant({ v: 1, kind: 'writ.grant', ...terms, digest, approvals: [{ by: 'ops-1', at: terms.issued_at, digest }] }, key)
}

t.test('the runner verifies a grant a writ carries', async (t) => {
  const h = await startRunnerHarness()
  t.teardown(() => h.stop())
  const send = async (g: SignedGrant, args: Record<string, unknown> = { name: `m-${randomBytes(3).toString('hex')}` }, over = {}) =>
    h.send(signWrit(h.writ('canary.mark', args, { grant: g, ...over }), h.key))

  await t.test('a grant with 2 uses: two writs accepted, the third refused grant_used_up, also after a restart', async (t) => {
    const g = grant(h)
    t.match(await send(g), { accepted: true })
    t.match(await send(g), { accepted: true })
    const third = await send(g)
    t.match(third, { accepted: false, refusal: { code: 'grant_used_up', message: /covers 2 run\(s\) and this runner already accepted 2/ } })
    t.comment(`runner: third writ under ${g.statement.id} → ${third.accepted ? 'accepted' : `${third.refusal.code}: ${third.refusal.message}`}`)
    await h.restartRunner()
    t.match(await send(g), { accepted: false, refusal: { code: 'grant_used_up' } }, 'the journal remembers the uses across a restart')
    const accepted = readFileSync(h.journal, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.type === 'accepted' && e.data.grant === g.statement.id)
    t.equal(accepted.length, 2, 'the journal holds both uses with the grant id')
  })

  await t.test('an expired grant covers nothing', async (t) => {
    const past = Date.now() - 10 * 60_000
    const g = grant(h, { issued_at: new Date(past - 60_000).toISOString(), expires_at: new Date(past).toISOString() })
    const ack = await send(g)
    t.match(ack, { accepted: false, refusal: { code: 'grant_expired' } })
    t.comment(`runner: expired grant → ${ack.accepted ? 'accepted' : `${ack.refusal.code}: ${ack.refusal.message}`}`)
  })

  await t.test('a forged grant is refused: another key, changed terms, a self-approval', async (t) => {
    const other = loadSigningKey(generateSigningKeyPair().privatePem)
    const forged = await send(grant(h, {}, other))
    t.match(forged, { accepted: false, refusal: { code: 'bad_grant', message: /not trusted/ } })
    t.comment(`runner: grant signed by an untrusted key → ${forged.accepted ? 'accepted' : `${forged.refusal.code}: ${forged.refusal.message}`}`)

    const g = grant(h, { uses: 1 })
    const widened: SignedGrant = { ...g, statement: { ...g.statement, uses: 1000 } }
    t.match(await send(widened), { accepted: false, refusal: { code: 'bad_grant', message: /signature does not verify/ } }, 'uses raised after signing')
    const { v: _v, kind: _k, digest: _d, approvals: _a, ...terms } = g.statement
    const reterm = { ...terms, uses: 1000 }
    const resigned = signGrant({ ...g.statement, uses: 1000 }, h.key)
    t.match(await send(resigned), { accepted: false, refusal: { code: 'bad_grant', message: /hash to/ } }, 'terms that do not hash to the approved digest')
    t.not(grantDigest(reterm), g.statement.digest)
    const self = grant(h)
    const selfApproved = signGrant({ ...self.statement, approvals: [{ by: 'agent-test', at: self.statement.issued_at, digest: self.statement.digest }] }, h.key)
    t.match(await send(selfApproved), { accepted: false, refusal: { code: 'self_approval' } }, 'approved by the principal it is for')
  })

  await t.test('a plan\'s target carries the grant that covered the plan: checked the same way', async (t) => {
    const target = (name: string) => ({ node_id: h.nodeId, action: 'canary.mark', pack: 'canary', pack_digest: h.digestOf('canary'), args: { name } })
    const plan = buildTestPlan(h.key, [target('p-0'), target('p-1')])
    const g = grant(h, { uses: 1 })
    t.match(await h.send(plan.envelope(0, { grant: g })), { accepted: true }, 'a target under the grant')
    t.match(await h.send(plan.envelope(1, { grant: g })), { accepted: false, refusal: { code: 'grant_used_up' } }, 'its one use on this node is spent')
    const other = buildTestPlan(h.key, [target('p-2')])
    const ack = await h.send(other.envelope(0, { grant: grant(h, { principal: { id: 'agent-other', kind: 'agent' } }) }))
    t.match(ack, { accepted: false, refusal: { code: 'bad_grant', message: /is for agent-other, the writ was requested by agent-test/ } }, 'a grant for someone else does not cover the plan\'s requester')
    t.comment(`runner: a plan target under another principal's grant → ${ack.accepted ? 'accepted' : `${ack.refusal.code}: ${ack.refusal.message}`}`)
  })

  await t.test('a grant covers only its principal, action, node and arguments', async (t) => {
    t.match(await send(grant(h), undefined, { requester: { id: 'agent-other', kind: 'agent' } }), { accepted: false, refusal: { code: 'bad_grant', message: /is for agent-test/ } })
    t.match(await send(grant(h, { action: 'canary.echo' })), { accepted: false, refusal: { code: 'bad_grant', message: /covers canary.echo/ } })
    t.match(await send(grant(h, { node_id: 'another-node' })), { accepted: false, refusal: { code: 'bad_grant', message: /covers node another-node/ } })
    t.match(await send(grant(h, { args: { name: 'only-this' } }), { name: 'something-else' }), { accepted: false, refusal: { code: 'bad_grant', message: /other arguments/ } })
    t.match(await send(grant(h, { args: { name: 'only-this' } }), { name: 'only-this' }), { accepted: true }, 'its exact arguments are covered')
    t.match(await send(grant(h, { node_id: '*' })), { accepted: true }, 'a grant for every node covers this one')
  })
})

t.test('the journal keeps grant uses across rotation and restart, until the grant has expired', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'writ-grant-journal-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'journal.jsonl')
  let now = Date.parse('2026-01-01T00:00:00Z')
  const opts = { rotateEntries: 3, keepRotated: 2, clockSkewMs: 30_000, now: () => now }
  const j = RunJournal.open(file, opts)
  const live = { grant: 'g0000000000aaaaaaa', grant_expires_at: '2026-01-01T01:00:00Z' }
  const short = { grant: 'g0000000000bbbbbbb', grant_expires_at: '2026-01-01T00:10:00Z' }
  for (let i = 0; i < 5; i++) await j.append('accepted', `run_${i}`, { action: 'canary.mark', expires_at: '2026-01-01T00:01:00Z', ...(i < 4 ? live : short) })
  t.equal(j.grantUses(live.grant), 4)
  t.equal(j.grantUses(short.grant), 1)
  await j.close()
  t.ok(readdirSync(dir).some((f) => /^journal\.jsonl\.\d+$/.test(f)), 'the journal rotated meanwhile')
  const again = RunJournal.open(file, opts)
  t.equal(again.grantUses(live.grant), 4, 'uses carried over by the continued entry and read back after a restart')
  t.equal(again.grantUses(short.grant), 1)
  await again.close()
  now = Date.parse('2026-01-01T00:30:00Z')
  const later = RunJournal.open(file, opts)
  t.equal(later.grantUses(live.grant), 4)
  t.equal(later.grantUses(short.grant), 0, 'an expired grant\'s count is forgotten (it covers nothing anyway)')
  await later.close()
})

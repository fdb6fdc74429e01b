/**
 * A plan's targets as the runner sees them: one statement signed with the
 * dispatch key, a leaf per target, an inclusion proof in each writ. The
 * runner recomputes its leaf from the writ and runs only what the signed root
 * covers. Every refusal below is a writ a compromised control plane could
 * send — each correctly signed with the real dispatch key — and each is
 * refused, journaled, and runs nothing.
 */
import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startRunnerHarness, type RunnerHarness } from './helpers/runner-harness.js'
import { buildTestPlan, type PlanTarget } from './helpers/plan-writs.js'
import { eventually } from './helpers/cp-fake-runner.js'

let h: RunnerHarness
t.before(async () => { h = await startRunnerHarness() })
t.teardown(async () => { await h.stop() })

const journalEntries = (): Array<{ type: string, run_id: string, data: Record<string, unknown> }> =>
  readFileSync(h.journal, 'utf8').trim().split('\n').map((l) => JSON.parse(l))

const mark = (name: string, node = h.nodeId): PlanTarget => ({ node_id: node, action: 'canary.mark', pack: 'canary', pack_digest: h.digestOf('canary'), args: { name } })
const others = (n: number, prefix: string): PlanTarget[] => Array.from({ length: n }, (_, i) => mark(`${prefix}-${i}`, `other-${prefix}-${i}`))

/** Sends the envelope; says what the runner answered, what it journaled, and whether the marker file exists. */
async function attempt(envelope: Record<string, unknown>, marker: string) {
  const ack = await h.send(envelope)
  const runId = (envelope.writ as { run_id: string }).run_id
  // The journal line is written beside the answer, not before it.
  const journaled = await eventually(() => journalEntries().find((e) => e.run_id === runId), 5000, `the journal entry of ${runId}`).catch(() => undefined)
  return { ack, journaled, ran: existsSync(join(h.canaryDir, marker)) }
}

t.test('a target of a signed plan runs, and the journal names its plan and the request it witnesses', async (t) => {
  const plan = buildTestPlan(h.key, [...others(5, 'ok'), mark('plan-ok')])
  const { ack, journaled, ran } = await attempt(plan.envelope(5), 'plan-ok')
  t.equal(ack.accepted, true, ack.accepted ? '' : ack.refusal.message)
  t.ok(ran || await eventually(() => existsSync(join(h.canaryDir, 'plan-ok')), 5000, 'the marker'), 'the action ran')
  t.equal(journaled?.type, 'accepted')
  t.equal(journaled?.data.plan, plan.id)
  t.equal(journaled?.data.position, 5)
  t.equal(journaled?.data.request_hash, plan.statement.request_hash)
})

t.test('the proof stays within 32·⌈log₂N⌉ bytes', async (t) => {
  const plan = buildTestPlan(h.key, [...others(999, 'big'), mark('big')])
  const proof = (plan.envelope(999).plan as { proof: string }).proof
  t.ok(proof.length / 2 <= 32 * Math.ceil(Math.log2(1000)), `${proof.length / 2} bytes`)
  const { ack, ran } = await attempt(plan.envelope(999), 'big')
  t.equal(ack.accepted, true, ack.accepted ? '' : ack.refusal.message)
  t.ok(ran || await eventually(() => existsSync(join(h.canaryDir, 'big')), 5000, 'the marker'))
})

t.test('a compromised control plane, dispatch key in hand, cannot get a writ run outside what was approved', async (t) => {
  const cases: Array<{ name: string, marker: string, code: string, build: () => Record<string, unknown> }> = [
    {
      // Approved: two other nodes. Afterwards this node is added and the new root signed; the approvals are the old ones.
      name: 'a target added after approval (new root signed, old approvals)', marker: 'added', code: 'bad_plan',
      build: () => {
        const approved = buildTestPlan(h.key, others(2, 'added'))
        const grown = buildTestPlan(h.key, [...approved.targets, mark('added')], { id: approved.id, salt: approved.salt })
        return grown.envelope(2, {}, [{ by: 'ops-1', at: new Date().toISOString(), binding: approved.binding }])
      },
    },
    {
      // The approved root kept, and this node slipped in under another target's position and proof.
      name: 'a target added after approval (approved root kept)', marker: 'slipped', code: 'not_in_plan',
      build: () => {
        const approved = buildTestPlan(h.key, others(2, 'slipped'))
        return approved.envelope(1, { node_id: h.nodeId, args: { name: 'slipped' } }, [{ by: 'ops-1', at: new Date().toISOString(), binding: approved.binding }])
      },
    },
    {
      name: 'a target\'s args changed', marker: 'changed', code: 'not_in_plan',
      build: () => buildTestPlan(h.key, [...others(3, 'args'), mark('approved-name')]).envelope(3, { args: { name: 'changed' } }),
    },
    {
      // This node's leaf and proof from plan Q, under plan P's signed statement (and P's run id).
      name: 'a leaf from another plan', marker: 'other-plan', code: 'not_in_plan',
      build: () => {
        const p = buildTestPlan(h.key, [mark('p-target', 'other-p'), ...others(3, 'p')])
        const q = buildTestPlan(h.key, [mark('other-plan'), ...others(3, 'q')])
        const e = q.envelope(0, { run_id: `${p.id}-0`, reason: p.statement.reason, issued_at: p.statement.issued_at, expires_at: p.statement.expires_at, binding_salt: p.salt })
        return { ...e, plan: { ...(e.plan as object), statement: p.statement, sig: p.sig } }
      },
    },
    {
      // Position 1 is another node's; its (valid) proof is sent to this node.
      name: 'a proof for another node', marker: 'their-proof', code: 'not_in_plan',
      build: () => {
        const plan = buildTestPlan(h.key, [mark('mine'), mark('their-proof', 'other-proof')])
        return plan.envelope(1, { node_id: h.nodeId })
      },
    },
    {
      name: 'an approval over another root', marker: 'other-root', code: 'bad_plan',
      build: () => {
        const other = buildTestPlan(h.key, others(2, 'root'))
        const plan = buildTestPlan(h.key, [mark('other-root'), ...others(2, 'root2')])
        return plan.envelope(0, {}, [{ by: 'ops-1', at: new Date().toISOString(), binding: other.binding }])
      },
    },
  ]
  for (const c of cases) {
    const { ack, journaled, ran } = await attempt(c.build(), c.marker)
    const refusal = ack.accepted ? undefined : ack.refusal
    t.equal(refusal?.code, c.code, `${c.name}: refused ${refusal?.code}: ${refusal?.message}`)
    t.equal(journaled?.type, 'refused', `${c.name}: journaled`)
    t.equal(journaled?.data.code, c.code, `${c.name}: journaled with its reason`)
    t.notOk(ran, `${c.name}: nothing ran`)
    t.comment(`${c.name} → ${refusal?.code}: ${refusal?.message}`)
  }
})

t.test('a plan writ under a statement signed by an unknown key, or with its statement changed, is refused', async (t) => {
  const plan = buildTestPlan(h.key, [mark('forged')])
  const e = plan.envelope(0)
  const p = e.plan as { statement: { count: number } }
  const changed = { ...e, plan: { ...p, statement: { ...p.statement, reason: 'something else' } }, writ: { ...(e.writ as object), reason: 'something else' } }
  const { ack, ran } = await attempt(changed, 'forged')
  t.equal(ack.accepted ? undefined : ack.refusal.code, 'bad_signature')
  t.notOk(ran)
  const both = { ...e, sig: 'A'.repeat(86) + '==' }
  const mixed = await h.send(both)
  t.equal(mixed.accepted ? undefined : mixed.refusal.code, 'malformed', 'a writ with its own signature and a plan proof is malformed')
})

/**
 * The shared pieces of approvals that lapse: the state both daemons compute
 * from Nomad's answer, the words a refusal names it in, the binding covering
 * it, and the runner's refusal of a writ whose state and approvals do not fit.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  approvalBinding, newBindingSalt, observedState, signWrit, stateChange, WRIT_VERSION, type ApprovedState, type Writ,
} from '@writ/packs/protocol'
import { FIXTURES_DIR } from './doubles/fixtures-dir.js'
import { startRunnerHarness } from './helpers/runner-harness.js'
import { startNomadDouble } from './doubles/nomad-api.js'

const fixture = (name: string): unknown => JSON.parse(readFileSync(join(FIXTURES_DIR, 'nomad', name), 'utf8')) as unknown

t.test('the state of an allocation and of a node\'s allocations, from Nomad\'s own answers', async (t) => {
  const alloc = observedState('allocation', fixture('GET_allocation.json'))
  t.ok(alloc.ok)
  if (alloc.ok) t.equal(alloc.state.modify_index, 57, 'the allocation\'s ModifyIndex, not its job\'s')
  const node = observedState('node_allocations', fixture('GET_node_allocations.json'))
  t.ok(node.ok)
  if (node.ok) t.equal(node.state.entries.length, 1)
  t.match(observedState('allocation', { ID: 'x' }), { ok: false, message: /no ID or ModifyIndex/ })
  t.match(observedState('node_allocations', { not: 'a list' }), { ok: false, message: /not a list of allocations/ })
})

t.test('what moved, in words; nothing moved, nothing said', async (t) => {
  const id = 'a8198d79-cfdb-6593-a999-1e9adabcba2e'
  const before = observedState('allocation', { ID: id, ModifyIndex: 57 })
  const after = observedState('allocation', { ID: id, ModifyIndex: 61 })
  if (!before.ok || !after.ok) throw new Error('unreadable')
  const approved: ApprovedState = { kind: 'allocation', id, modify_index: 57, fingerprint: before.state.fingerprint, preview_digest: 'c'.repeat(64) }
  t.equal(stateChange(approved, before.state), undefined)
  t.equal(stateChange(approved, after.state), 'allocation a8198d79… ModifyIndex 57 → 61')
  // An allocation gone from a node without the highest index moving still counts.
  const two = observedState('node_allocations', [{ ID: 'a', ModifyIndex: 5 }, { ID: 'b', ModifyIndex: 9 }])
  const one = observedState('node_allocations', [{ ID: 'b', ModifyIndex: 9 }])
  if (!two.ok || !one.ok) throw new Error('unreadable')
  const onNode: ApprovedState = { kind: 'node_allocations', id, modify_index: 9, fingerprint: two.state.fingerprint, preview_digest: 'c'.repeat(64) }
  t.equal(stateChange(onNode, one.state), 'allocations on node a8198d79… changed (1 now, highest ModifyIndex still 9)')
})

t.test('the binding covers the state when there is one, and is what it always was when there is none', async (t) => {
  const subject = {
    run_id: 'r0000000000000000000000001', action: 'nomad.alloc_stop', pack_digest: 'd'.repeat(64), node_id: 'n1', args: { alloc_id: 'x' },
    reason: 'r', requester: { id: 'agent-1', kind: 'agent' as const }, options: {}, binding_salt: newBindingSalt(),
  }
  const state: ApprovedState = { kind: 'allocation', id: 'a8198d79-cfdb-6593-a999-1e9adabcba2e', modify_index: 57, fingerprint: 'e'.repeat(64), preview_digest: 'c'.repeat(64) }
  const plain = approvalBinding(subject)
  t.equal(approvalBinding({ ...subject, state: undefined }), plain)
  t.not(approvalBinding({ ...subject, state }), plain)
  t.not(approvalBinding({ ...subject, state: { ...state, modify_index: 58 } }), approvalBinding({ ...subject, state }), 'another index, another binding')
})

t.test('the runner refuses a state that is not what the action changes, and a break-glass approval beside others', async (t) => {
  const nomad = await startNomadDouble()
  t.teardown(() => nomad.close())
  const h = await startRunnerHarness({ nodeId: nomad.ids.node, extraConfig: { nomadAddr: nomad.addr } })
  t.teardown(() => h.stop())
  const stop = (over: Partial<Writ> = {}): Writ => h.writ('nomad.alloc_stop', { alloc_id: nomad.ids.alloc }, over)
  const otherAlloc: ApprovedState = { kind: 'allocation', id: '11111111-2222-4333-8444-555555555555', modify_index: 57, fingerprint: 'e'.repeat(64), preview_digest: 'c'.repeat(64) }
  const wrong = await h.send(signWrit(stop({ state: otherAlloc }), h.key))
  t.match(wrong, { accepted: false, refusal: { code: 'bad_approval', message: /approved state \(allocation 11111111-.*\) is not what nomad\.alloc_stop changes/ } })

  const base = stop()
  const binding = approvalBinding(base)
  const at = new Date().toISOString()
  const both = { ...base, approvals: [{ by: 'ops-1', at, binding, break_glass: true as const }, { by: 'ops-2', at, binding }] }
  const refused = await h.send(signWrit(both, h.key))
  t.match(refused, { accepted: false, refusal: { code: 'bad_approval', message: /a break-glass approval stands alone/ } })
  t.equal(nomad.requests.filter((r) => r.method === 'POST').length, 0, 'nothing reached Nomad')
  t.equal(WRIT_VERSION, 2)
})


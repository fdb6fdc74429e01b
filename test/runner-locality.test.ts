/**
 * A runner acts on Nomad only for its own node. A real runner, whose node id
 * is a node the Nomad double knows, gets signed writs for the stock `nomad`
 * actions: about its own node and its own allocations they run; about another
 * node, or an allocation placed on another node, they are refused with
 * `not_local` and the double proves that the action's call was never made.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { nomadScopeOf } from '../node-runner/dist/nomad-locality.js'
import { startNomadDouble, type NomadDouble } from './doubles/nomad-api.js'
import { startRunnerHarness, type RunnerHarness } from './helpers/runner-harness.js'
import { eventually } from './helpers/cp-fake-runner.js'

const TOKEN = '6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b'

let nomad: NomadDouble
let h: RunnerHarness
t.before(async () => {
  nomad = await startNomadDouble({ token: TOKEN })
  // The runner runs on the node that holds ids.nodeAlloc; ids.alloc is placed on another node.
  h = await startRunnerHarness({ nodeId: nomad.ids.nodeWithAllocs, extraConfig: { nomadAddr: nomad.addr, nomadToken: TOKEN } })
})
t.teardown(async () => { await h.stop(); await nomad.close() })
t.beforeEach(() => { nomad.requests.length = 0 })

const calls = (): string[] => nomad.requests.map((r) => `${r.method} ${r.path}`)
const journal = (): Array<{ type: string, run_id: string, data: Record<string, unknown> }> =>
  readFileSync(h.journal, 'utf8').trim().split('\n').map((l) => JSON.parse(l))

t.test('the fixtures place the two allocations on different nodes', async (t) => {
  t.not(nomad.ids.nodeWithAllocs, nomad.ids.agentNode)
  t.equal(h.nodeId, nomad.ids.nodeWithAllocs)
})

t.test('node_drain and node_eligibility for another node are refused before anything is called', async (t) => {
  for (const [action, args] of [
    ['nomad.node_drain', { node_id: nomad.ids.agentNode, deadline: '1h' }],
    ['nomad.node_eligibility', { node_id: nomad.ids.agentNode, eligibility: 'ineligible' }],
    ['nomad.node_allocs', { node_id: nomad.ids.agentNode }],
    ['nomad.node_status', { node_id: nomad.ids.node }],
  ] as const) {
    const { ack } = await h.run(action, args)
    t.equal(ack.accepted, false, `${action} on another node: refused`)
    if (!ack.accepted) {
      t.equal(ack.refusal.code, 'not_local', 'typed reason: not_local')
      t.match(ack.refusal.message, `is not this runner's node (${h.nodeId})`, `says why: ${ack.refusal.message}`)
    }
  }
  t.same(calls(), [], 'the Nomad double saw no request at all')
  // A refusal is answered first and journaled by the next group commit: wait for the disk, not for time.
  const refused = await eventually(() => {
    const r = journal().filter((e) => e.type === 'refused' && e.data.code === 'not_local')
    return r.length >= 4 ? r : undefined
  }, 10_000, 'the four refusals in the journal')
  t.ok(refused.length >= 4, 'each refusal is journaled with its reason')
})

t.test('node actions for its own node run and reach Nomad', async (t) => {
  const { ack, result } = await h.run('nomad.node_eligibility', { node_id: h.nodeId, eligibility: 'ineligible' })
  t.ok(ack.accepted)
  t.equal(result?.status, 'succeeded', result?.error ?? '')
  t.same(calls(), [`POST /v1/node/${h.nodeId}/eligibility`])
})

t.test('alloc_stop for an allocation on another node: refused with not_local after one read, the stop is never sent', async (t) => {
  const { ack, result } = await h.run('nomad.alloc_stop', { alloc_id: nomad.ids.alloc })
  t.ok(ack.accepted, 'the writ itself is valid; where the allocation runs is Nomad\'s answer')
  t.equal(result?.status, 'refused')
  t.equal(result?.refusal?.code, 'not_local')
  t.match(result?.refusal?.message, `allocation ${nomad.ids.alloc} runs on node ${nomad.ids.agentNode}, not on this runner's node (${h.nodeId})`)
  t.same(calls(), [`GET /v1/allocation/${nomad.ids.alloc}`], 'only the NodeID lookup; no POST …/stop')
  t.equal(nomad.requests[0]?.headers['x-nomad-token'], TOKEN, 'the lookup uses the runner\'s own token')
  t.equal(result?.stdout, '', 'nothing ran, so no output')
})

t.test('alloc_status for an allocation on another node is refused too (reads are not exempt)', async (t) => {
  const { result } = await h.run('nomad.alloc_status', { alloc_id: nomad.ids.alloc })
  t.equal(result?.refusal?.code, 'not_local')
  t.same(calls(), [`GET /v1/allocation/${nomad.ids.alloc}`], 'one lookup, its body never returned as the action\'s output')
  t.equal(result?.stdout, '')
})

t.test('alloc_stop for an allocation on its own node: checked, then stopped', async (t) => {
  const { ack, result } = await h.run('nomad.alloc_stop', { alloc_id: nomad.ids.nodeAlloc })
  t.ok(ack.accepted)
  t.equal(result?.status, 'succeeded', result?.error ?? '')
  t.same(calls(), [`GET /v1/allocation/${nomad.ids.nodeAlloc}`, `POST /v1/allocation/${nomad.ids.nodeAlloc}/stop`], 'lookup first, then the stop')
})

t.test('an allocation Nomad does not know is not_local; a Nomad that cannot answer is target_unavailable; either way nothing else is called', async (t) => {
  const unknown = '00000000-0000-4000-8000-000000000000'
  const missing = await h.run('nomad.alloc_stop', { alloc_id: unknown })
  t.equal(missing.result?.refusal?.code, 'not_local')
  t.match(missing.result?.refusal?.message, 'is not known to Nomad')
  t.same(calls(), [`GET /v1/allocation/${unknown}`])

  nomad.requests.length = 0
  nomad.stall = true
  t.teardown(() => { nomad.stall = false })
  const stalled = await h.run('nomad.alloc_stop', { alloc_id: nomad.ids.nodeAlloc }, { options: { timeout_ms: 300 } })
  t.equal(stalled.result?.status, 'refused')
  t.equal(stalled.result?.refusal?.code, 'target_unavailable')
  t.match(stalled.result?.refusal?.message, `cannot check which node allocation ${nomad.ids.nodeAlloc} runs on`)
  t.same(calls(), [`GET /v1/allocation/${nomad.ids.nodeAlloc}`], 'the lookup was tried; the stop was not')
})

t.test('what a Nomad path is about: only plain /v1 paths naming one node or one allocation count', async (t) => {
  const id = 'fefe81d0-08b2-4eca-fae6-6560cde46d31'
  t.same(nomadScopeOf(`/v1/node/${id}/drain`), { kind: 'node', nodeId: id })
  t.same(nomadScopeOf(`/v1/node/${id}`), { kind: 'node', nodeId: id })
  t.same(nomadScopeOf(`/v1/allocation/${id}/stop?no_shutdown_delay=true`), { kind: 'alloc', allocId: id })
  t.same(nomadScopeOf(`/v1/client/allocation/${id}/restart`), { kind: 'alloc', allocId: id })
  t.same(nomadScopeOf(`/v1/client/fs/logs/${id}`), { kind: 'alloc', allocId: id })
  for (const p of ['/v1/nodes', '/v1/jobs', '/v1/allocations', '/v1/node', `/v1/node/${id}/../../nodes`, `/v1/node/${id}/%2e%2e/x`,
    `/v1/node/a%2Fb`, `/v1//node/${id}`, `/v2/node/${id}`, `v1/node/${id}`, '/v1/node/%zz', `/v1/client/allocation/${id}`]) {
    t.equal(nomadScopeOf(p).kind, 'unscoped', `${p} is not about one node or allocation`)
  }
})

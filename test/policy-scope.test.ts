/**
 * A principal's scope under policy: the actions some node could let it run
 * (at once or after approval), and the nodes where at least one action could
 * run. Outside it, MCP shows nothing.
 */
import t from 'tap'
import { parseConfig, Policy } from '@writ/control-plane'
import { PolicyScope } from '../control-plane/dist/policy/index.js'

const rules = parseConfig({
  packs: { dirs: ['/nonexistent'] }, signing: { key_file: '/nonexistent' },
  policy: {
    rules: [
      { name: 'no-wipes', match: { actions: ['*.wipe'] }, decision: 'deny', reason: 'never' },
      { name: 'everywhere-forbidden', match: { actions: ['ops.format'], nodes: ['*'] }, decision: 'deny', reason: 'never' },
      { name: 'not-on-prod', match: { actions: ['ops.drain'], node_pools: ['prod'] }, decision: 'deny', reason: 'not in prod' },
      { name: 'vault', match: { nodes: ['vault-*'], kinds: ['agent'] }, decision: 'deny', reason: 'people only' },
      { name: 'stops-need-people', match: { risk: ['high'] }, decision: 'require_approval', approver_groups: ['oncall'] },
      { name: 'agents-read', match: { groups: ['sre'], max_risk: 'low' }, decision: 'allow' },
    ],
  },
}).policy.rules
const catalog = [
  { id: 'ops.wipe', risk: 'low' as const }, { id: 'ops.format', risk: 'high' as const }, { id: 'ops.drain', risk: 'high' as const },
  { id: 'ops.logs', risk: 'low' as const }, { id: 'ops.tune', risk: 'medium' as const },
]
const scope = new PolicyScope(new Policy(rules), () => catalog)
const sre = { id: 'claude', kind: 'agent' as const, groups: ['sre'] }
const stranger = { id: 'bot', kind: 'agent' as const, groups: [] }
const inScope = (p: typeof sre, id: string) => scope.action(p, catalog.find((a) => a.id === id) as (typeof catalog)[number])

t.test('actions: in scope when some node could allow or gate them', async (t) => {
  t.equal(inScope(sre, 'ops.logs'), true, 'allowed everywhere')
  t.equal(inScope(sre, 'ops.drain'), true, 'denied in prod only: other pools could gate it')
  t.equal(inScope(sre, 'ops.wipe'), false, 'denied on every node')
  t.equal(inScope(sre, 'ops.format'), false, 'nodes: ["*"] denies on every node too')
  t.equal(inScope(sre, 'ops.tune'), false, 'medium risk: no rule allows it (default deny)')
  t.equal(inScope(stranger, 'ops.logs'), false, 'a principal outside the reading group')
  t.equal(inScope(stranger, 'ops.drain'), true, 'anyone may ask for a gated action')
})

t.test('nodes: in scope when at least one catalog action could run there', async (t) => {
  t.equal(scope.node(sre, { id: 'n1', name: 'web-1', node_pool: 'prod' }), true)
  t.equal(scope.node(sre, { id: 'n2', name: 'vault-1' }), false, 'every action is denied to agents on vault nodes')
  t.equal(scope.node({ id: 'alice', kind: 'operator', groups: ['oncall'] }, { id: 'n2', name: 'vault-1' }), true, 'the vault rule names agents only')
})

t.test('a node whose attributes Nomad cannot state: in scope when some attribute could let an action through', async (t) => {
  t.equal(scope.node(sre, { id: 'n3', name: 'web-3', source: 'unknown', reason: 'Nomad unreachable' }), true, 'the run itself is then refused by policy, with the reason')
  t.equal(scope.node(sre, { id: 'n4', name: 'vault-2', source: 'unknown', reason: 'Nomad unreachable' }), false, 'a deny by name holds whatever Nomad says')
  const poolOnly = new PolicyScope(new Policy(parseConfig({
    packs: { dirs: ['/nonexistent'] }, signing: { key_file: '/nonexistent' },
    policy: { rules: [{ name: 'prod-only', match: { node_pools: ['prod'], max_risk: 'low' }, decision: 'allow' }] },
  }).policy.rules), () => catalog)
  t.equal(poolOnly.node(sre, { id: 'n5', name: 'web-5', source: 'unknown' }), true, 'an allow on a pool might be this node\'s')
  t.equal(poolOnly.node(sre, { id: 'n5', name: 'web-5', source: 'nomad', node_pool: 'dev' }), false, 'known to be in another pool: out of scope')
})

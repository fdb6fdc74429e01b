import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, loadConfig, parseConfig, Policy, hashToken, DEFAULT_DENY_REASON, buildApp, type PolicyRule } from '@writ/control-plane'

const dir = mkdtempSync(join(tmpdir(), 'writ-cfg-'))
const base = { packs: { dirs: ['packs'] }, signing: { key_file: 'key.pem' } }
const write = (name: string, text: string): string => { const f = join(dir, name); writeFileSync(f, text); return f }

t.test('a bad config fails at boot and names the setting', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ ...base, principals: [{ id: 'a', kind: 'agent', token_sha256: 'not-a-hash' }] }, /principals\.0\.token_sha256: expected the SHA-256/],
    [{ ...base, jetstream: { replicas: 7 } }, /jetstream\.replicas/],
    [{ ...base, runs: { ack_timeout: 'soon' } }, /runs\.ack_timeout: expected a duration/],
    [{ ...base, policy: { rules: [{ name: 'x', decision: 'maybe' }] } }, /policy\.rules\.0\.decision/],
    [{ ...base, policy: { rules: [{ name: 'x', decision: 'require_approval' }] } }, /policy\.rules\.0\.approver_groups/],
    [{ ...base, listen: { port: 80, hots: 'x' } }, /listen: Unrecognized key: "hots"/],
    [{ signing: { key_file: 'k' } }, /packs: /],
    [{ ...base, principals: [{ id: 'a', kind: 'agent', token_sha256: hashToken('x') }, { id: 'a', kind: 'operator', token_sha256: hashToken('y') }] }, /principals\.1\.id: "a" is declared twice/],
  ]
  for (const [input, re] of cases) t.throws(() => parseConfig(input), { name: 'ConfigError', message: re })
  t.throws(() => loadConfig(write('broken.yaml', 'packs: [unclosed')), ConfigError)
  t.throws(() => loadConfig(join(dir, 'missing.yaml')), { message: /cannot read config file/ })
})

t.test('YAML config with env overrides, a policy file, and paths relative to the file', async (t) => {
  write('policy.yaml', 'rules:\n  - name: from-file\n    decision: allow\n')
  const file = write('cp.yaml', 'packs: { dirs: [packs] }\nsigning: { key_file: keys/signing.pem }\npolicy: { file: policy.yaml }\nnats: { servers: ["nats://10.0.0.1:4222"] }\n')
  const c = loadConfig(file, { WRIT_NATS_URL: 'nats://a:4222,nats://b:4222', WRIT_JS_REPLICAS: '3', WRIT_LISTEN_PORT: '9999' })
  t.same(c.nats.servers, ['nats://a:4222', 'nats://b:4222'])
  t.equal(c.jetstream.replicas, 3)
  t.equal(c.listen.port, 9999)
  t.equal(c.packs.dirs[0], join(dir, 'packs'))
  t.equal(c.signing.key_file, join(dir, 'keys', 'signing.pem'))
  t.equal(c.policy.rules[0]?.name, 'from-file')
  t.throws(() => loadConfig(file, { WRIT_JS_REPLICAS: 'three' }), { message: /jetstream\.replicas/ })
})

t.test('boot fails naming the setting when the key or the packs are wrong', async (t) => {
  const c = parseConfig({ ...base, packs: { dirs: [join(dir, 'nothing-here')] }, signing: { key_file: join(dir, 'nokey.pem') }, log: { level: 'silent' } })
  await t.rejects(buildApp(c), { message: /signing\.key_file/ })
  writeFileSync(join(dir, 'bad.pem'), 'not a key')
  await t.rejects(buildApp({ ...c, signing: { key_file: join(dir, 'bad.pem') } }), { message: /signing\.key_file .* not an Ed25519 private key/ })
})


t.test('policy matching', async (t) => {
  const cfg = parseConfig({ ...base, policy: { rules: [
    { name: 'no-drain-in-prod', match: { actions: ['nomad.node_drain'], node_pools: ['prod*'] }, decision: 'deny', reason: 'drains in prod go through change control' },
    { name: 'alloc-stop-needs-two', match: { actions: ['nomad.alloc_*'] }, decision: 'require_approval', approver_groups: ['oncall'], quorum: 2, ttl: '10m' },
    { name: 'dc2-agents-read', match: { datacenters: ['dc2'], groups: ['readers'], max_risk: 'low' }, decision: 'allow' },
    { name: 'bob-on-web', match: { principals: ['bob'], nodes: ['web-*'] }, decision: 'allow' },
    { name: 'gpu-class-critical', match: { node_classes: ['gpu'], risk: ['critical'] }, decision: 'deny', reason: 'never on gpu nodes' },
    { name: 'operators', match: { kinds: ['operator'] }, decision: 'allow' },
  ] } })
  const policy = new Policy(cfg.policy.rules)
  const agent = (id: string, groups: string[] = []) => ({ id, kind: 'agent' as const, groups })
  const node = (name: string, extra: Record<string, string> = {}) => ({ id: name, name, ...extra })
  t.match(policy.evaluate({ action: 'nomad.node_drain', risk: 'high', node: node('n1', { node_pool: 'prod-a' }), principal: { id: 'o', kind: 'operator', groups: [] } }), { decision: 'deny', rule: 'no-drain-in-prod' })
  t.match(policy.evaluate({ action: 'nomad.node_drain', risk: 'high', node: node('n1', { node_pool: 'dev' }), principal: { id: 'o', kind: 'operator', groups: [] } }), { decision: 'allow', rule: 'operators' })
  t.match(policy.evaluate({ action: 'nomad.alloc_stop', risk: 'high', node: node('n1'), principal: agent('a') }), { decision: 'require_approval', quorum: 2, approver_groups: ['oncall'], ttl: '10m' })
  t.match(policy.evaluate({ action: 'debugging.loadavg', risk: 'low', node: node('n1', { datacenter: 'dc2' }), principal: agent('a', ['readers']) }), { decision: 'allow', rule: 'dc2-agents-read' })
  t.match(policy.evaluate({ action: 'docker.logs', risk: 'medium', node: node('n1', { datacenter: 'dc2' }), principal: agent('a', ['readers']) }), { decision: 'deny', rule: null, reason: DEFAULT_DENY_REASON }, 'risk above max_risk falls through to default deny')
  t.match(policy.evaluate({ action: 'debugging.loadavg', risk: 'low', node: node('n1', { datacenter: 'dc1' }), principal: agent('a', ['readers']) }), { decision: 'deny', rule: null })
  t.match(policy.evaluate({ action: 'x.y', risk: 'critical', node: node('web-3'), principal: agent('bob') }), { decision: 'allow', rule: 'bob-on-web' })
  t.match(policy.evaluate({ action: 'x.y', risk: 'critical', node: node('db-3'), principal: agent('bob') }), { decision: 'deny', rule: null })
  t.match(policy.evaluate({ action: 'x.y', risk: 'critical', node: node('g1', { node_class: 'gpu' }), principal: { id: 'o', kind: 'operator', groups: [] } }), { decision: 'deny', reason: 'never on gpu nodes' })
  t.match(new Policy([]).evaluate({ action: 'x.y', risk: 'low', node: node('n'), principal: agent('a') }), { decision: 'deny', reason: DEFAULT_DENY_REASON })
})

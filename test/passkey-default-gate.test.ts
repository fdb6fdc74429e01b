/**
 * What the approver registry gates when the administrator names no
 * `min_risk`: every action that changes state — its side effects are not
 * declared "None" — and everything at or above high risk. So
 * `nomad.node_eligibility` (medium, it changes where Nomad places work) needs
 * a passkey-signed approval on the runner and on the control plane alike,
 * while a read (`nomad.node_status`, "None. A read-only GET") does not. An
 * explicit `min_risk` keeps meaning exactly that risk and above.
 */
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { approvalBinding, generateSigningKeyPair, loadSigningKey, signWrit, type Writ } from '@writ/packs/protocol'
import { bindingChallenge, type ApproverRegistryInput } from '@writ/packs/approvers'
import { buildApp, parseConfig } from '@writ/control-plane'
import { startRunnerHarness, STOCK_PACKS, type RunnerHarness } from './helpers/runner-harness.js'
import { startNomadDouble, type NomadDouble } from './doubles/nomad-api.js'
import { publishRegistry, registryOf, testApprover } from './helpers/approver-registry.js'
import { eventually, startFakeRunner } from './helpers/cp-fake-runner.js'
import { auth, makeCpFixture } from './helpers/cp-fixtures.js'

const dir = mkdtempSync(join(tmpdir(), 'writ-default-gate-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const approvers = generateSigningKeyPair()
const approversKey = loadSigningKey(approvers.privatePem)
writeFileSync(join(dir, 'approvers.pub.pem'), approvers.publicPem)
const registryFile = join(dir, 'approvers.json')
const ops1 = testApprover('ops-1', ['oncall'])
/** As `writ approvers export` writes it from a policy that names no min_risk. */
const byDefault: ApproverRegistryInput['require'] = { default: { groups: ['oncall'], quorum: 1 }, rules: [] }
publishRegistry(registryFile, registryOf([ops1], byDefault, new Date(Date.now() - 60_000)), approversKey)

let nomad: NomadDouble
let h: RunnerHarness
t.before(async () => {
  nomad = await startNomadDouble()
  // The runner runs on the fixtures' node, so node actions about it pass its locality check.
  h = await startRunnerHarness({ nodeId: nomad.ids.node, extraConfig: { nomadAddr: nomad.addr, approversRegistry: registryFile, approversKeys: [join(dir, 'approvers.pub.pem')], approversReloadMs: 100 } })
})
t.teardown(async () => { await h?.stop(); await nomad?.close() })

const eligibilityPosts = (): number => nomad.requests.filter((r) => r.method === 'POST' && r.path === `/v1/node/${nomad.ids.node}/eligibility`).length
const cordon = (): Writ => h.writ('nomad.node_eligibility', { node_id: nomad.ids.node, eligibility: 'ineligible' }, { reason: 'the node\'s multipath paths flap; keep new work off it' })
function approvedByOps1(writ: Writ): Writ {
  const binding = approvalBinding(writ)
  return { ...writ, approvals: [{ by: 'ops-1', at: new Date().toISOString(), binding, passkey: ops1.passkey.assert(bindingChallenge(binding)) }] }
}

t.test('runner: nomad.node_eligibility (medium, changes state) needs a passkey approval by default; a read does not', async (t) => {
  // run() waits for the result when the runner accepts, so a cordon that ran has reached Nomad by the check below.
  const { ack: bare } = await h.run('nomad.node_eligibility', { node_id: nomad.ids.node, eligibility: 'ineligible' }, { reason: 'the node\'s multipath paths flap; keep new work off it' })
  t.equal(bare.accepted, false, 'a cordon signed with the dispatch key alone is refused')
  if (!bare.accepted) {
    t.equal(bare.refusal.code, 'passkey_required')
    t.match(bare.refusal.message, /nomad\.node_eligibility needs passkeys \(it changes state: its side effects are not declared None\)/)
    t.comment(`runner: ${bare.refusal.code} — ${bare.refusal.message}`)
  }
  t.equal(eligibilityPosts(), 0, 'nothing reached Nomad')

  const signed = await h.send(signWrit(approvedByOps1(cordon()), h.key))
  t.ok(signed.accepted, 'with ops-1\'s passkey over the run it goes through')
  await eventually(() => eligibilityPosts() === 1, 10_000, 'the eligibility change to reach Nomad')

  const { ack, result } = await h.run('nomad.node_status', { node_id: nomad.ids.node })
  t.ok(ack.accepted, 'a read ("None. A read-only GET") needs no passkey')
  t.equal(result?.status, 'succeeded')
})

t.test('an explicit min_risk keeps its meaning: min_risk high lets the medium-risk cordon through without passkeys', async (t) => {
  const issued = new Date()
  publishRegistry(registryFile, registryOf([ops1], { ...byDefault, min_risk: 'high' }, issued), approversKey)
  await eventually(() => h.runner.approverRegistry()?.issued_at === issued.toISOString(), 10_000, 'the runner to load the registry with min_risk')
  const ack = await h.send(signWrit(cordon(), h.key))
  t.ok(ack.accepted, 'accepted: the administrator asked for passkeys only from high risk')
  await eventually(() => eligibilityPosts() === 2, 10_000, 'the change to reach Nomad')
})

t.test('control plane: the same actions wait for a passkey there', async (t) => {
  const fx = makeCpFixture(h.nats.url)
  t.teardown(() => fx.cleanup())
  const cpRegistry = join(fx.dir, 'approvers.json')
  publishRegistry(cpRegistry, registryOf([ops1], byDefault), approversKey)
  const config = parseConfig({
    ...fx.config, public_url: 'http://localhost:8480', packs: { dirs: [...fx.config.packs.dirs, STOCK_PACKS] },
    passkeys: { registry_file: cpRegistry, approvers_key_file: join(dir, 'approvers.pub.pem') },
    policy: { rules: [
      { name: 'changes-need-a-person', match: { risk: ['medium', 'high', 'critical'] }, decision: 'require_approval', approver_groups: ['oncall'], quorum: 1, ttl: '15m' },
      { name: 'agents-read', match: { kinds: ['agent'] }, decision: 'allow' },
    ] },
  })
  const app = await buildApp(config)
  t.teardown(() => app.close())
  const node = 'host-gate'
  const runner = await startFakeRunner({ natsUrl: h.nats.url, nodeId: node, packDirs: config.packs.dirs, publicKeyFile: fx.publicKeyFile })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find(node)?.online, 10_000, 'heartbeat')
  const request = async (action: string, args: Record<string, unknown>) =>
    (await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action, node, args, reason: 'checking the node before the maintenance' } })).json()

  const cordonRun = await request('nomad.node_eligibility', { node_id: '5e0d9a41-7c3b-4f28-9a61-2b8c4d7e1f03', eligibility: 'ineligible' })
  t.match(cordonRun, { status: 'pending_approval', approval: { passkey_required: true } }, 'the cordon waits for a passkey-signed approval')
  const plain = await app.inject({ method: 'POST', url: `/v1/runs/${cordonRun.id}/approve`, headers: auth(fx.tokens.operator), payload: {} })
  t.equal(plain.statusCode, 403)
  t.equal(plain.json().error.code, 'WRIT_ERR_PASSKEY_REQUIRED')
  t.match(plain.json().error.message, /the approver registry asks for it: it changes state/)
  t.comment(`control plane: ${plain.json().error.message}`)

  const read = await request('nomad.node_status', { node_id: '5e0d9a41-7c3b-4f28-9a61-2b8c4d7e1f03' })
  t.not(read.status, 'pending_approval', 'the read is not held for anyone')
  t.notOk(read.approval, 'and asks for no passkey')

  // testops.sleep is low risk and declares no side effects (so it counts as a change), and policy lets agents run it at once: runners would refuse
  // it without passkeys, so the control plane holds it for them instead of dispatching it to a refusal.
  const writsBefore = runner.writs.length
  const echo = await (await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.echo', node, args: { message: 'changes nothing' }, reason: 'a read' } })).json()
  t.not(echo.status, 'pending_approval', 'a low-risk read that policy allows still runs at once')
  const low = await (await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.sleep', node, args: { seconds: 0 }, reason: 'a low-risk change' } })).json()
  t.match(low, { status: 'pending_approval', approval: { passkey_required: true, approver_groups: ['oncall'], quorum: 1 }, policy: { decision: 'require_approval', rule: /agents-read, gated by the approver registry's default: it changes state/ } },
    'a low-risk change that policy allows waits for a passkey-signed approval')
  t.equal(runner.writs.length, writsBefore + 1, 'only the read was dispatched')
})

// Bench: what passkey-signed approvals add on the runner, per writ. Round
// trips over NATS to one runner that holds an approver registry: a low-risk
// action with no approvals (the baseline) against the same command declared
// high risk, carrying one and two passkey approvals the runner verifies. And
// the check alone (checkPasskeyApprovals) per writ, in a child process under
// the runner's low-memory profile and the default one, with the one-time
// cost of loading the verifier (it is loaded on the first writ that needs it).
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import { connect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { pino } from 'pino'
import { loadPacks } from '@writ/packs'
import { WRIT_VERSION, approvalBinding, generateSigningKeyPair, loadSigningKey, newBindingSalt, newNonce, signWrit, streams, subjects } from '@writ/packs/protocol'
import { bindingChallenge, signApproverRegistry } from '@writ/packs/approvers'
import { loadRunnerConfig, startNodeRunner } from '@writ/node-runner'
import { createSoftwareAuthenticator } from '../test/helpers/software-authenticator.js'
import { percentile, startNats } from './nats-for-bench.js'
import { idleRssKb } from './runner-roundtrip.js'

const RUNS = Number(process.env.BENCH_PASSKEY_RUNS ?? process.env.BENCH_RUNS ?? 300)
const CHECKS = Number(process.env.BENCH_PASSKEY_CHECKS ?? 500)
const root = resolve(new URL('..', import.meta.url).pathname)
const RP = { id: 'writ.bench.test', origins: ['https://writ.bench.test'] }

/** A pack with one command twice: low risk (no approval needed) and high risk (passkeys needed). */
function writeBenchPack(dir) {
  mkdirSync(join(dir, 'actions'), { recursive: true })
  writeFileSync(join(dir, 'pack.yaml'), 'schema_version: 1\nid: bench\nname: Bench\nversion: 1.0.0\nactions: [actions/low.yaml, actions/high.yaml]\n')
  for (const [name, risk] of [['low', 'low'], ['high', 'high']]) {
    writeFileSync(join(dir, 'actions', `${name}.yaml`), `schema_version: 1\nid: bench.${name}\ntitle: True (${risk} risk)\nkind: exec\nrisk: ${risk}\nargs: []\nexecution:\n  command: { binary: /bin/true, argv: [] }\n  timeout: 5s\n`)
  }
}

/** Builds an approver registry with `people` oncall approvers and their software passkeys. */
export function benchRegistry(people, approversKey, quorum = 1) {
  const approvers = Array.from({ length: people }, (_, i) => ({ operator: `ops-${i}`, passkey: createSoftwareAuthenticator({ rpId: RP.id, origin: RP.origins[0] }) }))
  const now = new Date().toISOString()
  const signed = signApproverRegistry({
    v: 1, kind: 'writ.approver-registry', issued_at: now, relying_party: RP,
    require: { min_risk: 'high', default: { groups: ['oncall'], quorum }, rules: [] },
    approvers: approvers.map((a) => ({ operator: a.operator, person: a.operator, principals: [a.operator], groups: ['oncall'], credential_id: a.passkey.credentialId, public_key: a.passkey.publicKey, registered_at: now })),
  }, approversKey)
  return { signed, approvers }
}

export function approvedWrit(base, approvers) {
  const binding = approvalBinding(base)
  return { ...base, approvals: approvers.map((a) => ({ by: a.operator, at: new Date().toISOString(), binding, passkey: a.passkey.assert(bindingChallenge(binding)) })) }
}

export async function runnerPasskeys() {
  const nats = await startNats()
  const dir = mkdtempSync(join(tmpdir(), 'writ-bench-passkeys-'))
  const dispatch = generateSigningKeyPair()
  writeFileSync(join(dir, 'trusted.pem'), dispatch.publicPem)
  const key = loadSigningKey(dispatch.privatePem)
  const approversPair = generateSigningKeyPair()
  writeFileSync(join(dir, 'approvers.pub.pem'), approversPair.publicPem)
  const { signed, approvers } = benchRegistry(2, loadSigningKey(approversPair.privatePem))
  writeFileSync(join(dir, 'approvers.json'), JSON.stringify(signed))
  writeBenchPack(join(dir, 'packs', 'bench'))
  const nc = await connect({ servers: nats.url })
  await (await jetstreamManager(nc)).streams.add({ name: streams.results.name, subjects: [...streams.results.subjects] })
  const runner = await startNodeRunner(loadRunnerConfig({}, {
    WRIT_NATS_URL: nats.url, WRIT_NODE_ID: 'bench', WRIT_NODE_NAME: 'bench', WRIT_PACKS: join(dir, 'packs'), WRIT_TRUSTED_KEYS: join(dir, 'trusted.pem'),
    WRIT_JOURNAL: join(dir, 'journal.jsonl'), WRIT_APPROVERS_REGISTRY: join(dir, 'approvers.json'), WRIT_APPROVERS_KEYS: join(dir, 'approvers.pub.pem'),
  }), pino({ level: 'silent' }))
  const digest = loadPacks([join(dir, 'packs')]).packs[0].digest
  const enc = new TextEncoder()
  const dec = new TextDecoder()

  const writ = (action) => {
    const now = Date.now()
    return { v: WRIT_VERSION, run_id: `run_${randomBytes(8).toString('hex')}`, node_id: 'bench', node_name: 'bench', action, pack: 'bench', pack_digest: digest, args: {}, reason: 'bench', requester: { id: 'bench-agent', kind: 'agent' }, approvals: [], request_hash: 'e'.repeat(64), options: {}, issued_at: new Date(now).toISOString(), expires_at: new Date(now + 60000).toISOString(), nonce: newNonce(), binding_salt: newBindingSalt() }
  }
  // The assertions are made before the clock starts: only the runner's work is timed.
  const roundTrip = async (w) => {
    const signedWrit = JSON.stringify(signWrit(w, key))
    const sub = nc.subscribe(subjects.result('bench', w.run_id), { max: 1 })
    const t0 = performance.now()
    const ack = JSON.parse(dec.decode((await nc.request(subjects.run('bench'), enc.encode(signedWrit), { timeout: 5000 })).data))
    if (!ack.accepted) throw new Error(`bench writ refused: ${ack.refusal.code}: ${ack.refusal.message}`)
    for await (const m of sub) { const r = JSON.parse(dec.decode(m.data)); if (r.status !== 'succeeded') throw new Error(`bench run ${r.status}`); break }
    return performance.now() - t0
  }
  const variants = [
    ['low risk, no approvals (baseline)', () => writ('bench.low')],
    ['high risk, 1 passkey approval', () => approvedWrit(writ('bench.high'), approvers.slice(0, 1))],
    ['high risk, 2 passkey approvals', () => approvedWrit(writ('bench.high'), approvers)],
  ]
  // Warm-up loads the verifier (its one-time cost is measured separately below).
  for (let i = 0; i < 20; i++) for (const [, make] of variants) await roundTrip(make())
  const times = variants.map(() => [])
  for (let i = 0; i < RUNS; i++) for (const [v, [, make]] of variants.entries()) times[v].push(await roundTrip(make()))
  for (const t of times) t.sort((a, b) => a - b)
  await runner.close(); await nc.close(); await nats.stop(); rmSync(dir, { recursive: true, force: true })

  const r = (x) => x.toFixed(2)
  const base50 = percentile(times[0], 50)
  const base99 = percentile(times[0], 99)
  const rows = variants.map(([name], v) => [name, r(percentile(times[v], 50)), r(percentile(times[v], 99)), `${(percentile(times[v], 50) / base50).toFixed(2)}x`, v === 0 ? '—' : r(percentile(times[v], 50) - base50), v === 0 ? '—' : r(percentile(times[v], 99) - base99)])

  const check = (nodeOptions) => JSON.parse(execFileSync(process.execPath, [...nodeOptions, new URL('./passkey-check-child.js', import.meta.url).pathname, String(CHECKS)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }))
  const lowMem = check(['--max-semi-space-size=1', '--jitless'])
  const dflt = check([])
  rows.push(['', '', '', '', '', ''])
  rows.push(['check alone, 1 approval (runner profile: --jitless)', `${lowMem.perWritUs.toFixed(0)} µs`, '', '', '', ''])
  rows.push(['check alone, 1 approval (default profile)', `${dflt.perWritUs.toFixed(0)} µs`, '', '', '', ''])
  // Idle memory with an approver registry loaded (the verifier itself is not loaded until a writ needs it).
  const rssDir = mkdtempSync(join(tmpdir(), 'writ-bench-passkeys-rss-'))
  const rssApprovers = generateSigningKeyPair()
  writeFileSync(join(rssDir, 'approvers.pub.pem'), rssApprovers.publicPem)
  writeFileSync(join(rssDir, 'approvers.json'), JSON.stringify(benchRegistry(20, loadSigningKey(rssApprovers.privatePem)).signed))
  const withRegistry = await idleRssKb('--max-semi-space-size=1 --jitless', ['--approvers-registry', join(rssDir, 'approvers.json'), '--approvers-key', join(rssDir, 'approvers.pub.pem')])
  rmSync(rssDir, { recursive: true, force: true })
  rows.push(['idle runner with a registry of 20 passkeys (runner profile)', `${(withRegistry / 1024).toFixed(1)} MiB`, '', '', '', 'target ≤ 60 MiB'])
  rows.push(['first use: loading the verifier (runner profile / default)', `${lowMem.loadMs.toFixed(0)} / ${dflt.loadMs.toFixed(0)} ms`, '', '', '', `RSS +${lowMem.rssAddedMiB.toFixed(1)} MiB (runner profile)`])
  return {
    title: `passkey verification on the runner — writ round trip over NATS to /bin/true, ${RUNS} runs each, ratio to a writ without approvals; the check alone over ${CHECKS} writs`,
    header: ['writ', 'p50 ms', 'p99 ms', 'p50 ratio', 'added p50 ms', 'added p99 ms'],
    rows,
  }
}

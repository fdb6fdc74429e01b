// Child of the runner-passkeys bench: the one-time import of the verifier
// (time and RSS, measured before anything else loads it), then
// checkPasskeyApprovals per writ in this process (so NODE flags can be the
// runner's). Prints one JSON line.
import { generateSigningKeyPair, loadSigningKey, newBindingSalt, newNonce, WRIT_VERSION } from '@writ/packs/protocol'

const n = Number(process.argv[2] ?? 500)
const rssBefore = process.memoryUsage().rss
const t0 = performance.now()
const { checkPasskeyApprovals } = await import('@writ/packs/passkeys')
const loadMs = performance.now() - t0
const rssAddedMiB = (process.memoryUsage().rss - rssBefore) / 1048576
// The software authenticator loads parts of the same library: only after the measurement above.
const { benchRegistry, approvedWrit } = await import('./runner-passkeys.js')
const { signed, approvers } = benchRegistry(1, loadSigningKey(generateSigningKeyPair().privatePem))
const writ = () => approvedWrit({ v: WRIT_VERSION, run_id: `run_${newNonce()}`, node_id: 'bench', node_name: 'bench', action: 'bench.high', pack: 'bench', pack_digest: '0'.repeat(64), args: {}, reason: 'bench', requester: { id: 'bench-agent', kind: 'agent' }, approvals: [], options: {}, issued_at: new Date().toISOString(), expires_at: new Date(Date.now() + 60000).toISOString(), nonce: newNonce(), binding_salt: newBindingSalt() }, approvers)
const writs = Array.from({ length: n + 50 }, writ)
// The declared action, as the runner's catalog gives it (risk and side effects).
const declared = { risk: 'high', side_effects: ['Stops the bench workload.'] }
for (const w of writs.slice(0, 50)) if (!(await checkPasskeyApprovals(w, declared, signed.registry)).ok) throw new Error('bench writ did not verify')
const t1 = performance.now()
for (const w of writs.slice(50)) await checkPasskeyApprovals(w, declared, signed.registry)
const perWritUs = ((performance.now() - t1) / n) * 1000
process.stdout.write(`${JSON.stringify({ perWritUs, loadMs, rssAddedMiB })}\n`)

// The audit check a bench ends with, done as a person does it: `writ audit
// verify` against the stream, with the key the control plane signs
// checkpoints with and the runners' journals as witnesses. Reading /v1/audit
// as the bench agent would not do: an agent sees only its own events (no
// checkpoints, none of the other principals'), so that chain always has gaps.
import { execFile } from 'node:child_process'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'

const root = resolve(new URL('..', import.meta.url).pathname)
const pexec = promisify(execFile)

/**
 * Runs `writ audit verify --json` and returns its report (`ok`, `problems`,
 * `events`, `checkpoints`, `uncovered`, `witnesses`). Exit 1 (a broken chain)
 * is a report like any other; anything else that fails (a usage error, NATS
 * unreachable) throws, so a bench never prints a verdict it did not get.
 */
export async function auditVerify({ natsUrl, trustedKeyFile, journals }) {
  const args = [join(root, 'control-plane', 'dist', 'cli.js'), 'audit', 'verify', '--nats', natsUrl, '--trusted-keys', trustedKeyFile, '--json']
  for (const j of journals) args.push('--witness', j)
  const { stdout, stderr, code } = await pexec(process.execPath, args, { maxBuffer: 64 * 1024 * 1024 })
    .then((r) => ({ ...r, code: 0 }), (e) => ({ stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: e.code }))
  if (code !== 0 && code !== 1) throw new Error(`writ audit verify exited ${code}: ${stderr.trim()}`)
  return JSON.parse(stdout)
}

/** The rows a bench prints for a verify report: enough to see what was checked, and the first problem if any. */
export function auditRows(r) {
  const covered = r.checkpoints.last === undefined
    ? (r.checkpoints.bad > 0 ? 'none: no checkpoint verifies' : 'none: no signed checkpoint')
    : r.uncovered.count === 0 ? `every event (last checkpoint at sequence ${r.checkpoints.last.seq})` : `all but the last ${r.uncovered.count} event(s)`
  return [
    ['audit verify: chain verifies (trusted key, runner journals as witnesses)', String(r.ok)],
    ['audit verify: events', String(r.events)],
    ['audit verify: signed checkpoints (bad)', `${r.checkpoints.count} (${r.checkpoints.bad})`],
    ['audit verify: covered by a checkpoint', covered],
    ['audit verify: witnessed request hashes on the chain', `${r.witnesses.onChain} of ${r.witnesses.checked}`],
    ...(r.ok ? [] : [['audit verify: first problem', (r.problems[0] ?? '?').slice(0, 200)]]),
  ]
}

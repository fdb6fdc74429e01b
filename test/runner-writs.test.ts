/**
 * The spine end to end: signed writs over a real nats-server to a real
 * node-runner on this machine — what runs, and everything that is refused.
 */
import t from 'tap'
import { existsSync, readFileSync, readdirSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { generateSigningKeyPair, loadSigningKey, signWrit } from '@writ/packs/protocol'
import { startRunnerHarness, type RunnerHarness } from './helpers/runner-harness.js'
import { eventually } from './helpers/cp-fake-runner.js'

let h: RunnerHarness
t.before(async () => { h = await startRunnerHarness() })
t.teardown(async () => { await h.stop() })

const journalEntries = (): Array<{ type: string, run_id: string, data: Record<string, unknown> }> =>
  readFileSync(h.journal, 'utf8').trim().split('\n').map((l) => JSON.parse(l))

t.test('debugging.dmesg_tail runs on this machine and returns real kernel lines', async (t) => {
  const { ack, result } = await h.run('debugging.dmesg_tail', {})
  t.ok(ack.accepted, 'the runner accepts the signed writ')
  t.equal(result?.status, 'succeeded', result?.error ?? '')
  t.ok((result?.stdout.length ?? 0) > 0, 'kernel log text came back')
  const parsed = result?.parsed as { lines?: Array<{ text: string }> } | Array<{ text: string }> | undefined
  const lines = Array.isArray(parsed) ? parsed : parsed?.lines
  t.ok(lines && lines.length > 0, 'the dmesg parser produced structured lines')
  t.match(result?.stdout, /Linux version|Command line|Memory|kernel/i, 'the lines are this kernel\'s messages')
  t.match(result?.output_sha256, /^[0-9a-f]{64}$/)
})

t.test('a refused writ runs nothing, is answered with its reason, and is journaled', async (t) => {
  const canary = (name: string): string => join(h.canaryDir, name)
  const cases: Array<{ name: string, code: string, make: () => unknown }> = [
    { name: 'forged (signed by an untrusted key)', code: 'unknown_key', make: () => signWrit(h.writ('canary.mark', { name: 'forged' }), loadSigningKey(generateSigningKeyPair().privatePem)) },
    { name: 'tampered after signing', code: 'bad_signature', make: () => { const s = signWrit(h.writ('canary.mark', { name: 'ok' }), h.key); return { ...s, writ: { ...s.writ, args: { name: 'tampered' } } } } },
    { name: 'expired', code: 'expired', make: () => signWrit(h.writ('canary.mark', { name: 'expired' }, { issued_at: new Date(Date.now() - 600_000).toISOString(), expires_at: new Date(Date.now() - 300_000).toISOString() }), h.key) },
    { name: 'mis-targeted', code: 'wrong_node', make: () => signWrit(h.writ('canary.mark', { name: 'wrongnode' }, { node_id: 'some-other-node' }), h.key) },
    { name: 'digest mismatch', code: 'digest_mismatch', make: () => signWrit(h.writ('canary.mark', { name: 'digest' }, { pack_digest: 'f'.repeat(64) }), h.key) },
    { name: 'bad argument', code: 'bad_args', make: () => signWrit(h.writ('canary.mark', { name: 'Bad Name!' }), h.key) },
    { name: 'unknown argument', code: 'bad_args', make: () => signWrit(h.writ('canary.mark', { name: 'unknownarg', extra: 'x' }), h.key) },
    { name: 'unknown action', code: 'unknown_action', make: () => signWrit(h.writ('canary.mark', { name: 'x' }, { action: 'canary.nope' }), h.key) },
    { name: 'not a writ at all', code: 'malformed', make: () => ({ hello: 'world' }) },
  ]
  for (const c of cases) {
    const ack = await h.send(c.make())
    t.equal(ack.accepted, false, `${c.name}: refused`)
    if (!ack.accepted) {
      t.equal(ack.refusal.code, c.code, `${c.name}: reason ${c.code}`)
      t.ok(ack.refusal.message.length > 10, `${c.name}: with a message (${ack.refusal.message})`)
    }
  }
  // Verified writs are journaled one by one (their run id is burned, with the request hash they witness);
  // what anyone could send (forged, malformed, expired) is counted in a summary, written at the latest on stop.
  await h.restartRunner()
  // The restart drained the runner: whatever it had started has finished, so any effect would be on disk by now.
  t.same(readdirSync(h.canaryDir), [], 'no canary file was created by any refused writ')
  const entries = journalEntries()
  const refused = entries.filter((e) => e.type === 'refused')
  const verifiedCodes = ['wrong_node', 'digest_mismatch', 'bad_args', 'unknown_action']
  t.same(new Set(refused.map((e) => e.data.code)), new Set(verifiedCodes), 'each verified refusal is journaled with its reason')
  t.ok(refused.every((e) => typeof e.data.request_hash === 'string'), 'with the request hash its writ carried')
  const counted: Record<string, number> = {}
  for (const e of entries.filter((x) => x.type === 'refusals')) for (const [k, v] of Object.entries(e.data.counts as Record<string, number>)) counted[k] = (counted[k] ?? 0) + v
  t.same(counted, { unknown_key: 1, bad_signature: 1, expired: 1, malformed: 1 }, 'the rest are counted by reason')
  t.notOk(existsSync(canary('forged')))
})

t.test('a replayed writ never runs twice, even across a runner restart', async (t) => {
  const writ = h.writ('canary.mark', { name: 'replay' })
  const signed = signWrit(writ, h.key)
  const first = await h.send(signed)
  t.ok(first.accepted, 'first delivery runs')
  await eventually(() => existsSync(join(h.canaryDir, 'replay')), 5000, 'the marker the action creates')
  t.pass('the action ran once')
  const { rmSync } = await import('node:fs')
  rmSync(join(h.canaryDir, 'replay'))
  const second = await h.send(signed)
  t.equal(second.accepted, false)
  if (!second.accepted) t.equal(second.refusal.code, 'replayed')
  // Each restart drains the runner: whatever it had started has finished, so a second run's marker would be on disk.
  await h.restartRunner()
  t.notOk(existsSync(join(h.canaryDir, 'replay')), 'the replay did not run')
  const third = await h.send(signed)
  t.equal(third.accepted, false, 'after a restart the journal still knows the run id')
  if (!third.accepted) t.equal(third.refusal.code, 'replayed')
  await h.restartRunner()
  t.notOk(existsSync(join(h.canaryDir, 'replay')), 'nothing ran again')
})

t.test('injection through a free-text argument stays one literal argv element', async (t) => {
  const payloads = ['; touch /tmp/writ-pwned-1', '$(touch /tmp/writ-pwned-2)', '`touch /tmp/writ-pwned-3`', '&& touch /tmp/writ-pwned-4 #', '| tee /tmp/writ-pwned-5']
  for (const p of payloads) {
    const { result } = await h.run('canary.echo', { text: p })
    t.equal(result?.stdout, p, `printed literally: ${p}`)
  }
  const nl = await h.run('canary.echo', { text: 'a\ntouch /tmp/writ-pwned-6' })
  t.equal(nl.ack.accepted, false, 'a newline is refused before anything runs')
  const flag = await h.run('canary.echo', { text: '--version' })
  t.equal(flag.ack.accepted, false, 'a --flag lookalike in its own argv element is refused')
  if (!flag.ack.accepted) t.match(flag.ack.refusal.message, /may not start with "-"/)
  for (let i = 1; i <= 6; i++) t.notOk(existsSync(`/tmp/writ-pwned-${i}`), `/tmp/writ-pwned-${i} does not exist`)
})

t.test('a list action stays inside its root: no "..", no symlink escape', async (t) => {
  mkdirSync(join(h.listRoot, 'vol1'), { recursive: true })
  writeFileSync(join(h.listRoot, 'vol1', 'data'), 'x')
  symlinkSync('/etc', join(h.listRoot, 'escape'))
  const ok = await h.run('canary.ls', {})
  t.equal(ok.result?.status, 'succeeded')
  const listing = ok.result?.parsed as { entries: Array<{ path: string, type: string, target?: string }> }
  t.same(listing.entries.map((e) => e.path).sort(), ['escape', 'vol1', 'vol1/data'])
  t.match(listing.entries.find((e) => e.path === 'escape'), { path: 'escape', type: 'symlink', target: '/etc' }, 'the symlink is reported, not followed')
  t.notOk(JSON.stringify(listing).includes('passwd'), 'nothing from /etc leaked')
  const up = await h.run('canary.ls', { path: '../..' })
  t.equal(up.ack.accepted, false, '"../.." is refused before running')
  if (!up.ack.accepted) t.equal(up.ack.refusal.code, 'bad_args')
  const link = await h.run('canary.ls', { path: 'escape' })
  t.equal(link.result?.status, 'failed', 'listing through the symlink fails')
  t.match(link.result?.error, /outside/)
})

t.test('timeouts kill the process group; output caps are marked; output streams live', async (t) => {
  const slow = await h.run('canary.sleep', { seconds: 30 })
  t.equal(slow.result?.status, 'timed_out')
  t.ok((slow.result?.duration_ms ?? 99999) < 6000, `stopped at the 2 s timeout (took ${slow.result?.duration_ms} ms)`)
  const big = await h.run('canary.spew', { bytes: 50000 })
  t.equal(big.result?.status, 'succeeded')
  t.equal(big.result?.stdout_truncated, true)
  t.equal(big.result?.stdout_bytes, 50000, 'the full size is reported')
  t.match(big.result?.stdout, /output truncated at 1000 bytes of 50000/)
  const { createHash } = await import('node:crypto')
  t.equal(big.result?.output_sha256, createHash('sha256').update(Buffer.alloc(50000)).digest('hex'), 'sha256 covers the full output')
  const echo = await h.run('canary.echo', { text: 'live output' })
  t.same(echo.chunks.join(''), 'live output', 'the output arrived as live chunks too')
})

t.test('the heartbeat carries the inventory with pack digests', async (t) => {
  const { HeartbeatSchema, subjects } = await import('@writ/packs/protocol')
  const sub = h.nc.subscribe(subjects.heartbeat(h.nodeId), { max: 1 })
  for await (const m of sub) {
    const hb = HeartbeatSchema.parse(JSON.parse(new TextDecoder().decode(m.data)))
    t.equal(hb.node_id, h.nodeId)
    t.equal(hb.packs.find((p) => p.id === 'canary')?.digest, h.digestOf('canary'))
    t.ok(hb.packs.some((p) => p.id === 'debugging'), 'stock packs are announced')
  }
})

t.test('the runner checks the pack on disk before each run: an edited pack no longer matches the old digest', async (t) => {
  const { appendFileSync, readFileSync: read, writeFileSync: write } = await import('node:fs')
  const file = join(h.dir, 'packs', 'canary', 'actions', 'echo.yaml')
  const before = read(file, 'utf8')
  t.teardown(() => write(file, before))
  const oldDigest = h.digestOf('canary')
  appendFileSync(file, 'search_terms: [edited after the control plane loaded it]\n')
  const ack = await h.send(signWrit(h.writ('canary.echo', { text: 'x' }, { pack_digest: oldDigest }), h.key))
  t.equal(ack.accepted, false, 'a writ signed for the old pack content is refused')
  if (!ack.accepted) t.equal(ack.refusal.code, 'digest_mismatch')
})

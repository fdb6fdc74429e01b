/**
 * An audit chain you can prove, on a real nats-server with a real runner:
 * the stream refuses deletes and purges, signed checkpoints anchor the chain,
 * and `writ audit verify` catches an edited export, a re-created stream with
 * every hash recomputed, a tail cut after the last checkpoint, and a tail
 * deleted from a stream that still allowed it — through bad checkpoint
 * signatures, the stream's own sequence, or the request hashes the runner's
 * journal witnessed. A retention limit does not break verification.
 */
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { jetstreamManager, jetstream } from '@nats-io/jetstream'
import { readJournal } from '@writ/packs'
import { generateSigningKeyPair } from '@writ/packs/protocol'
import { AUDIT_STREAM, AUDIT_SUBJECT, CHECKPOINT_TYPE, buildApp, ensureStreams, hashEvent, GENESIS_HASH, type AuditEvent } from '@writ/control-plane'
import { startNatsServer, type NatsServerHandle } from './helpers/nats-server.js'
import { auth, makeCpFixture, type CpFixture } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'control-plane', 'dist', 'cli.js')

function writ(args: string[], env: Record<string, string> = {}): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 99) : 0, stdout, stderr })
    })
  })
}

async function streamEvents(nc: NatsConnection): Promise<AuditEvent[]> {
  const jsm = await jetstreamManager(nc)
  const info = await jsm.streams.info(AUDIT_STREAM)
  const out: AuditEvent[] = []
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(AUDIT_STREAM, { seq }).catch(() => null)
    if (m) out.push(m.json<AuditEvent>())
  }
  return out
}

/** What an attacker with the stream but not the key does: re-link every event after an edit. */
function rewrite(events: AuditEvent[]): AuditEvent[] {
  let prev = GENESIS_HASH
  return events.map((e, i) => {
    const { hash: _old, ...rest } = e
    const unsealed = { ...rest, seq: i + 1, prev }
    const sealed = { ...unsealed, hash: hashEvent(unsealed) }
    prev = sealed.hash
    return sealed
  })
}

/** Deletes WRIT_AUDIT and creates it again (as the control plane would) holding `events`. */
async function recreate(nc: NatsConnection, events: AuditEvent[]): Promise<void> {
  const jsm = await jetstreamManager(nc)
  await jsm.streams.delete(AUDIT_STREAM)
  await ensureStreams(nc, { replicas: 1, resultsMaxAge: '1h' })
  const js = jetstream(nc)
  for (const e of events) await js.publish(AUDIT_SUBJECT, JSON.stringify(e))
}

interface Stack { nats: NatsServerHandle, fx: CpFixture, nc: NatsConnection, journal: string, env: Record<string, string>, keys: string[] }

/** A control plane with short checkpoint intervals and a real runner; `runs` echo actions through it, then it stops. */
async function runStack(t: Test, runs: number, nats?: NatsServerHandle, fx?: CpFixture): Promise<Stack> {
  nats ??= await startNatsServer()
  const n = nats
  if (!fx) { t.teardown(() => n.stop()) }
  fx ??= makeCpFixture(nats.url, { audit: { checkpoint_interval: '200ms' } })
  const f = fx
  const app = await buildApp(fx.config)
  const runner = await startRealRunner(fx, nats.url, 'host-1')
  await eventually(() => app.writ.fleet.find('host-1')?.online, 5000, 'runner heartbeat')
  for (let i = 0; i < runs; i++) {
    const answer: { statusCode: number, body: string } = await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.echo', node: 'host-1', args: { message: `run ${i}` }, reason: `anchoring ${i}`, wait: 10 } })
    t.equal((JSON.parse(answer.body) as { status: string }).status, 'succeeded')
  }
  await runner.close()
  await app.close()
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  t.teardown(() => f.cleanup())
  return { nats, fx, nc, journal: join(fx.dir, 'journal-host-1.jsonl'), env: { WRIT_NATS_URL: nats.url }, keys: ['--trusted-keys', fx.publicKeyFile] }
}

t.test('checkpoints anchor the chain, the runner witnesses it, and delete and purge are refused', async (t) => {
  const s = await runStack(t, 3)
  const events = await streamEvents(s.nc)
  const checkpoints = events.filter((e) => e.type === CHECKPOINT_TYPE)
  t.ok(checkpoints.length >= 1, `checkpoints were appended (${checkpoints.length})`)
  t.equal(events.at(-1)?.type, CHECKPOINT_TYPE, 'the shutdown left the tail covered')
  const requested = events.filter((e) => e.type === 'run.requested')
  const journal = readJournal(readFileSync(s.journal, 'utf8'), s.journal)
  t.ok(journal.ok)
  if (journal.ok) t.same(journal.witnesses.map((w) => w.requestHash).sort(), requested.map((e) => e.hash).sort(), 'the runner journaled each run.requested hash its writs carried')

  const res: { code: number, stdout: string, stderr: string } = await writ(['audit', 'verify', ...s.keys, '--witness', s.journal], s.env)
  t.equal(res.code, 0, res.stderr)
  t.match(res.stdout, /audit chain OK \(stream WRIT_AUDIT at /)
  t.match(res.stdout, /checkpoints: \d+ signed by key\(s\) [0-9a-f]{16}; the last at sequence \d+, signed \d+ s ago, is the last event: every event is covered/)
  t.match(res.stdout, /stream: sequence 1–\d+, its last sequence read; deletes and purges refused/)
  t.match(res.stdout, /witnesses: 3 of 3 witnessed request hash\(es\) found on the chain/)

  const jsm = await jetstreamManager(s.nc)
  await t.rejects(jsm.streams.deleteMessage(AUDIT_STREAM, 2), /message delete not permitted/, 'a delete is refused by the stream')
  await t.rejects(jsm.streams.purge(AUDIT_STREAM), /stream purge not permitted/, 'a purge is refused by the stream')
  await t.rejects(jsm.streams.update(AUDIT_STREAM, { ...(await jsm.streams.info(AUDIT_STREAM)).config, deny_delete: false }), /can not cancel deny message deletes/, 'and the refusal cannot be switched off')
  t.equal((await writ(['audit', 'verify', '--trusted-keys', join(s.fx.dir, 'signing.pem.nope')], s.env)).code, 2, 'a missing key file is a usage error')

  t.test('a key that is not trusted does not vouch for the chain', async (t) => {
    const other = join(s.fx.dir, 'other.pub.pem')
    const { generateSigningKeyPair } = await import('@writ/packs/protocol')
    writeFileSync(other, generateSigningKeyPair().publicPem)
    const r = await writ(['audit', 'verify', '--trusted-keys', other], s.env)
    t.equal(r.code, 1)
    t.match(r.stderr, /checkpoint at sequence \d+: checkpoint is signed by key [0-9a-f]{16}, which is not among the trusted keys/)
  })

  t.test('an edited export with recomputed hashes is caught by the checkpoints', async (t) => {
    const exported = await writ(['audit', 'export'], s.env)
    const edited: AuditEvent[] = exported.stdout.trim().split('\n').map((l) => JSON.parse(l) as AuditEvent)
    const target = edited.find((e) => e.type === 'run.requested')!
    target.data = { ...target.data, reason: 'nothing to see here' }
    const file = join(s.fx.dir, 'edited.jsonl')
    writeFileSync(file, rewrite(edited).map((e) => JSON.stringify(e)).join('\n'))
    const r = await writ(['audit', 'verify', ...s.keys, '--file', file])
    t.equal(r.code, 1)
    t.match(r.stderr, /audit chain BROKEN \(.*edited\.jsonl\)\n {2}- checkpoint at sequence \d+: checkpoint signs sequence \d+ with head [0-9a-f]{16}…, but the event before it is \d+ with hash [0-9a-f]{16}… \(moved or recomputed\)/)
    // The attacker re-points each checkpoint at its new head too: now the signature fails.
    const repointed = rewrite(edited).map((e) => e)
    let prev = GENESIS_HASH
    const full = repointed.map((e, i) => {
      const { hash: _h, ...rest } = e
      const data = e.type === CHECKPOINT_TYPE ? { ...e.data, head: prev, covers_seq: i } : e.data
      const unsealed = { ...rest, data, seq: i + 1, prev }
      const sealed = { ...unsealed, hash: hashEvent(unsealed) }
      prev = sealed.hash
      return sealed
    })
    writeFileSync(file, full.map((e) => JSON.stringify(e)).join('\n'))
    const r2 = await writ(['audit', 'verify', ...s.keys, '--file', file])
    t.equal(r2.code, 1)
    t.match(r2.stderr, /checkpoint at sequence \d+: checkpoint signature does not verify \(the chain before it was rewritten\)/)
  })

  t.test('a re-created stream with recomputed hashes and no checkpoints is caught, and the witness names the run', async (t) => {
    const original = await streamEvents(s.nc)
    const forged = structuredClone(original.filter((e) => e.type !== CHECKPOINT_TYPE))
    const target = forged.find((e) => e.type === 'run.requested')!
    target.data = { ...target.data, args: { message: 'something else' } }
    await recreate(s.nc, rewrite(forged))
    const r = await writ(['audit', 'verify', ...s.keys, '--witness', s.journal, '--grace', '0s'], s.env)
    t.equal(r.code, 1)
    t.match(r.stderr, /- no signed checkpoint: nothing anchors these \d+ event\(s\)/)
    t.match(r.stderr, new RegExp(`- .*journal-host-1\\.jsonl line \\d+ witnessed run ${target.run_id} with request hash [0-9a-f]{16}…, which is not on the chain`))
    await recreate(s.nc, original)
    const back = await writ(['audit', 'verify', ...s.keys, '--witness', s.journal], s.env)
    t.equal(back.code, 0, `the original chain, put back, verifies again ${back.stderr}`)
  })
})

t.test('a tail cut after the last checkpoint is caught by the witness; a tail deleted from an unguarded stream by the sequence', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url, { audit: { checkpoint_interval: '1h' } })
  // First stack: two runs, then a shutdown checkpoint.
  const s = await runStack(t, 2, nats, fx)
  const atCheckpoint = await streamEvents(s.nc)
  t.equal(atCheckpoint.at(-1)?.type, CHECKPOINT_TYPE)
  // A second start runs one more action; its events follow that checkpoint.
  await runStack(t, 1, nats, fx)
  const full = await streamEvents(s.nc)
  t.equal((await writ(['audit', 'verify', ...s.keys, '--witness', s.journal], s.env)).code, 0, 'the whole chain verifies')

  // The attacker puts back the chain as it was at the checkpoint: every link and signature holds.
  await recreate(s.nc, atCheckpoint)
  const cut = await writ(['audit', 'verify', ...s.keys], s.env)
  t.equal(cut.code, 0, 'without a witness the cut is invisible: the chain ends on a valid checkpoint')
  const witnessed = await writ(['audit', 'verify', ...s.keys, '--witness', s.journal], s.env)
  t.equal(witnessed.code, 1, 'with the runner journal it is caught')
  const lost = full.find((e) => e.type === 'run.requested' && !atCheckpoint.some((a) => a.hash === e.hash))!
  t.match(witnessed.stderr, new RegExp(`witnessed run ${lost.run_id} with request hash ${lost.hash.slice(0, 16)}…, which is not on the chain`))

  // A stream made before deny_delete existed, whose tail was deleted: its own sequence gives it away.
  const jsm = await jetstreamManager(s.nc)
  await jsm.streams.delete(AUDIT_STREAM)
  await jsm.streams.add({ name: AUDIT_STREAM, subjects: [AUDIT_SUBJECT] })
  const js = jetstream(s.nc)
  for (const e of full) await js.publish(AUDIT_SUBJECT, JSON.stringify(e))
  const lastCheckpoint = full.map((e) => e.type === CHECKPOINT_TYPE && e.seq < full.length).lastIndexOf(true)
  for (let seq = full.length; seq > lastCheckpoint + 1; seq--) await jsm.streams.deleteMessage(AUDIT_STREAM, seq)
  const tail = await writ(['audit', 'verify', ...s.keys], s.env)
  t.equal(tail.code, 1)
  t.match(tail.stderr, new RegExp(`the stream's last sequence is ${full.length} but its last event is ${lastCheckpoint + 1}: events ${lastCheckpoint + 2}–${full.length} were deleted from its tail`))
  t.match(tail.stdout + tail.stderr, /WARNING: the stream allows message deletes or purges/)
})

t.test('an uncovered tail older than the grace means a checkpoint is missing', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url, { audit: { checkpoint_interval: '1h' } })
  await runStack(t, 1, nats, fx)
  const s = await runStack(t, 1, nats, fx)
  const events = (await streamEvents(s.nc)).filter((e, i, all) => !(e.type === CHECKPOINT_TYPE && i === all.length - 1))
  await recreate(s.nc, events)
  const r = await writ(['audit', 'verify', ...s.keys, '--grace', '0s'], s.env)
  t.equal(r.code, 1)
  t.match(r.stderr, /\d+ event\(s\) after the last checkpoint \(sequence \d+\) are covered by none/)
  t.equal((await writ(['audit', 'verify', ...s.keys], s.env)).code, 0, 'within the grace they are just waiting for the next checkpoint')
})

t.test('with audit_max_age, verify starts from the oldest surviving event and checkpoint', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url, { audit: { checkpoint_interval: '200ms' }, jetstream: { replicas: 1, audit_max_age: '3s', results_max_age: '1h' } })
  await runStack(t, 2, nats, fx)
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  const firstOld = (await streamEvents(nc)).length
  // More events later, so the first ones age out while checkpoints survive.
  await eventually(async () => (await (await jetstreamManager(nc)).streams.info(AUDIT_STREAM)).state.first_seq > 1 || undefined, 10_000, 'the oldest events to age out')
  const before = (await (await jetstreamManager(nc)).streams.info(AUDIT_STREAM)).state.last_seq
  // A live control plane keeps events flowing while verify reads, so the newest never all age out under a
  // slow verify (with 3 s of retention, a stack that stopped first could leave an empty stream on a busy machine).
  const app = await buildApp(fx.config)
  t.teardown(() => app.close())
  const runner = await startRealRunner(fx, nats.url, 'host-1')
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('host-1')?.online, 5000, 'runner heartbeat')
  let flowing = true
  const flow = (async () => {
    for (let i = 0; flowing; i++) {
      await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(fx.tokens.agent), payload: { action: 'testops.echo', node: 'host-1', args: { message: `live ${i}` }, reason: 'keep the tail young', wait: 10 } })
    }
  })()
  await eventually(async () => (await (await jetstreamManager(nc)).streams.info(AUDIT_STREAM)).state.last_seq > before || undefined, 10_000, 'live events on the chain')
  const r = await writ(['audit', 'verify', '--trusted-keys', fx.publicKeyFile], { WRIT_NATS_URL: nats.url })
  flowing = false
  await flow
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /note: events 1–\d+ aged out \(max_age 3 s\); verified from sequence \d+, which the oldest surviving checkpoint \(sequence \d+\) covers/)
  t.ok(firstOld > 0)
})

t.test('a scheduled verify leaves its result for node_exporter: 1 intact, 0 broken or not checked', async (t) => {
  const s = await runStack(t, 1)
  const dir = join(s.fx.dir, 'textfile_collector')
  mkdirSync(dir)
  const prom = join(dir, 'writ_audit_verify.prom')
  const read = (): { success: number, lastRun: number } => {
    const text = readFileSync(prom, 'utf8')
    t.notMatch(text, /^writ_\S+ \S+ \S+$/m, 'no timestamps (the textfile collector refuses them)')
    return {
      success: Number(/^writ_audit_verify_success (\d+)$/m.exec(text)?.[1]),
      lastRun: Number(/^writ_audit_verify_last_run_timestamp_seconds (\d+)$/m.exec(text)?.[1]),
    }
  }

  const before = Math.floor(Date.now() / 1000)
  t.equal((await writ(['audit', 'verify', ...s.keys, '--metrics-textfile', prom], s.env)).code, 0)
  const ok = read()
  t.equal(ok.success, 1, 'an intact chain: 1')
  t.ok(ok.lastRun >= before && ok.lastRun <= Math.ceil(Date.now() / 1000), 'and when it finished')

  const other = join(s.fx.dir, 'untrusted.pub.pem')
  writeFileSync(other, generateSigningKeyPair().publicPem)
  t.equal((await writ(['audit', 'verify', '--trusted-keys', other, '--metrics-textfile', prom], s.env)).code, 1, 'checkpoints no trusted key signed: broken')
  t.equal(read().success, 0, 'a broken chain: 0')

  t.equal((await writ(['audit', 'verify', ...s.keys, '--metrics-textfile', prom], s.env)).code, 0)
  t.equal(read().success, 1, 'intact again')
  const unreachable = await writ(['audit', 'verify', ...s.keys, '--metrics-textfile', prom], { WRIT_NATS_URL: 'nats://127.0.0.1:1' })
  t.equal(unreachable.code, 2, 'NATS unreachable: the verify cannot run')
  t.equal(read().success, 0, 'a verify that could not check the chain: 0, not the last good result')
  t.same(readdirSync(dir), ['writ_audit_verify.prom'], 'written through a temporary file that does not stay behind')

  const ignored = join(dir, 'writ_audit_verify.txt')
  const usage = await writ(['audit', 'verify', ...s.keys, '--metrics-textfile', ignored], s.env)
  t.equal(usage.code, 2)
  t.match(usage.stderr, /--metrics-textfile .*writ_audit_verify\.txt: node_exporter's textfile collector reads only files named \*\.prom/)
  t.notOk(existsSync(ignored), 'a file node_exporter would ignore is refused, not written')
})

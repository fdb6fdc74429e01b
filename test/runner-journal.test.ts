/**
 * The runner journal stays bounded and keeps its promises: a run id is
 * refused as a replay across restarts for as long as its writ could be valid,
 * the file rotates instead of growing forever (the rotated file stays a
 * witness of the audit chain), a legacy oversized journal is compacted on
 * open, and a flood of forged input becomes one counted summary line instead
 * of a synced line each.
 */
import t from 'tap'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { GENESIS_HASH, chainHash, readJournal } from '@writ/packs'
import { generateSigningKeyPair, loadSigningKey, signWrit } from '@writ/packs/protocol'
import { RunJournal } from '@writ/node-runner'
import { startRunnerHarness } from './helpers/runner-harness.js'

const hex = (n: number) => randomBytes(n).toString('hex')
const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string, run_id: string, data: Record<string, unknown> })

function tmp(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'writ-journal-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('a run id is a replay until its writ expires plus skew, across restarts; then it is forgotten', async (t) => {
  const file = join(tmp(t), 'journal.jsonl')
  let now = Date.parse('2026-01-01T00:00:00Z')
  const opts = { clockSkewMs: 30_000, now: () => now }
  const j = RunJournal.open(file, opts)
  await j.append('accepted', 'run_aaaaaaaa', { action: 'x.y', request_hash: hex(32), expires_at: new Date(now + 60_000).toISOString() })
  await j.close()
  now += 80_000
  const again = RunJournal.open(file, opts)
  t.equal(again.has('run_aaaaaaaa'), true, 'inside expiry + skew after a restart: still a replay')
  await again.close()
  now += 20_000
  const later = RunJournal.open(file, opts)
  t.equal(later.has('run_aaaaaaaa'), false, 'past expiry + skew the writ is refused as expired anyway, so the id is not kept')
  t.same(later.unfinished(), [{ runId: 'run_aaaaaaaa', action: 'x.y' }], 'an unfinished run is still reported after the window')
  await later.close()
})

t.test('the journal rotates at its bound; a restart reads one small file and still refuses replays', async (t) => {
  const dir = tmp(t)
  const file = join(dir, 'journal.jsonl')
  let now = Date.parse('2026-01-01T00:00:00Z')
  const opts = { clockSkewMs: 30_000, rotateEntries: 100, keepRotated: 2, now: () => now }
  const j = RunJournal.open(file, opts)
  const hashes: string[] = []
  for (let i = 0; i < 260; i++) {
    const runId = `run_${String(i).padStart(8, '0')}`
    const h = hex(32)
    hashes.push(h)
    await j.append('accepted', runId, { action: 'x.y', request_hash: h, expires_at: new Date(now + 60_000).toISOString() })
    await j.append('finished', runId, { status: 'succeeded' })
    now += 1000
  }
  await j.close()
  const rotated = readdirSync(dir).filter((f) => /^journal\.jsonl\.\d+$/.test(f)).sort()
  t.equal(rotated.length, 2, `only the newest 2 rotated files are kept (${rotated.join(', ')})`)
  const current = lines(file)
  t.ok(current.length <= 100, `the current file stays under its bound (${current.length} entries)`)
  t.equal(current[0]?.type, 'continued', 'it opens with a continued entry')
  const replay = current[0]?.data.replay as Record<string, number>
  t.ok(Object.keys(replay).length > 0 && Object.keys(replay).length < 120, `which carries only the run ids still inside their window (${Object.keys(replay).length})`)
  const reopened = RunJournal.open(file, opts)
  t.equal(reopened.has('run_00000259'), true, 'the newest run is still a replay after the restart')
  t.equal(reopened.has('run_00000000'), false, 'a run long expired is not kept')
  await reopened.close()
  // Every file verifies on its own and together they witness the recent request hashes.
  const witnessed = new Set<string>()
  for (const f of [...rotated.map((r) => join(dir, r)), file]) {
    const read = readJournal(readFileSync(f, 'utf8'), f)
    t.ok(read.ok, `${f} chain verifies`)
    if (read.ok) for (const w of read.witnesses) witnessed.add(w.requestHash)
  }
  t.ok(hashes.slice(-100).every((h) => witnessed.has(h)), 'the last 100 request hashes are witnessed by the kept files')
})

t.test('the newest approver registry accepted survives rotations (its entry long pruned) and restarts', async (t) => {
  const dir = tmp(t)
  const file = join(dir, 'journal.jsonl')
  const opts = { rotateEntries: 10, keepRotated: 1 }
  const j = RunJournal.open(file, opts)
  const older = { serial: 3, issued_at: '2026-01-01T00:00:00.000Z', digest: 'a'.repeat(64), signed: { registry: { serial: 3 } } }
  const newest = { serial: 4, issued_at: '2026-02-01T00:00:00.000Z', digest: 'b'.repeat(64), expires_at: '2026-05-01T00:00:00.000Z', signed: { registry: { serial: 4 } } }
  await j.recordRegistry(older)
  await j.recordRegistry(newest)
  t.same(j.approverRegistry, newest, 'the last one recorded is the newest')
  for (let i = 0; i < 40; i++) await j.append('refused', `run_${String(i).padStart(8, '0')}`, { code: 'bad_args', expires_at: new Date(Date.now() + 60_000).toISOString() })
  await j.close()
  const kept = [file, ...readdirSync(dir).filter((f) => /^journal\.jsonl\.\d+$/.test(f)).map((f) => join(dir, f))]
  t.notOk(kept.some((f) => lines(f).some((e) => e.type === 'registry')), 'no file left holds the registry entries themselves')
  t.match(lines(file)[0], { type: 'continued', data: { registry: newest } }, 'the continued entry carries the newest registry')
  const reopened = RunJournal.open(file, opts)
  t.same(reopened.approverRegistry, newest, 'a restart still knows it')
  await reopened.close()
})

t.test('a legacy journal past the bound is rotated on open', async (t) => {
  const dir = tmp(t)
  const file = join(dir, 'journal.jsonl')
  let prev = GENESIS_HASH
  const out: string[] = []
  const old = Date.parse('2025-06-01T00:00:00Z')
  for (let seq = 1; seq <= 500; seq++) {
    const body = { seq, at: new Date(old + seq * 1000).toISOString(), type: 'accepted', run_id: `run_${hex(6)}`, data: { action: 'x.y' }, prev }
    const hash = chainHash(body)
    out.push(JSON.stringify({ ...body, hash }))
    prev = hash
  }
  writeFileSync(file, `${out.join('\n')}\n`)
  const j = RunJournal.open(file, { rotateEntries: 100 })
  t.equal(j.size, 501, 'the sequence continues')
  await j.close()
  t.ok(existsSync(`${file}.500`), 'the old file is kept as journal.jsonl.500')
  t.equal(lines(file).length, 1, 'the new file holds only the continued entry')
})

t.test('a flood of forged writs is one summary line, not a synced line each', async (t) => {
  const h = await startRunnerHarness()
  t.teardown(() => h.stop())
  const before = lines(h.journal).length
  const forger = loadSigningKey(generateSigningKeyPair().privatePem)
  const N = 300
  for (let i = 0; i < N; i++) {
    const ack = await h.send(i % 2 ? { junk: i } : signWrit(h.writ('canary.mark', { name: `f${i}` }), forger))
    t.equal(ack.accepted, false)
  }
  const good = await h.run('canary.echo', { text: 'still working' })
  t.equal(good.result?.stdout, 'still working', 'the runner still runs real writs')
  await h.restartRunner()
  const after = lines(h.journal).slice(before)
  const summaries = after.filter((e) => e.type === 'refusals')
  t.ok(after.length <= 6, `${N} forged messages added ${after.length} journal lines`)
  t.equal(summaries.reduce((n, e) => n + Number(e.data.total), 0), N, 'every one of them is counted')
  t.match(summaries[0]?.data.counts, { malformed: N / 2, unknown_key: N / 2 })
})

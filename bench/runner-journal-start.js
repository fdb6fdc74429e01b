// Bench: runner start time with a large journal. Writes a journal of
// BENCH_JOURNAL_ENTRIES entries (default 1,000,000: accepted + finished
// pairs spread over the last 30 days, each with a request hash) in the
// runner's format, then starts a real runner on it twice (the first start may
// compact the journal, the second shows the steady state), against a start
// with an empty journal in the same run.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import { connect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { pino } from 'pino'
import { chainHash, GENESIS_HASH } from '@writ/packs'
import { generateSigningKeyPair, streams } from '@writ/packs/protocol'
import { loadRunnerConfig, startNodeRunner } from '@writ/node-runner'
import { startNats } from './nats-for-bench.js'

const ENTRIES = Number(process.env.BENCH_JOURNAL_ENTRIES ?? 1_000_000)
const root = resolve(new URL('..', import.meta.url).pathname)
const stock = join(root, 'packs', 'stock')

/** Writes `n` chained entries as a long-running runner would have left them. */
function writeJournal(file, n) {
  const fd = openSync(file, 'w')
  const start = Date.now() - 30 * 86_400_000
  const step = (30 * 86_400_000 - 3_600_000) / n
  let prev = GENESIS_HASH
  let buf = []
  let runId = ''
  for (let seq = 1; seq <= n; seq++) {
    const atMs = start + seq * step
    const accepted = seq % 2 === 1
    if (accepted) runId = `run_${randomBytes(8).toString('hex')}`
    const data = accepted
      ? { action: 'debugging.loadavg', requester: 'agent-1', digest: 'd'.repeat(64), request_hash: randomBytes(32).toString('hex'), expires_at: new Date(atMs + 60_000).toISOString() }
      : { status: 'succeeded', published: true }
    const body = { seq, at: new Date(atMs).toISOString(), type: accepted ? 'accepted' : 'finished', run_id: runId, data, prev }
    const hash = chainHash(body)
    buf.push(JSON.stringify({ ...body, hash }))
    prev = hash
    if (buf.length >= 10_000) { writeSync(fd, `${buf.join('\n')}\n`); buf = [] }
  }
  if (buf.length) writeSync(fd, `${buf.join('\n')}\n`)
  closeSync(fd)
}

async function timedStart(config) {
  const t0 = process.hrtime.bigint()
  const runner = await startNodeRunner(config, pino({ level: 'silent' }))
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  await runner.close()
  return ms
}

const lines = (file) => readFileSync(file, 'utf8').split('\n').filter(Boolean).length

export async function runnerJournalStart() {
  const nats = await startNats()
  const dir = mkdtempSync(join(tmpdir(), 'writ-bench-journal-'))
  try {
    writeFileSync(join(dir, 'trusted.pem'), generateSigningKeyPair().publicPem)
    const nc = await connect({ servers: nats.url })
    await (await jetstreamManager(nc)).streams.add({ name: streams.results.name, subjects: [...streams.results.subjects] })
    await nc.close()
    const config = (journal) => loadRunnerConfig({}, {
      WRIT_NATS_URL: nats.url, WRIT_NODE_ID: 'bench', WRIT_NODE_NAME: 'bench', WRIT_PACKS: stock,
      WRIT_TRUSTED_KEYS: join(dir, 'trusted.pem'), WRIT_JOURNAL: journal,
    })
    // The first start in a process pays for loading code; the baseline is the second.
    await timedStart(config(join(dir, 'warm.jsonl')))
    const empty = await timedStart(config(join(dir, 'empty.jsonl')))
    const big = join(dir, 'big.jsonl')
    const g0 = Date.now()
    writeJournal(big, ENTRIES)
    const genMs = Date.now() - g0
    const size = statSync(big).size
    const first = await timedStart(config(big))
    const afterFirst = lines(big)
    const second = await timedStart(config(big))
    // The most a start reads from now on: a journal one entry short of the rotation bound.
    const bound = join(dir, 'bound.jsonl')
    const boundEntries = config(bound).journalRotateEntries - 1
    writeJournal(bound, boundEntries)
    const atBound = await timedStart(config(bound))
    return {
      title: `runner start with a ${ENTRIES.toLocaleString('en')}-entry journal (${(size / 1e6).toFixed(0)} MB, written in ${(genMs / 1000).toFixed(1)} s)`,
      header: ['start', 'ms', 'x empty-journal start', 'entries in the journal file after it'],
      rows: [
        ['empty journal', empty.toFixed(0), '1.0', 0],
        ['first start on the large journal', first.toFixed(0), (first / empty).toFixed(1), afterFirst],
        ['second start', second.toFixed(0), (second / empty).toFixed(1), lines(big)],
        [`start at the rotation bound (${boundEntries.toLocaleString('en')} entries)`, atBound.toFixed(0), (atBound / empty).toFixed(1), lines(bound)],
      ],
    }
  } finally {
    await nats.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

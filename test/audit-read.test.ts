/**
 * `GET /v1/audit` reads a bounded slice of the chain per request: an agent's
 * read fetches its own events through an index instead of walking every
 * event, an operator's read stops after `audit.max_scan` stored events, and
 * every page that stops early names where the next starts (`Writ-Next-Seq`).
 * Following the cursor gives exactly what one unbounded read used to:
 * operators everything, unparseable events included; agents their own.
 */
import t, { type Test } from 'tap'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { AUDIT_STREAM, AUDIT_SUBJECT, GENESIS_HASH, buildApp, hashEvent } from '@writ/control-plane'
import { startNatsServer } from './helpers/nats-server.js'
import { auth, makeCpFixture } from './helpers/cp-fixtures.js'
import { eventually, startFakeRunner } from './helpers/cp-fake-runner.js'

const MAX_SCAN = 50
const FLOOD = 300

/** Appends `count` well-formed, linked events by agent-2 straight to the stream, an unparseable message among them. */
async function flood(nc: NatsConnection, count: number): Promise<void> {
  const jsm = await jetstreamManager(nc)
  const js = jetstream(nc)
  let seq = (await jsm.streams.info(AUDIT_STREAM)).state.last_seq
  let prev = seq === 0 ? GENESIS_HASH : (JSON.parse((await jsm.streams.getMessage(AUDIT_STREAM, { seq }))!.string()) as { hash: string }).hash
  for (let i = 0; i < count; i++) {
    if (i === Math.floor(count / 2)) {
      await js.publish(AUDIT_SUBJECT, 'not json: a tampered event {', { expect: { lastSequence: seq++ } })
      continue
    }
    const unsealed = {
      type: 'run.requested', actor: { id: 'agent-2', kind: 'agent' as const }, run_id: `rflood${String(i).padStart(8, '0')}`, node: 'node-1', action: 'testops.echo',
      data: { reason: 'flood' }, seq: ++seq, prev, at: new Date().toISOString(), instance: 'test', v: 1 as const,
    }
    const event = { ...unsealed, hash: hashEvent(unsealed) }
    prev = event.hash
    await js.publish(AUDIT_SUBJECT, JSON.stringify(event), { expect: { lastSequence: seq - 1 }, msgID: event.hash })
  }
}

/** Every stored message's text, in stream order. */
async function stored(nc: NatsConnection): Promise<string[]> {
  const jsm = await jetstreamManager(nc)
  const last = (await jsm.streams.info(AUDIT_STREAM)).state.last_seq
  const texts: string[] = []
  for (let seq = 1; seq <= last; seq++) texts.push((await jsm.streams.getMessage(AUDIT_STREAM, { seq }))!.string())
  return texts
}

async function setup(t: Test) {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url, { audit: { checkpoint_interval: '1h', max_scan: MAX_SCAN } })
  t.teardown(() => fx.cleanup())
  const app = await buildApp(fx.config)
  t.teardown(() => app.close())
  const runner = await startFakeRunner({ natsUrl: nats.url, nodeId: 'node-1', packDirs: fx.config.packs.dirs, publicKeyFile: fx.publicKeyFile })
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('node-1')?.online, 10_000, 'heartbeat')
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())

  const post = async (token: string, payload: Record<string, unknown>) => (await app.inject({ method: 'POST', url: '/v1/runs', headers: auth(token), payload })).json() as { id: string, status: string }
  const echo = async () => {
    const run = await post(fx.tokens.agent, { action: 'testops.echo', node: 'node-1', args: { message: 'hi' }, reason: 'say hi' })
    await eventually(async () => (await app.writ.store.get(run.id))?.run.status === 'succeeded', 10_000, 'the echo run to finish')
    return run.id
  }
  // agent-1: a run an operator denies (the denial is the operator's event about agent-1's run), then the flood, then a run that finishes.
  const gated = await post(fx.tokens.agent, { action: 'testops.restart', node: 'node-1', args: {}, reason: 'restart it' })
  await app.inject({ method: 'POST', url: `/v1/runs/${gated.id}/deny`, headers: auth(fx.tokens.operator), payload: { reason: 'not now' } })
  await flood(nc, FLOOD)
  const runIds = [gated.id, await echo()]

  const read = async (token: string, query: string) => {
    const res = await app.inject({ method: 'GET', url: `/v1/audit?${query}`, headers: auth(token) })
    t.equal(res.statusCode, 200, `GET /v1/audit?${query}`)
    return { lines: res.body.split('\n').filter((l) => l !== ''), next: res.headers['writ-next-seq'] as string | undefined }
  }
  /** Reads page after page, following Writ-Next-Seq. */
  const readAll = async (token: string, query: string) => {
    const pages: Array<{ lines: string[], next: string | undefined }> = []
    let since = 1
    for (;;) {
      const page = await read(token, `${query}&since_seq=${since}`)
      pages.push(page)
      if (page.next === undefined) break
      t.ok(Number(page.next) > since, `the cursor moves forward (${since} → ${page.next})`)
      since = Number(page.next)
      if (pages.length > 100) throw new Error('the cursor never ends')
    }
    return { pages, lines: pages.flatMap((p) => p.lines) }
  }
  const metric = async (name: string): Promise<number | undefined> => {
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)
    return m ? Number(m[1]) : undefined
  }
  /** What agent-1 may see: its own events and every event of its runs. */
  const agentOwn = (texts: string[], runs: string[]) => texts.filter((x) => {
    try {
      const e = JSON.parse(x) as { actor?: { id?: string } | null, run_id?: string }
      return e.actor?.id === 'agent-1' || (e.run_id !== undefined && runs.includes(e.run_id))
    } catch { return false }
  })
  return { fx, app, nc, runIds, echo, read, readAll, metric, agentOwn }
}

t.test("an agent's read fetches its own events through the index, not the whole chain", async (t) => {
  const { fx, nc, runIds, echo, read, metric, agentOwn } = await setup(t)
  const all = await stored(nc)
  t.ok(all.length > FLOOD, `the chain holds ${all.length} events`)
  await read(fx.tokens.agent, 'limit=1000')
  await eventually(async () => ((await metric('writ_audit_index_seq')) ?? 0) >= all.length, 10_000, 'the index to reach the end of the chain')

  const before = await metric('writ_audit_query_events_read_total')
  t.type(before, 'number', 'the control plane counts the stored events audit reads cost')
  const mine = await read(fx.tokens.agent, 'limit=1000')
  const expected = agentOwn(all, runIds)
  t.ok(expected.length >= 5, `agent-1 has ${expected.length} events of its own`)
  t.same(mine.lines, expected, 'the agent gets exactly its events and those of its runs, in order')
  t.equal(mine.next, undefined, 'and is told it has reached the end')
  const cost = (await metric('writ_audit_query_events_read_total'))! - before!
  t.ok(cost <= expected.length + 2, `the read fetched ${cost} stored events for ${expected.length} answers, not ${all.length}`)

  // Events appended after the index caught up reach the agent too.
  const later = await echo()
  const after = await read(fx.tokens.agent, 'limit=1000')
  t.same(after.lines, agentOwn(await stored(nc), [...runIds, later]), 'a run made afterwards shows as well')
  t.ok(after.lines.some((l) => l.includes(later)), 'with its events')

  const byRun = await read(fx.tokens.agent, `run_id=${runIds[0]}`)
  t.same(byRun.lines, expected.filter((l) => l.includes(`"run_id":"${runIds[0]}"`)), 'run_id= reads that run through the index')
  const foreign = await read(fx.tokens.agent2, `run_id=${runIds[0]}`)
  t.same(foreign.lines, [], 'another agent sees nothing of the run through the index either')
})

t.test("an operator's read stops after audit.max_scan events and says where to resume; following it gives every event once", async (t) => {
  const { fx, nc, readAll } = await setup(t)
  const all = await stored(nc)
  const { pages, lines } = await readAll(fx.tokens.operator, 'limit=100000')
  t.ok(pages.length >= Math.ceil(all.length / MAX_SCAN), `${pages.length} pages for ${all.length} events`)
  for (const [i, p] of pages.entries()) t.ok(p.lines.length <= MAX_SCAN, `page ${i + 1} holds ${p.lines.length} events, no more than the scan bound`)
  t.equal(pages[0]?.next, String(MAX_SCAN + 1), 'the first page names the sequence after its last event')
  t.same(lines, all, 'every event once, in order')
  t.ok(lines.includes('not json: a tampered event {'), 'the unparseable event included: hiding it would hide tampering')
})

t.test('a filtered read that matches nothing still ends within its bound, page by page', async (t) => {
  const { fx, nc, read, readAll } = await setup(t)
  const all = await stored(nc)
  const first = await read(fx.tokens.operator, 'type=nothing.here')
  t.same(first.lines, [], 'nothing matches')
  t.equal(first.next, String(MAX_SCAN + 1), 'and the page says how far it looked')
  const { pages, lines } = await readAll(fx.tokens.operator, 'type=nothing.here')
  t.same(lines, [])
  t.equal(pages.length, Math.ceil(all.length / MAX_SCAN), 'one page per scan bound, to the end of the chain')
  const denied = await readAll(fx.tokens.operator, 'type=approval.denied')
  t.equal(denied.lines.length, 1, 'a type filter finds its event across the pages')
})

t.test('an agent paging with a small limit gets the same events as in one read', async (t) => {
  const { fx, nc, runIds, read, readAll, metric, agentOwn } = await setup(t)
  const all = await stored(nc)
  await read(fx.tokens.agent, 'limit=1')
  await eventually(async () => ((await metric('writ_audit_index_seq')) ?? 0) >= all.length, 10_000, 'the index to reach the end of the chain')
  const { pages, lines } = await readAll(fx.tokens.agent, 'limit=2')
  t.same(lines, agentOwn(all, runIds), 'page by page, the same events')
  t.ok(pages.slice(0, -1).every((p) => p.lines.length === 2 && p.next !== undefined), 'each full page names the next')
})

/**
 * POST SSE streams on `/mcp` for 2025-11-25 clients: each opens with a
 * priming event (an id, empty data) carrying the `retry` field, and a client
 * whose stream broke mid-call gets the answer it missed with `GET` and
 * `Last-Event-ID` — only its own; older clients get no priming event (they
 * cannot parse an empty one). Real HTTP, real NATS, the real runner.
 */
import t from 'tap'
import { makeCpFixture } from './helpers/cp-fixtures.js'
import { eventually } from './helpers/cp-fake-runner.js'
import { startRealRunner } from './helpers/cp-real-runner.js'
import { startNatsServer } from './helpers/nats-server.js'
import { buildApp } from '@writ/control-plane'

interface SseEvent { id?: string, retry?: string, data: string }

/** Splits SSE text into events (comment lines, the keep-alives, are skipped). */
function parseSse(text: string): SseEvent[] {
  return text.split('\n\n').filter((b) => b.trim() !== '' && !b.split('\n').every((l) => l.startsWith(':'))).map((block) => {
    const e: SseEvent = { data: '' }
    for (const line of block.split('\n')) {
      const at = line.indexOf(':')
      const field = at < 0 ? line : line.slice(0, at)
      const value = at < 0 ? '' : line.slice(at + 1).replace(/^ /, '')
      if (field === 'id') e.id = value
      else if (field === 'retry') e.retry = value
      else if (field === 'data') e.data += value
    }
    return e
  })
}

/** Reads a stream until `enough` says so (or it ends), then lets go of it. */
async function readUntil(res: Response, enough: (events: SseEvent[]) => boolean): Promise<SseEvent[]> {
  const reader = res.body!.getReader()
  const decoder = new TextDecoder()
  let text = ''
  for (;;) {
    const { done, value } = await reader.read()
    if (value) text += decoder.decode(value, { stream: true })
    const complete = text.slice(0, text.lastIndexOf('\n\n') + 2)
    if (done || enough(parseSse(complete))) { await reader.cancel().catch(() => {}); return parseSse(done ? text : complete) }
  }
}

t.test('POST SSE streams prime with an id and retry, and a broken stream resumes with Last-Event-ID', async (t) => {
  const nats = await startNatsServer()
  t.teardown(() => nats.stop())
  const fx = makeCpFixture(nats.url, { mcp: { sse_retry: '1500ms', max_output_chars: 12_000 } })
  t.teardown(() => fx.cleanup())
  const app = await buildApp(fx.config)
  t.teardown(() => app.close())
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  const runner = await startRealRunner(fx, nats.url, 'host-1')
  t.teardown(() => runner.close())
  await eventually(() => app.writ.fleet.find('host-1')?.online, 10_000, 'runner heartbeat')

  const post = (token: string, version: string, body: object, signal?: AbortSignal) => fetch(`${url}/mcp`, {
    method: 'POST', signal,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': version },
    body: JSON.stringify({ jsonrpc: '2.0', ...body }),
  })
  const resume = (token: string, lastEventId: string) => fetch(`${url}/mcp`, {
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', 'mcp-protocol-version': '2025-11-25', 'last-event-id': lastEventId },
  })

  const listed = await post(fx.tokens.agent, '2025-11-25', { id: 1, method: 'tools/list', params: {} })
  t.equal(listed.status, 200)
  t.match(listed.headers.get('content-type'), /^text\/event-stream/)
  const events = await readUntil(listed, () => false)
  t.equal(events.length, 2, 'a priming event, then the answer')
  t.match(events[0], { id: /\S/, retry: '1500', data: '' }, 'the first event primes the stream: an id, empty data, and the retry interval')
  t.match(JSON.parse(events[1]!.data), { id: 1, result: { tools: Array } })
  t.ok(events[1]!.id, 'the answer has an event id too')

  const old = await post(fx.tokens.agent, '2025-03-26', { id: 2, method: 'tools/list', params: {} })
  const oldEvents = await readUntil(old, () => false)
  t.equal(oldEvents.length, 1, 'a 2025-03-26 client gets no priming event (it could not parse empty data)')
  t.match(JSON.parse(oldEvents[0]!.data), { id: 2, result: { tools: Array } })

  // A call that takes a second: the client reads the priming event, then its connection drops.
  const dropped = new AbortController()
  const call = await post(fx.tokens.agent, '2025-11-25', {
    id: 3, method: 'tools/call',
    params: { name: 'run_action', arguments: { action: 'testops.sleep', node: 'host-1', args: { seconds: 1 }, reason: 'a call whose stream breaks', wait_seconds: 20 } },
  }, dropped.signal)
  const [priming] = await readUntil(call, (e) => e.length >= 1)
  t.match(priming, { id: /\S/, retry: '1500', data: '' })
  dropped.abort()

  const refused = await resume(fx.tokens.agent2, priming!.id!)
  t.equal(refused.status, 400, "another principal's Last-Event-ID reads as unknown")
  t.match(await refused.json(), { error: { message: /Invalid event ID/ } })

  // The run goes on; once it ends, the answer waits for the reconnect.
  const answer = await eventually(async () => {
    const res = await resume(fx.tokens.agent, priming!.id!)
    if (res.status !== 200) return undefined
    const replayed = await readUntil(res, () => false)
    const message = replayed.map((e) => e.data).filter(Boolean).map((d) => JSON.parse(d) as { id?: number, result?: { structuredContent?: { status?: string } } }).find((m) => m.id === 3)
    return message
  }, 20_000, 'the answer on the resumed stream')
  t.match(answer, { id: 3, result: { structuredContent: { status: 'succeeded', action: 'testops.sleep' } } }, 'the reconnecting client gets the answer it missed')

  const bare = await fetch(`${url}/mcp`, { headers: { authorization: `Bearer ${fx.tokens.agent}`, accept: 'text/event-stream', 'mcp-protocol-version': '2025-11-25' } })
  t.equal(bare.status, 405, 'a GET without Last-Event-ID is still not a stream (stateless: no standalone stream)')
})

/**
 * The in-memory events behind SSE resumption (`mcp/sse-events.ts`): a
 * stream's events replay after the last one a client saw, only to the
 * principal that opened it, and the store keeps the newest streams within its
 * bounds (count and age).
 */
import t from 'tap'
import type { JSONRPCMessage } from '@modelcontextprotocol/server'
import { SseEvents } from '../control-plane/dist/mcp/sse-events.js'

const msg = (id: number): JSONRPCMessage => ({ jsonrpc: '2.0', id, result: {} })

async function replay(store: ReturnType<SseEvents['forPrincipal']>, after: string): Promise<Array<{ id: string, message: JSONRPCMessage }>> {
  const got: Array<{ id: string, message: JSONRPCMessage }> = []
  await store.replayEventsAfter(after, { send: async (id, message) => { got.push({ id, message }) } })
  return got
}

t.test('replays after the last seen event, skipping the priming event', async (t) => {
  const events = new SseEvents({ maxStreams: 10, ttlMs: 60_000 })
  const mine = events.forPrincipal('agent-1')
  const priming = await mine.storeEvent('s1', {} as JSONRPCMessage)
  const first = await mine.storeEvent('s1', msg(1))
  await mine.storeEvent('s1', msg(2))
  t.same((await replay(mine, priming)).map((e) => e.message), [msg(1), msg(2)], 'everything after the priming event, the priming event itself not resent')
  t.same((await replay(mine, first)).map((e) => e.message), [msg(2)])
  t.equal(await mine.getStreamIdForEventId!(first), 's1')
})

t.test("another principal's event id reads as unknown, and its stream cannot be written", async (t) => {
  const events = new SseEvents({ maxStreams: 10, ttlMs: 60_000 })
  const id = await events.forPrincipal('agent-1').storeEvent('s1', msg(1))
  const other = events.forPrincipal('agent-2')
  t.equal(await other.getStreamIdForEventId!(id), undefined)
  await t.rejects(replay(other, id), /unknown event id/)
  await t.rejects(other.storeEvent('s1', msg(2)), /another principal/)
  t.equal(await other.getStreamIdForEventId!('s1.made-up'), undefined, 'a made-up id is unknown too')
})

t.test('keeps the newest streams within its count and age', async (t) => {
  let now = 0
  const events = new SseEvents({ maxStreams: 3, ttlMs: 1000, now: () => now })
  const mine = events.forPrincipal('agent-1')
  const ids: string[] = []
  for (let i = 0; i < 5; i++) ids.push(await mine.storeEvent(`s${i}`, msg(i)))
  t.equal(events.size, 3, 'at most maxStreams')
  t.equal(await mine.getStreamIdForEventId!(ids[0]!), undefined, 'the oldest went first')
  t.equal(await mine.getStreamIdForEventId!(ids[4]!), 's4')
  now = 2000
  await mine.storeEvent('s9', msg(9))
  t.equal(events.size, 1, 'streams older than ttlMs are dropped')
})

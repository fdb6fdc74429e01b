/**
 * The SDK transport's event store for POST SSE streams (2025-11-25 clients):
 * with one, the SDK opens each stream with a priming event (an id, empty data,
 * and the `retry` field) and files each message under an id, so a client whose
 * stream broke mid-call reconnects with `GET` and `Last-Event-ID` and gets the
 * answer it missed — from this instance, which holds the events in memory.
 *
 * Bounded: the newest `maxStreams` streams, each kept for `ttlMs` after its
 * last event. A stream belongs to the principal that opened it; another
 * principal's `Last-Event-ID` reads as unknown.
 */
import { randomUUID } from 'node:crypto'
import type { EventId, EventStore, JSONRPCMessage, StreamId } from '@modelcontextprotocol/server'

interface Stream { owner: string, events: Array<{ id: EventId, message: JSONRPCMessage }>, touched: number }

export class SseEvents {
  /** Insertion order is age order: a stream moves to the end when it gets an event. */
  private readonly streams = new Map<StreamId, Stream>()

  constructor(private readonly limits: { maxStreams: number, ttlMs: number, now?: () => number }) {}

  private now(): number { return this.limits.now?.() ?? Date.now() }

  private prune(): void {
    const cutoff = this.now() - this.limits.ttlMs
    for (const [id, s] of this.streams) {
      if (this.streams.size <= this.limits.maxStreams && s.touched >= cutoff) break
      this.streams.delete(id)
    }
  }

  /** How many streams are held (for tests and metrics). */
  get size(): number { return this.streams.size }

  /** The store as one principal's transport sees it. */
  forPrincipal(owner: string): EventStore {
    const streamOf = (eventId: EventId): StreamId | undefined => {
      const streamId = eventId.slice(0, eventId.lastIndexOf('.'))
      const s = this.streams.get(streamId)
      return s && s.owner === owner && s.events.some((e) => e.id === eventId) ? streamId : undefined
    }
    return {
      storeEvent: async (streamId, message) => {
        let s = this.streams.get(streamId)
        if (s && s.owner !== owner) throw new Error('stream belongs to another principal')
        if (s) this.streams.delete(streamId)
        s ??= { owner, events: [], touched: 0 }
        s.touched = this.now()
        const id = `${streamId}.${randomUUID()}`
        s.events.push({ id, message })
        this.streams.set(streamId, s)
        this.prune()
        return id
      },
      getStreamIdForEventId: async (eventId) => { this.prune(); return streamOf(eventId) },
      replayEventsAfter: async (lastEventId, { send }) => {
        const streamId = streamOf(lastEventId)
        if (streamId === undefined) throw new Error('unknown event id')
        const events = this.streams.get(streamId)?.events ?? []
        for (const e of events.slice(events.findIndex((x) => x.id === lastEventId) + 1)) {
          // The priming event carries no message.
          if (Object.keys(e.message).length > 0) await send(e.id, e.message)
        }
        return streamId
      },
    }
  }
}

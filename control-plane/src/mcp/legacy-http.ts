/**
 * Serving 2025-era requests (clients that open with `initialize`): one
 * stateless SDK transport per request, as the SDK's own stateless fallback
 * does, but with an event store and a retry interval, which that fallback
 * cannot take — so a POST SSE stream opens with a priming event and a `retry`
 * field, and a client whose stream broke mid-call gets the answer it missed
 * with `GET` and `Last-Event-ID` (sse-events.ts). Routed here by the SDK's
 * own `isLegacyRequest`, in front of `createMcpHandler({ legacy: 'reject' })`.
 */
import { WebStandardStreamableHTTPServerTransport, type AuthInfo, type McpServerFactory } from '@modelcontextprotocol/server'
import type { SseEvents } from './sse-events.js'

export interface LegacyOptions {
  events: SseEvents
  /** Milliseconds a client waits before reconnecting a broken stream (the SSE `retry` field). */
  retryMs: number
  /** Whose streams a request's events are filed under. */
  ownerOf: (auth: AuthInfo) => string
  onerror: (err: Error) => void
}

function methodNotAllowed(): Response {
  return Response.json({ jsonrpc: '2.0', id: null, error: { code: -32000, message: 'Method not allowed.' } }, { status: 405, headers: { allow: 'POST' } })
}

export function legacyHandler(factory: McpServerFactory, opts: LegacyOptions) {
  return async (request: Request, o: { authInfo: AuthInfo, parsedBody?: unknown }): Promise<Response> => {
    const method = request.method.toUpperCase()
    // Stateless: no standalone GET stream and no session to delete; a GET only resumes a broken POST stream.
    if (method !== 'POST' && !(method === 'GET' && request.headers.has('last-event-id'))) return methodNotAllowed()
    const server = await factory({ era: 'legacy', authInfo: o.authInfo, requestInfo: request })
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: undefined, eventStore: opts.events.forPrincipal(opts.ownerOf(o.authInfo)), retryInterval: opts.retryMs,
    })
    transport.onerror = opts.onerror
    await server.connect(transport)
    const teardown = (): void => { void transport.close().catch(() => {}); void server.close().catch(() => {}) }
    const response = await transport.handleRequest(request, { authInfo: o.authInfo, ...(o.parsedBody !== undefined ? { parsedBody: o.parsedBody } : {}) })
    if (response.body === null || !(response.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
      teardown()
      return response
    }
    // Closed when the stream ends. A client that goes away does not stop the call: its
    // answer is still filed in the event store for a reconnect, and the instances are
    // dropped with the call.
    const reader = response.body.getReader()
    let gone = false
    const body = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          const { done, value } = await reader.read()
          if (gone) return
          if (done) { teardown(); controller.close(); return }
          controller.enqueue(value)
        } catch (err) { if (!gone) { teardown(); controller.error(err) } }
      },
      cancel: async () => { gone = true; await reader.cancel().catch(() => {}) },
    })
    return new Response(body, { status: response.status, headers: response.headers })
  }
}

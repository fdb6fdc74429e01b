/**
 * The CLI's view of a control plane: a small typed HTTP client plus the
 * WebSocket follower that prints a run's output as it happens.
 */
import WebSocket from 'ws'
import { z } from 'zod'
import { OutputChunkSchema } from '@writ/packs/protocol'
import { RunSchema, isTerminal, type Run } from '../runs/index.js'

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly body: unknown) { super(message); this.name = 'ApiError' }
}

export class WritClient {
  constructor(private readonly baseUrl: string, private readonly token: string) {}

  async request(method: string, path: string, body?: unknown): Promise<{ status: number, json: unknown, text: string }> {
    const res = await fetch(new URL(path, this.baseUrl), {
      method, headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    })
    const text = await res.text()
    let json: unknown
    try { json = JSON.parse(text) } catch { json = undefined }
    if (res.status >= 400) {
      const err = (json as { error?: { code?: string, message?: string } } | undefined)?.error
      throw new ApiError(res.status, err?.code ?? `HTTP_${res.status}`, err?.message ?? text.slice(0, 500), json)
    }
    return { status: res.status, json, text }
  }

  async run(id: string, waitSeconds = 0): Promise<Run> {
    const { json } = await this.request('GET', `/v1/runs/${encodeURIComponent(id)}?wait=${waitSeconds}`)
    return RunSchema.parse(json)
  }

  /**
   * Follows a run over `/v1/stream`, writing output chunks as they arrive, and
   * resolves with the finished run. Falls back to polling if the socket fails.
   */
  async follow(runId: string, write: (stream: 'stdout' | 'stderr', data: string) => void): Promise<{ run: Run, printedChunks: number }> {
    const wsUrl = new URL('/v1/stream', this.baseUrl)
    wsUrl.protocol = wsUrl.protocol === 'https:' ? 'wss:' : 'ws:'
    let printed = 0
    const FrameSchema = z.object({ type: z.string(), chunk: OutputChunkSchema.optional(), run: z.object({ id: z.string(), status: z.string() }).passthrough().optional() }).passthrough()
    await new Promise<void>((resolve) => {
      const ws = new WebSocket(wsUrl, { headers: { authorization: `Bearer ${this.token}` } })
      const finish = (): void => { ws.removeAllListeners(); ws.close(); resolve() }
      const seen = new Set<number>()
      ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe', run_id: runId })))
      ws.on('message', (raw) => {
        const frame = FrameSchema.safeParse(safeJson(raw.toString()))
        if (!frame.success) return
        const f = frame.data
        if (f.type === 'output' && f.chunk && !seen.has(f.chunk.seq)) { seen.add(f.chunk.seq); printed++; write(f.chunk.stream, f.chunk.data) }
        if ((f.type === 'run' || f.type === 'subscribed') && isTerminalName(f.run?.status ?? (f as { status?: string }).status)) finish()
        if (f.type === 'error') finish()
      })
      ws.on('error', () => finish())
      ws.on('close', () => finish())
    })
    let run = await this.run(runId)
    while (!isTerminal(run.status) && run.status !== 'pending_approval') run = await this.run(runId, 30)
    return { run, printedChunks: printed }
  }
}

function isTerminalName(s: string | undefined): boolean {
  const parsed = RunSchema.shape.status.safeParse(s)
  return parsed.success && isTerminal(parsed.data)
}

function safeJson(text: string): unknown {
  try { return JSON.parse(text) } catch { return undefined }
}

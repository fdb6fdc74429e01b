/**
 * An agent's side of `/mcp`: the official SDK client over real HTTP, with the
 * bearer token as a static header (as Claude Code sends it), and a `call`
 * that returns a tool's structured answer after checking that the text
 * content carries the same JSON.
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'

export interface ToolAnswer { isError: boolean, value: Record<string, unknown> & { status?: string } }

export interface McpAgent {
  client: Client
  transport: StreamableHTTPClientTransport
  call(name: string, args?: Record<string, unknown>): Promise<ToolAnswer>
  close(): Promise<void>
}

export interface McpAgentOptions {
  /** 'legacy' opens with `initialize` (2025 revisions); 'auto' negotiates 2026-07-28. */
  mode?: 'legacy' | 'auto'
  headers?: Record<string, string>
  fetch?: typeof fetch
}

export async function connectMcp(url: string, token: string | undefined, opts: McpAgentOptions = {}): Promise<McpAgent> {
  const client = new Client({ name: 'writ-test-agent', version: '1.0.0' }, opts.mode === 'auto' ? { versionNegotiation: { mode: 'auto' } } : {})
  const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp`), {
    requestInit: { headers: { ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}), ...opts.headers } },
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
  })
  await client.connect(transport)
  return {
    client, transport,
    call: async (name, args = {}) => {
      const res = await client.callTool({ name, arguments: args })
      const value = res.structuredContent as ToolAnswer['value']
      const text = (res.content as Array<{ type: string, text?: string }>).find((c) => c.type === 'text')?.text
      if (text === undefined || JSON.stringify(JSON.parse(text)) !== JSON.stringify(value)) throw new Error(`tool ${name}: text content differs from structuredContent`)
      return { isError: res.isError === true, value }
    },
    close: () => client.close(),
  }
}

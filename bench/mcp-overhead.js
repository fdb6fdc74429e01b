// What MCP costs an agent per call: `run_action` for debugging.loadavg through
// `/mcp` (the official SDK client, as an agent uses it), against the same run
// through `POST /v1/runs` with `wait`, interleaved on one control plane
// (`writ serve`, as deployed) and one in-process runner. Both wait for the
// finished run. Measured for a client on the 2025-11-25 revision (stateless:
// every call a fresh server instance, answered over SSE) and one on 2026-07-28.
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { stack } from './control-plane.js'
import { percentile } from './nats-for-bench.js'

async function mcpAgent(url, token, mode) {
  const client = new Client({ name: 'bench-agent', version: '1' }, mode === 'auto' ? { versionNegotiation: { mode: 'auto' } } : {})
  const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${token}` } } })
  await client.connect(transport)
  const runAction = async () => {
    const res = await client.callTool({ name: 'run_action', arguments: { action: 'debugging.loadavg', node: 'bench-0', reason: 'bench', wait_seconds: 30 } })
    if (res.structuredContent?.status !== 'succeeded') throw new Error(`run_action answered ${JSON.stringify(res.structuredContent).slice(0, 300)}`)
  }
  return { runAction, version: transport.protocolVersion, close: () => client.close() }
}

export async function mcpOverhead() {
  const RUNS = Number(process.env.BENCH_MCP_RUNS ?? process.env.BENCH_RUNS ?? 500)
  const s = await stack({ runners: 1 })
  const legacy = await mcpAgent(s.url, s.token, 'legacy')
  const modern = await mcpAgent(s.url, s.token, 'auto')
  const rest = []; const viaLegacy = []; const viaModern = []
  const timed = async (into, fn) => { const t0 = performance.now(); await fn(); into.push(performance.now() - t0) }
  for (let i = 0; i < 30; i++) { await s.run('debugging.loadavg', 'bench-0'); await legacy.runAction(); await modern.runAction() }
  for (let i = 0; i < RUNS; i++) {
    await timed(rest, () => s.run('debugging.loadavg', 'bench-0'))
    await timed(viaLegacy, legacy.runAction)
    await timed(viaModern, modern.runAction)
  }
  await legacy.close(); await modern.close()
  await s.stop()
  for (const a of [rest, viaLegacy, viaModern]) a.sort((x, y) => x - y)
  const f = (x) => x.toFixed(2)
  const row = (name, xs) => [name, f(percentile(xs, 50)), f(percentile(xs, 99)), `${(percentile(xs, 50) / percentile(rest, 50)).toFixed(2)}x`, f(percentile(xs, 50) - percentile(rest, 50))]
  return {
    title: `MCP run_action vs POST /v1/runs (wait) for debugging.loadavg, ${RUNS} calls each, interleaved`,
    header: ['', 'p50 ms', 'p99 ms', 'p50 ratio', 'p50 overhead ms'],
    rows: [
      row('POST /v1/runs (baseline)', rest),
      row(`MCP run_action, ${legacy.version} (stateless, SSE)`, viaLegacy),
      row(`MCP run_action, ${modern.version}`, viaModern),
    ],
  }
}

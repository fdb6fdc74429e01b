/**
 * Refusals on `/mcp` go on the record as the REST error handler records its
 * own: a `request.rejected` event with the code and message the caller got,
 * counted in `writ_requests_rejected_total`. Only authenticated callers are
 * recorded (an unknown token proves nothing about who sent it).
 */
import type { Logger } from 'pino'
import type { AuditChain } from '../audit/index.js'
import type { Principal } from '../auth/index.js'
import type { Metrics } from '../metrics.js'

export interface McpRejection {
  code: string
  message: string
  /** The tool called, when the refusal is about a tool call. */
  tool?: string | undefined
  /** The typed status the tool answered with. */
  status?: string | undefined
  /** The call's arguments (action, node, run_id and reason are lifted out of them). */
  args?: unknown
  details?: Record<string, unknown> | undefined
}

export interface McpAuditDeps { audit: AuditChain, metrics: Metrics, log: Logger }

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v.slice(0, 200) : undefined)
const RUN_ID = /^[A-Za-z0-9_-]{8,64}$/

export async function recordRejection(d: McpAuditDeps, principal: Principal, r: McpRejection): Promise<void> {
  const a = r.args !== null && typeof r.args === 'object' ? r.args as Record<string, unknown> : {}
  const action = str(a.action)
  const node = str(a.node)
  const runId = str(r.details?.run_id) ?? str(a.run_id)
  const reason = str(a.reason)
  d.metrics.rejected.inc({ code: r.code })
  await d.audit.append({
    type: 'request.rejected', actor: { id: principal.id, kind: principal.kind },
    ...(action ? { action } : {}), ...(node ? { node } : {}), ...(runId && RUN_ID.test(runId) ? { run_id: runId } : {}),
    data: {
      method: 'POST', route: '/mcp', ...(r.tool ? { tool: r.tool.slice(0, 100) } : {}), ...(r.status ? { status: r.status } : {}),
      code: r.code, message: r.message, ...(reason ? { reason } : {}),
      ...(r.details && Object.keys(r.details).length > 0 ? { details: r.details } : {}),
    },
  }).catch((err: unknown) => d.log.error({ err, code: r.code }, 'cannot audit a refused MCP request'))
}

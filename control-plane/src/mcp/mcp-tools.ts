/**
 * `tools/call` for one authenticated principal: the tool's input is parsed
 * once here (strict zod), the tool runs, and every refusal — an unknown tool,
 * arguments that break the schema or the action's contract, an action or node
 * outside scope, a policy denial — is a typed answer and an audit event, as
 * the REST error handler records refusals. Nothing is dispatched on a refusal.
 */
import { ProtocolError, ProtocolErrorCode, type CallToolResult } from '@modelcontextprotocol/server'
import type { Logger } from 'pino'
import type { AuditChain } from '../audit/index.js'
import type { Principal } from '../auth/index.js'
import type { Metrics } from '../metrics.js'
import type { CatalogTools } from './catalog-tools.js'
import { recordRejection } from './mcp-audit.js'
import type { RunTools } from './run-tools.js'
import { TOOL_NAMES, TOOL_SCHEMAS, isToolName, type ToolName } from './tool-catalog.js'
import { answer, failureOf, invalidArguments, type Failure } from './tool-result.js'
import type { FindActionsArgs, GetActionArgs, GetOperationArgs, RecentRunsArgs, RunActionArgs, WaitForRunArgs } from './tool-schemas.js'

export interface McpToolsDeps { catalogTools: CatalogTools, runTools: RunTools, audit: AuditChain, metrics: Metrics, log: Logger }

export class McpTools {
  constructor(private readonly d: McpToolsDeps) {}

  async call(principal: Principal, name: string, rawArgs: unknown): Promise<CallToolResult> {
    const args = rawArgs ?? {}
    if (!isToolName(name)) {
      const message = `unknown tool "${name.slice(0, 100)}"; the tools are ${TOOL_NAMES.join(', ')}`
      await this.audit(principal, name, args, { status: 'not_found', code: 'WRIT_ERR_UNKNOWN_TOOL', reason: message })
      throw new ProtocolError(ProtocolErrorCode.InvalidParams, message, { code: 'WRIT_ERR_UNKNOWN_TOOL', tools: [...TOOL_NAMES] })
    }
    const parsed = TOOL_SCHEMAS[name].safeParse(args)
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message }))
      const f = invalidArguments(`invalid arguments for ${name}: ${issues.map((i) => `${i.path || '(arguments)'}: ${i.message}`).join('; ')}`, issues).failure
      await this.audit(principal, name, args, f)
      return answer(f, true)
    }
    try {
      return answer(await this.run(principal, name, parsed.data))
    } catch (err) {
      const f = failureOf(err).failure
      await this.audit(principal, name, args, f)
      return answer(f, true)
    }
  }

  private async run(principal: Principal, name: ToolName, input: unknown): Promise<object> {
    const { catalogTools: c, runTools: r } = this.d
    switch (name) {
      case 'list_nodes': return c.listNodes(principal)
      case 'list_packs': return c.listPacks(principal)
      case 'get_operation': return r.getOperation(principal, input as GetOperationArgs)
      case 'find_actions': return c.findActions(principal, input as FindActionsArgs)
      case 'get_action': return c.getAction(principal, input as GetActionArgs)
      case 'run_action': return r.runAction(principal, input as RunActionArgs)
      case 'wait_for_run': return r.waitForRun(principal, input as WaitForRunArgs)
      case 'recent_runs': return r.recentRuns(principal, input as RecentRunsArgs)
    }
  }

  /** A refused tool call, on the record like a refused REST request (the same event type and codes). */
  private async audit(principal: Principal, tool: string, args: unknown, f: Failure): Promise<void> {
    const { status, code, reason, next: _next, ...details } = f
    await recordRejection(this.d, principal, { code, message: reason, tool, status, args, details })
  }
}

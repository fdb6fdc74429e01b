/**
 * Tool answers: `structuredContent` plus the same JSON as text, and the typed
 * failure statuses every refusal becomes — each with a reason and, where it
 * helps, what to do next. Codes are the API's `WRIT_ERR_*`, so a failure
 * reads the same in the audit trail as over REST.
 */
import type { CallToolResult } from '@modelcontextprotocol/server'
import { detailsOf } from '../http/index.js'
import { isTransientJetStreamError } from '../nats/index.js'

export type FailureStatus =
  | 'not_found' | 'invalid_arguments' | 'denied' | 'evidence_not_found' | 'action_not_on_node'
  | 'pack_digest_mismatch' | 'too_many_pending' | 'unavailable' | 'frozen' | 'budget_exhausted' | 'error'

export interface Failure {
  status: FailureStatus
  code: string
  reason: string
  next?: string
  [detail: string]: unknown
}

/** A refusal a tool answers with (`isError: true`), audited for the caller. */
export class ToolFailure extends Error {
  constructor(readonly failure: Failure) { super(failure.reason); this.name = 'ToolFailure' }
}

export function answer(value: object, isError = false): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(value) }], structuredContent: value as Record<string, unknown>, ...(isError ? { isError: true } : {}) }
}

/** An action or node the caller may not use reads exactly like one that does not exist. */
export function notFound(kind: 'action' | 'node' | 'run', ref: string): ToolFailure {
  const code = `WRIT_ERR_${kind.toUpperCase()}_NOT_FOUND`
  return new ToolFailure({ status: 'not_found', code, reason: `${kind} "${ref.slice(0, 200)}" does not exist or is not available to you`, next: BY_CODE[code]?.next })
}

export function invalidArguments(reason: string, issues: Array<{ path: string, message: string }>, next = 'Fix the arguments as the tool\'s input schema (and get_action, for action arguments) describe them, then call again.'): ToolFailure {
  return new ToolFailure({ status: 'invalid_arguments', code: 'WRIT_ERR_VALIDATION', reason, next, issues })
}

const BY_CODE: Record<string, { status: FailureStatus, next?: string }> = {
  WRIT_ERR_BAD_ARGS: { status: 'invalid_arguments', next: 'Fix the arguments as get_action describes them, then call again.' },
  WRIT_ERR_VALIDATION: { status: 'invalid_arguments', next: 'Fix the arguments, then call again.' },
  WRIT_ERR_UNSAFE_TEXT: { status: 'invalid_arguments', next: 'Write reason and expected as plain text on one line: no control characters, line breaks or bidi overrides.' },
  WRIT_ERR_POLICY_DENIED: { status: 'denied', next: 'Policy does not allow this run for you. Do not retry with other wording; ask a person whether it should be done another way.' },
  WRIT_ERR_EVIDENCE_NOT_FOUND: { status: 'evidence_not_found', next: 'Cite only ids of your own runs (recent_runs lists them).' },
  WRIT_ERR_ACTION_NOT_ON_NODE: { status: 'action_not_on_node', next: 'Pick a node that has this action (get_action lists them).' },
  WRIT_ERR_PACK_DIGEST_MISMATCH: { status: 'pack_digest_mismatch', next: 'The node runs another version of this pack and gets no writ until it matches: use another node or tell a person.' },
  WRIT_ERR_UNAVAILABLE: { status: 'unavailable', next: 'Try again in a few seconds.' },
  WRIT_ERR_TOO_MANY_PENDING: { status: 'too_many_pending', next: 'Your earlier requests still wait for a person: wait for their decisions (wait_for_run) before asking for more.' },
  WRIT_ERR_FROZEN: { status: 'frozen', next: 'An operator froze changes (frozen.by, frozen.reason). Do not retry or work around it; read-only actions still run. Wait for a person to unfreeze.' },
  WRIT_ERR_BUDGET_EXHAUSTED: { status: 'budget_exhausted', next: 'Your budget of changes is spent until resets_at (retry_after_s). Do not retry before then; tell a person if the work cannot wait.' },
  WRIT_ERR_TOO_MANY_ACTIVE_RUNS: { status: 'unavailable', next: 'The control plane is full of unfinished runs: try again later, or tell a person.' },
  WRIT_ERR_ACTION_NOT_FOUND: { status: 'not_found', next: 'Call find_actions to see the actions you can use.' },
  WRIT_ERR_NODE_NOT_FOUND: { status: 'not_found', next: 'Call list_nodes to see the nodes you can use.' },
  WRIT_ERR_RUN_NOT_FOUND: { status: 'not_found', next: 'Call recent_runs to see your runs.' },
  WRIT_ERR_PLAN_NOT_FOUND: { status: 'not_found', next: 'Use the plan id run_action returned.' },
  WRIT_ERR_NO_TARGETS: { status: 'not_found', next: 'Read the excluded nodes and their reasons; widen the selector or name other nodes (list_nodes).' },
  WRIT_ERR_TOO_MANY_TARGETS: { status: 'invalid_arguments', next: 'Narrow the selector, or split the nodes into several plans.' },
  WRIT_ERR_OPERATION_NOT_FOUND: { status: 'not_found', next: 'Nothing was started with this operation_id: send the run_action again, with the same operation_id.' },
  WRIT_ERR_OPERATION_KEY_REUSED: { status: 'invalid_arguments', next: 'An operation_id names one request: give a new one for a new request, or retry with exactly the first arguments.' },
  WRIT_ERR_OPERATION_IN_PROGRESS: { status: 'unavailable', next: 'Call again with the same operation_id and arguments in a few seconds.' },
}

/** The typed failure for an error a service threw (coded `WRIT_ERR_*` errors keep their code and details). */
export function failureOf(err: unknown): ToolFailure {
  if (err instanceof ToolFailure) return err
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string' && code.startsWith('WRIT_ERR_')) {
    const known = BY_CODE[code] ?? { status: 'error' as const }
    const details = detailsOf(err) ?? {}
    return new ToolFailure({ ...details, status: known.status, code, reason: (err as Error).message, ...(known.next ? { next: known.next } : {}) })
  }
  if (isTransientJetStreamError(err)) return new ToolFailure({ status: 'unavailable', code: 'WRIT_ERR_UNAVAILABLE', reason: 'NATS JetStream is not reachable right now', next: 'Try again in a few seconds.' })
  return new ToolFailure({ status: 'error', code: 'WRIT_ERR_INTERNAL', reason: 'internal error', next: 'Try once more; if it fails again, tell a person.' })
}

/**
 * The impact preview an approver sees: read-only actions the control plane
 * runs for itself, as the `system` principal and audited like any run, the
 * moment a run starts waiting for approval — never when a page is opened, so
 * a link unfurler's GET dispatches nothing. The page renders their results.
 *
 * Where the preview reads the state the action will change, its answer also
 * binds that state (nomad-state.ts) into the approval: while nobody has
 * approved yet, the run gets the state and a new binding over it, so every
 * approval and the writ carry "approved state: index N" and the runner can
 * refuse `state_changed` if Nomad moved on before it acts.
 */
import type { Logger } from 'pino'
import { STATEFUL_ACTIONS, observedState, type ApprovedState } from '@writ/packs/protocol'
import { type AuditChain, CONTROL_PLANE_ACTOR } from '../audit/index.js'
import { isTerminal, runBinding, type Run, type RunService, type RunStore } from '../runs/index.js'

export interface PreviewStep { action: string, args: Record<string, unknown> }

/** For each gated action with a preview: the reads that show what it would touch. */
const PLANS: Record<string, (args: Run['args']) => PreviewStep[]> = {
  'nomad.alloc_stop': (a) => [{ action: 'nomad.alloc_status', args: { alloc_id: a.alloc_id } }],
  'nomad.node_drain': (a) => [{ action: 'nomad.node_allocs', args: { node_id: a.node_id } }],
  'nomad.node_eligibility': (a) => [{ action: 'nomad.node_allocs', args: { node_id: a.node_id } }],
}

/** The preview reads for `action` with these arguments, or undefined when the action has no preview. */
export function previewSteps(action: string, args: Run['args']): PreviewStep[] | undefined {
  return PLANS[action]?.(args)
}

/** The preview read whose answer is the state an action changes. */
const STATE_READ: Record<string, string> = { allocation: 'nomad.alloc_status', node_allocations: 'nomad.node_allocs' }

/**
 * How long the preview's state read may take. The run is answered and
 * announced only after it (or this bound), so the binding an approver sees
 * never changes under them; a read later than this binds nothing.
 */
const STATE_WAIT_MS = 5_000

export class ImpactPreview {
  constructor(
    private readonly runs: RunService, private readonly store: RunStore, private readonly log: Logger, private readonly audit?: AuditChain,
  ) {}

  /** Starts the preview reads of `run` and records them on it; failures become an "unavailable" note. Then binds the state read, if any. */
  async start(run: Run): Promise<void> {
    const steps = previewSteps(run.action, run.args)
    if (!steps) return
    const preview = await this.read(steps, run.node_id, `impact preview for run ${run.id} (${run.action}), shown to its approvers`)
    try {
      await this.store.update(run.id, (r) => (r.approval ? { ...r, approval: { ...r.approval, preview } } : undefined))
    } catch (err) {
      this.log.warn({ err, runId: run.id }, 'cannot record the impact preview on the run')
    }
    await this.bindState(run, preview.runs)
  }

  /**
   * Waits for the preview's state read and binds its state into the run's
   * approval — only while no approval has been given (an approval already on
   * the old binding stays valid; that run is then not state-checked).
   */
  private async bindState(run: Run, started: Array<{ action: string, run_id: string }>): Promise<void> {
    const stateful = STATEFUL_ACTIONS[run.action]
    const id = stateful ? run.args[stateful.arg] : undefined
    const read = stateful ? started.find((s) => s.action === STATE_READ[stateful.kind]) : undefined
    if (!stateful || typeof id !== 'string' || !read) return
    const done = await this.store.waitFor(read.run_id, (r) => isTerminal(r.status), STATE_WAIT_MS)
    if (!done || done.status !== 'succeeded' || !done.result) return
    const parsed = done.result.parsed ?? safeJson(done.result.stdout)
    const observed = observedState(stateful.kind, parsed)
    if (!observed.ok) {
      this.log.warn({ runId: run.id, previewRun: read.run_id }, `no state bound: ${observed.message}`)
      return
    }
    const state: ApprovedState = {
      kind: stateful.kind, id, modify_index: observed.state.modify_index, fingerprint: observed.state.fingerprint, preview_digest: done.result.output_sha256,
    }
    let bound: Run | undefined
    try {
      bound = await this.store.update(run.id, (r) => {
        if (r.status !== 'pending_approval' || !r.approval || r.approval.approvals.length > 0 || r.state || r.binding_salt === undefined) return undefined
        const next = { ...r, state }
        return { ...next, approval: { ...r.approval, binding: runBinding(next) } }
      })
    } catch (err) {
      this.log.warn({ err, runId: run.id }, 'cannot bind the previewed state to the run')
      return
    }
    if (!bound?.state || bound.state.fingerprint !== state.fingerprint || bound.approval?.binding === run.approval?.binding) return
    await this.audit?.append({
      type: 'approval.state_bound', actor: CONTROL_PLANE_ACTOR, run_id: run.id, node: run.node_name, action: run.action,
      data: { state, binding: bound.approval?.binding, preview_run: read.run_id },
    })
  }

  /**
   * Runs the preview reads on `node` as the control plane; what could not
   * start is an "unavailable" note. A plan's sampled targets (plans/) are read
   * the same way.
   */
  async read(steps: PreviewStep[], node: string, reason: string): Promise<{ runs: Array<{ action: string, run_id: string }>, unavailable?: string }> {
    const started: Array<{ action: string, run_id: string }> = []
    const problems: string[] = []
    for (const step of steps) {
      try {
        const r = await this.runs.submitAsSystem({ action: step.action, node, args: step.args, reason })
        started.push({ action: step.action, run_id: r.id })
        if (r.status === 'node_offline') problems.push(r.status_reason)
      } catch (err) {
        problems.push(`${step.action}: ${(err as Error).message}`)
      }
    }
    return { runs: started, ...(problems.length > 0 ? { unavailable: problems.join('; ') } : {}) }
  }
}

function safeJson(text: string): unknown {
  try { return JSON.parse(text) as unknown } catch { return undefined }
}

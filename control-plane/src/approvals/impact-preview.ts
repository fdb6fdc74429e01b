/**
 * The impact preview an approver sees: read-only actions the control plane
 * runs for itself, as the `system` principal and audited like any run, the
 * moment a run starts waiting for approval — never when a page is opened, so
 * a link unfurler's GET dispatches nothing. The page renders their results.
 */
import type { Logger } from 'pino'
import type { Run, RunService, RunStore } from '../runs/index.js'

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

export class ImpactPreview {
  constructor(private readonly runs: RunService, private readonly store: RunStore, private readonly log: Logger) {}

  /** Starts the preview reads of `run` and records them on it; failures become an "unavailable" note. */
  async start(run: Run): Promise<void> {
    const steps = previewSteps(run.action, run.args)
    if (!steps) return
    const preview = await this.read(steps, run.node_id, `impact preview for run ${run.id} (${run.action}), shown to its approvers`)
    try {
      await this.store.update(run.id, (r) => (r.approval ? { ...r, approval: { ...r.approval, preview } } : undefined))
    } catch (err) {
      this.log.warn({ err, runId: run.id }, 'cannot record the impact preview on the run')
    }
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

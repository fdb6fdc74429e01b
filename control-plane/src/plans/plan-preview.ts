/**
 * The impact preview of a plan: where its action has one (what a stop would
 * kill, what a drain would move), the read-only preview runs of a sample of
 * its gated targets — every one of a small plan, an even spread of a large
 * one — started the moment the plan waits for people, never when a page is
 * opened. The plan page renders them from the state.
 */
import type { Logger } from 'pino'
import type { PreviewStep } from '../approvals/index.js'
import type { Plan, PlanState, PlanTarget } from './plan-schemas.js'
import type { PlanStore } from './plan-store.js'

/** How many targets of a plan get a preview. */
export const PREVIEW_SAMPLE = 5

export interface PlanPreviewDeps {
  store: PlanStore
  log: Logger
  /** The preview reads of an action with these arguments, if it has a preview. */
  steps: (action: string, args: PlanTarget['args']) => PreviewStep[] | undefined
  /** Runs them on a node as the control plane (ImpactPreview.read). */
  read: (steps: PreviewStep[], node: string, reason: string) => Promise<{ runs: Array<{ action: string, run_id: string }>, unavailable?: string }>
}

/** Positions of up to `n` gated targets, evenly spread over the plan, first and last included. */
export function samplePositions(plan: Pick<Plan, 'targets'>, n = PREVIEW_SAMPLE): number[] {
  const gated = plan.targets.flatMap((t, i) => (t.policy.decision === 'require_approval' ? [i] : []))
  if (gated.length <= n) return gated
  const picked = new Set<number>()
  for (let k = 0; k < n; k++) picked.add(gated[Math.round((k * (gated.length - 1)) / (n - 1))] as number)
  return [...picked]
}

export class PlanPreview {
  constructor(private readonly d: PlanPreviewDeps) {}

  /** Starts the preview reads of a plan waiting for people and records them on its state. */
  async start(plan: Plan): Promise<void> {
    const entries: NonNullable<PlanState['preview']> = []
    for (const position of samplePositions(plan)) {
      const target = plan.targets[position]
      const steps = target ? this.d.steps(plan.action, target.args) : undefined
      if (!target || !steps) continue
      const read = await this.d.read(steps, target.node_id, `impact preview for plan ${plan.id} (${plan.action}), target ${position} of ${plan.targets.length}, shown to its approvers`)
      entries.push({ position, node: target.node_name, ...read })
    }
    if (entries.length === 0) return
    try {
      await this.d.store.updateState(plan.id, (s) => ({ ...s, preview: entries }))
    } catch (err) {
      this.d.log.warn({ err, plan: plan.id }, 'cannot record the impact preview on the plan')
    }
  }
}

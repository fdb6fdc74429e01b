/**
 * Plans through the run tools: `run_action` with `targets` instead of `node`
 * makes a plan (same request path as `POST /v1/plans`), and `wait_for_run`
 * with a plan id waits for it and answers with the grouped summary — so an
 * agent asking one question of a hundred nodes reads one answer.
 */
import { PLAN_ID_RE } from '@writ/packs/protocol'
import type { Principal } from '../auth/index.js'
import { FINISHED_PLAN, type PlanView, type Plans } from '../plans/index.js'
import type { RunActionArgs } from './tool-schemas.js'

/** Node names listed per group in an answer; the rest is counted (the portal page lists them all). */
const NODES_PER_GROUP = 25

export type McpPlanView = Omit<PlanView, 'targets' | 'root' | 'list_digest'> & { next: string }

export const isPlanId = (id: string): boolean => PLAN_ID_RE.test(id)

export class PlanTools {
  constructor(private readonly plans: Plans, private readonly budget: number, private readonly maxWaitMs: number) {}

  private waitMs(seconds: number): number { return Math.min(seconds * 1000, this.maxWaitMs) }

  async runPlan(principal: Principal, q: RunActionArgs): Promise<McpPlanView> {
    const plan = await this.createPlan(principal, q)
    return this.view(principal, plan.id, q.wait_seconds)
  }

  /** The plan run_action with targets asks for, under `id` when an operation_id claimed one. */
  async createPlan(principal: Principal, q: RunActionArgs, id?: string): Promise<{ id: string }> {
    const { plan } = await this.plans.create(principal, {
      action: q.action, args: q.args, reason: q.reason, targets: q.targets as NonNullable<RunActionArgs['targets']>, wait: 0,
      ...(q.rollout !== undefined ? { rollout: q.rollout } : {}),
      ...(q.session_id !== undefined ? { session_id: q.session_id } : {}),
      ...(q.expected !== undefined ? { expected: q.expected } : {}),
      ...(q.evidence !== undefined ? { evidence: q.evidence } : {}),
    }, id)
    return plan
  }

  async view(principal: Principal, id: string, waitSeconds: number): Promise<McpPlanView> {
    const groups = Math.max(1, (await this.plans.service.get(principal, id)).plan.targets.length)
    const v = await this.plans.view(principal, id, {
      waitMs: this.waitMs(waitSeconds), withTargets: false, nodesPerGroup: NODES_PER_GROUP,
      sampleChars: Math.max(200, Math.floor(this.budget / Math.min(groups, 20))),
    })
    const { targets: _t, root: _r, list_digest: _l, ...rest } = v
    // The answer stays within the output budget: the largest groups first, the rest counted.
    let used = 0
    const kept = rest.groups.filter((g) => (used += g.output.length + g.nodes.join(',').length) <= this.budget || g === rest.groups[0])
    const more = rest.groups.length - kept.length
    return { ...rest, groups: kept, ...(more > 0 ? { more_groups: more } : {}), next: nextFor(v) }
  }
}

function nextFor(v: PlanView): string {
  if (v.status === 'pending_approval') return `People decide this plan in the portal (${v.url}); tell the user the link, then call wait_for_run with the plan id. You never approve it.`
  if (!FINISHED_PLAN.has(v.status)) return 'Call wait_for_run with the plan id to wait for the rest of the targets.'
  if (v.status === 'succeeded') return 'Read the groups: each lists the nodes with identical output.'
  return 'Read the groups (failures are their own groups, with their reasons); GET a target run id from the portal for one node\'s full output.'
}

/**
 * The plans feature as the rest of the control plane sees it: making,
 * reading, deciding and halting plans, rolling them out, recording their
 * targets' results — and answering for each target as an ordinary run.
 * Progress of plans being read is followed from the log (kept while a plan
 * runs, read once when it has finished), a few dozen at a time.
 */
import type { NatsConnection } from '@nats-io/transport-node'
import type { Logger } from 'pino'
import { PackCatalog } from '@writ/packs'
import { parsePlanRunId, type RunResult, type SigningKey } from '@writ/packs/protocol'
import type { AuditChain } from '../audit/index.js'
import type { Principal } from '../auth/index.js'
import type { FleetNode, FleetView } from '../fleet/index.js'
import type { Passkeys } from '../passkeys/index.js'
import type { Policy, PolicyDecision, PolicyScope } from '../policy/index.js'
import { sensitiveArgNames, type Run, type RunStore } from '../runs/index.js'
import { PlanApprovals, type PlanDecisionInput } from './plan-approvals.js'
import { PlanPreview, type PlanPreviewDeps } from './plan-preview.js'
import { PlanProgress } from './plan-progress.js'
import { PlanResults } from './plan-results.js'
import { PlanRollout, type RolloutOptions } from './plan-rollout.js'
import { FINISHED_PLAN, type Plan, type PlanRequest, type PlanState } from './plan-schemas.js'
import { PlanService, type PlanServiceDeps } from './plan-service.js'
import { PlanStore } from './plan-store.js'
import { presentPlan, targetRun, type PlanView } from './plan-view.js'

export interface PlansDeps {
  nc: NatsConnection
  key: SigningKey
  catalog: PackCatalog
  fleet: FleetView
  policy: Policy
  scope: PolicyScope
  runStore: RunStore
  audit: AuditChain
  passkeys: Passkeys | undefined
  log: Logger
  instanceId: string
  replicas: number
  maxTargets: number
  sweepMs: number
  rollout: RolloutOptions
  planUrl: (id: string) => string
  decide: (principal: Principal, action: { id: string, risk: Plan['risk'] }, node: FleetNode) => PolicyDecision
  storedResult: (nodeId: string, runId: string) => Promise<RunResult | undefined>
  /** When a result reached WRIT_RESULTS (ms), if it did. */
  resultStoredAt: (nodeId: string, runId: string) => Promise<number | undefined>
  /** Slack: one message per plan waiting for people, and its outcome. */
  notify: { pending(plan: Plan, state: PlanState): void, decided(plan: Plan, state: PlanState): void }
  /** A standing grant covering a plan's gated targets (grants/): the plan then rolls out without waiting for people. */
  grantCover?: PlanServiceDeps['grantCover']
  /** The impact preview's reads, for a sample of a waiting plan's targets. */
  preview?: Pick<PlanPreviewDeps, 'steps' | 'read'>
  /**
   * The brakes (brakes/): a freeze refuses a change-making plan from its scope and holds the rollout of one made
   * before; each target dispatched spends its requester's budget, and a spent budget holds the rest until its window ends.
   */
  brakes?: {
    refuseIfFrozen(requester: Plan['requester'], action: string): void
    held(requester: Plan['requester'], action: string): string | undefined
    admitTargets(requester: Plan['requester'], action: string, nodes: readonly string[]): Promise<{ admitted: number, retryAtMs?: number, why?: string }>
  } | undefined
}

const FOLLOWED = 50

export class Plans {
  readonly service: PlanService
  readonly approvals: PlanApprovals
  readonly rollout: PlanRollout
  readonly results: PlanResults
  private readonly preview: PlanPreview | undefined
  private readonly followed = new Map<string, { progress: PlanProgress, follower?: { stop(): void }, finished: boolean }>()
  private sweep: NodeJS.Timeout | undefined

  private constructor(readonly store: PlanStore, private readonly d: PlansDeps) {
    this.preview = d.preview ? new PlanPreview({ store, log: d.log, ...d.preview }) : undefined
    this.results = new PlanResults(store, d.audit, d.instanceId, d.log)
    this.rollout = new PlanRollout({
      nc: d.nc, key: d.key, store, results: this.results, audit: d.audit, catalog: d.catalog, log: d.log, instanceId: d.instanceId, opts: d.rollout,
      resultStoredAt: d.resultStoredAt,
      held: (plan) => d.brakes?.held(plan.requester, plan.action),
      admit: d.brakes ? (plan, positions) => (d.brakes as NonNullable<PlansDeps['brakes']>).admitTargets(plan.requester, plan.action, positions.map((p) => plan.targets[p]?.node_name ?? '')) : undefined,
      onFinished: (plan, state) => { if (plan.approval) d.notify.decided(plan, state) },
    })
    this.approvals = new PlanApprovals({
      plans: store, audit: d.audit, passkeys: d.passkeys, log: d.log, instanceId: d.instanceId, planUrl: d.planUrl,
      onApproved: (plan) => this.rollout.adopt(plan), onDecided: (plan, state) => { if (state.status !== 'running') d.notify.decided(plan, state) },
    })
    this.service = new PlanService({
      catalog: d.catalog, fleet: d.fleet, policy: d.policy, scope: d.scope, plans: store, runStore: d.runStore, audit: d.audit, log: d.log,
      instanceId: d.instanceId, maxTargets: d.maxTargets, decide: d.decide,
      passkeyRequired: (action, risk) => d.passkeys?.requirement(action, risk) !== undefined,
      onPending: (plan, state) => {
        d.notify.pending(plan, state)
        this.preview?.start(plan).catch((err: unknown) => d.log.warn({ err, plan: plan.id }, 'plan impact preview failed'))
      },
      onRunnable: (plan, tree) => this.rollout.adopt(plan, tree),
      refuseIfFrozen: (requester, action) => d.brakes?.refuseIfFrozen(requester, action),
      grantCover: d.grantCover,
    })
  }

  static async open(d: PlansDeps): Promise<Plans> {
    const store = await PlanStore.open(d.nc, d.replicas, d.log)
    await store.startWatch()
    const plans = new Plans(store, d)
    plans.rollout.start(d.sweepMs)
    plans.sweep = setInterval(() => { plans.approvals.sweep().catch((err: unknown) => d.log.error({ err }, 'plan approval sweep failed')) }, d.sweepMs)
    plans.sweep.unref()
    return plans
  }

  create(principal: Principal, req: PlanRequest, id?: string): Promise<{ plan: Plan, state: PlanState }> { return this.service.create(principal, req, id) }

  async decide(principal: Principal, id: string, input: PlanDecisionInput): Promise<PlanState> {
    const { plan } = await this.service.get(principal, id)
    return this.approvals.decide(principal, plan, input)
  }

  /** The plan's progress as the log holds it (followed while it runs). */
  async progress(id: string, state: PlanState): Promise<PlanProgress> {
    const finished = FINISHED_PLAN.has(state.status)
    const hit = this.followed.get(id)
    if (hit && (hit.finished || hit.follower)) {
      if (finished && !hit.finished) { hit.follower?.stop(); delete hit.follower; hit.finished = true }
      this.followed.delete(id)
      this.followed.set(id, hit)
      return hit.progress
    }
    const progress = new PlanProgress()
    const follower = await this.store.follow(id, progress)
    const entry = finished ? { progress, finished } : { progress, follower, finished }
    if (finished) follower.stop()
    this.followed.set(id, entry)
    while (this.followed.size > FOLLOWED) {
      const [oldest, e] = this.followed.entries().next().value as [string, { follower?: { stop(): void } }]
      e.follower?.stop()
      this.followed.delete(oldest)
    }
    return progress
  }

  /** The plan as `principal` may read it; `wait` seconds for it to finish (long-poll). */
  async view(principal: Principal, id: string, opts: { waitMs?: number, withTargets?: boolean, nodesPerGroup?: number, sampleChars?: number } = {}): Promise<PlanView> {
    let { plan, state } = await this.service.get(principal, id)
    if (opts.waitMs && opts.waitMs > 0 && !FINISHED_PLAN.has(state.status) && state.status !== 'pending_approval') {
      state = await this.store.waitFor(id, (s) => FINISHED_PLAN.has(s.status), opts.waitMs) ?? state
    }
    const progress = await this.progress(id, state)
    return presentPlan(plan, state, progress, {
      url: this.d.planUrl(id), nodesPerGroup: opts.nodesPerGroup ?? 1000, withTargets: opts.withTargets ?? true, sampleChars: opts.sampleChars ?? 4000,
    })
  }

  /** A plan target as the ordinary run it also is, or undefined when `runId` is not a plan's (or not visible). */
  async targetRun(principal: Principal, runId: string): Promise<Run | undefined> {
    const ref = parsePlanRunId(runId)
    if (!ref) return undefined
    const [plan, state] = await Promise.all([this.store.plan(ref.planId), this.store.state(ref.planId)])
    if (!plan || !state || !this.service.visible(principal, plan) || ref.position >= plan.targets.length) return undefined
    const progress = await this.progress(plan.id, state)
    const node = plan.targets[ref.position]?.node_id as string
    const stored = progress.results.has(ref.position) ? await this.d.storedResult(node, runId).catch(() => undefined) : undefined
    return targetRun(plan, state, progress, ref.position, sensitiveArgNames(this.d.catalog, plan.action), stored)
  }

  async close(): Promise<void> {
    clearInterval(this.sweep)
    await this.rollout.stop()
    await this.results.close()
    for (const e of this.followed.values()) e.follower?.stop()
    this.store.stop()
  }
}

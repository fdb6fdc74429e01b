/**
 * Rolling plans out, exactly once across replicas. One instance owns a
 * running plan at a time — a lease in its state, renewed while it lives; any
 * instance takes over a plan whose lease ran out. The owner follows the
 * plan's progress log, and for each batch it may send (rollout-rules.ts):
 * records the dispatch in the log (appended right after the last one, so a
 * second owner's dispatch can never also land), puts `plan.dispatched` on the
 * chain, then sends the writs — one signed statement for all of them. A new
 * owner re-sends the writs of targets dispatched without an outcome exactly
 * as they were (same statement, same window): a runner that has one already
 * answers `replayed`, so nothing runs twice and nothing is lost. Targets past
 * their deadline are `lost`; once every target has an outcome, or a halt
 * leaves none in flight, the plan ends.
 */
import type { NatsConnection } from '@nats-io/transport-node'
import { PackCatalog } from '@writ/packs'
import type { ApprovalRef, MerkleTree, SigningKey } from '@writ/packs/protocol'
import type { Logger } from 'pino'
import { type AuditChain, CONTROL_PLANE_ACTOR } from '../audit/index.js'
import { FAILED, PlanProgress, ranges } from './plan-progress.js'
import type { PlanResults } from './plan-results.js'
import { groupKey } from './plan-results.js'
import type { Plan, PlanState, TargetResult } from './plan-schemas.js'
import { DispatchConflict, type PlanStore } from './plan-store.js'
import { planTree, signStatement, type SignedStatement } from './plan-writs.js'
import { sendWrits } from './plan-send.js'
import { nextStep } from './rollout-rules.js'

export interface RolloutOptions { leaseMs: number, writTtlMs: number, ackTimeoutMs: number, lostGraceMs: number }

export interface RolloutDeps {
  nc: NatsConnection
  key: SigningKey
  store: PlanStore
  results: PlanResults
  audit: AuditChain
  catalog: PackCatalog
  log: Logger
  instanceId: string
  opts: RolloutOptions
  /** When a target's result reached WRIT_RESULTS (ms), or undefined: a result stored in time is not lost. */
  resultStoredAt: (nodeId: string, runId: string) => Promise<number | undefined>
  /** Called once a plan ended (Slack hears of it). */
  onFinished: (plan: Plan, state: PlanState) => void
  /** Why no new target of `plan` may be dispatched now (a freeze covers its requester), or undefined. */
  held?: ((plan: Plan) => string | undefined) | undefined
  /** How many of these next targets the requester's budget lets go now (the first ones), and when to look again if not all. */
  admit?: ((plan: Plan, positions: number[]) => Promise<{ admitted: number, retryAtMs?: number, why?: string }>) | undefined
}


export class PlanRollout {
  private readonly driving = new Map<string, PlanDriver>()
  private timer: NodeJS.Timeout | undefined

  constructor(private readonly d: RolloutDeps) {}

  /** Trees the instance built when it made a plan, for the rollout that follows (building one hashes every leaf). */
  private readonly trees = new Map<string, MerkleTree>()

  /** Takes a runnable plan on (this instance just made or approved it; `tree` when it has it built). */
  adopt(plan: Plan, tree?: MerkleTree): void {
    if (tree) this.trees.set(plan.id, tree)
    void this.takeOver(plan.id).catch((err: unknown) => this.d.log.error({ err, plan: plan.id }, 'cannot take a plan on'))
  }

  /** Every sweep: take over running plans whose owner's lease ran out (it died, or never started). */
  start(sweepMs: number): void {
    this.timer = setInterval(() => {
      const now = Date.now()
      for (const s of this.d.store.list()) {
        if (s.status !== 'running' || this.driving.has(s.id) || (s.owner && s.owner.until > now)) continue
        void this.takeOver(s.id).catch((err: unknown) => this.d.log.warn({ err, plan: s.id }, 'cannot take over a plan'))
      }
    }, sweepMs)
    this.timer.unref()
  }

  private async takeOver(id: string): Promise<void> {
    if (this.driving.has(id)) return
    const now = Date.now()
    const r = await this.d.store.updateState(id, (s) => {
      if (s.status !== 'running' || (s.owner && s.owner.instance !== this.d.instanceId && s.owner.until > now)) return undefined
      return { ...s, owner: { instance: this.d.instanceId, until: now + this.d.opts.leaseMs } }
    })
    if (!r?.changed || this.driving.has(id)) return
    const plan = await this.d.store.plan(id)
    if (!plan) return
    if (r.state.owner && r.state.owner.instance === this.d.instanceId) {
      const tree = this.trees.get(id)
      this.trees.delete(id)
      const driver = new PlanDriver(plan, this.d, () => this.driving.delete(id), tree)
      this.driving.set(id, driver)
      this.d.log.info({ plan: id, targets: plan.targets.length }, 'rolling out plan')
      await driver.start()
    }
  }

  /** Plans this instance drives now. */
  get owned(): string[] { return [...this.driving.keys()] }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    await Promise.allSettled([...this.driving.values()].map((d) => d.stop()))
  }
}

class PlanDriver {
  private readonly progress = new PlanProgress()
  private tree: MerkleTree | undefined
  private follower: { stop(): void } | undefined
  private stopped = false
  private busy = false
  private again = false
  private wake: NodeJS.Timeout | undefined
  private unsubscribe: (() => void)[] = []
  /** Why the rollout last said it waits (the plan's status_reason), while it does. */
  private said: string | undefined
  private readonly timeoutMs: number

  constructor(private readonly plan: Plan, private readonly d: RolloutDeps, private readonly done: () => void, built?: MerkleTree) {
    this.tree = built
    const hit = d.catalog.lookup(plan.action)
    this.timeoutMs = hit.ok ? PackCatalog.limits(hit.action, plan.options).timeoutMs : 60_000
  }

  async start(): Promise<void> {
    this.tree ??= planTree(this.plan)
    if (this.tree.root.toString('hex') !== this.plan.root) {
      this.d.log.error({ plan: this.plan.id }, 'the stored plan does not hash to its root; it is not rolled out')
      return this.stop()
    }
    this.follower = await this.d.store.follow(this.plan.id, this.progress)
    this.unsubscribe.push(this.progress.onChange(() => this.kick()), this.d.store.onChange((s) => { if (s.id === this.plan.id) this.kick() }))
    await this.resendInDoubt()
    this.kick()
  }

  kick(delayMs = 0): void {
    if (this.stopped) return
    if (delayMs > 0) { clearTimeout(this.wake); this.wake = setTimeout(() => this.kick(), delayMs); return }
    if (this.busy) { this.again = true; return }
    this.busy = true
    void this.step().catch((err: unknown) => this.d.log.error({ err, plan: this.plan.id }, 'plan rollout step failed')).finally(() => {
      this.busy = false
      if (this.again) { this.again = false; this.kick() }
    })
  }

  private approvals(state: PlanState): ApprovalRef[] {
    return state.approvals.map((a) => ({ by: a.by, at: a.at, binding: a.binding, ...(a.passkey ? { passkey: a.passkey } : {}) }))
  }

  private async step(): Promise<void> {
    const state = await this.d.store.state(this.plan.id)
    if (!state || state.status !== 'running' || state.owner?.instance !== this.d.instanceId) return this.stop()
    const now = Date.now()
    if ((state.owner?.until ?? 0) - now < (this.d.opts.leaseMs * 2) / 3 && !(await this.renew())) return this.stop()
    await this.expireOverdue(now)
    if (state.halt) {
      if (this.progress.inFlight().length === 0) await this.finish(state)
      return this.kick(this.d.opts.leaseMs / 3)
    }
    const next = nextStep(this.plan.rollout, this.plan.targets.length, this.progress, now)
    switch (next.kind) {
      case 'done': return this.finish(state)
      case 'budget_exceeded': return this.halt(`${next.failures} target(s) failed, more than max_errors (${next.limit}): no new target is dispatched`)
      case 'dispatch':
        // A freeze holds the rollout: targets in flight finish, no new one leaves until it is lifted.
        const held = this.d.held?.(this.plan)
        if (held) { await this.say(held); return this.kick(Math.min(250, this.d.opts.leaseMs / 3)) }
        return this.dispatchWithinBudget(next.positions, state, now)
      case 'wait': return this.kick(next.until !== undefined ? Math.max(10, next.until - now) : this.d.opts.leaseMs / 3)
    }
  }

  /** Dispatches the targets the requester's budget lets go (each target is a run, and spends like one); the rest wait for the window to end. */
  private async dispatchWithinBudget(positions: number[], state: PlanState, now: number): Promise<void> {
    const { admitted, retryAtMs, why } = this.d.admit ? await this.d.admit(this.plan, positions) : { admitted: positions.length }
    if (admitted > 0) {
      if (this.said) await this.say(`rolling out to ${this.plan.targets.length} target(s)`, false)
      await this.dispatch(positions.slice(0, admitted), state)
    }
    if (admitted === positions.length) return this.kick()
    await this.say(why ?? 'waiting for budget')
    // The lease is renewed while it waits: kicks come at least every third of it.
    return this.kick(Math.max(10, Math.min((retryAtMs ?? now) - now, this.d.opts.leaseMs / 3)))
  }

  /** Puts why the rollout waits (a freeze, a spent budget) in the plan's status_reason, once per reason; `waiting` false when it goes on. */
  private async say(reason: string, waiting = true): Promise<void> {
    if (this.said === (waiting ? reason : undefined)) return
    await this.d.store.updateState(this.plan.id, (s) => (s.status === 'running' && s.status_reason !== reason ? { ...s, status_reason: reason } : undefined))
    this.said = waiting ? reason : undefined
  }

  private async renew(): Promise<boolean> {
    const r = await this.d.store.updateState(this.plan.id, (s) => (s.owner?.instance === this.d.instanceId && s.status === 'running'
      ? { ...s, owner: { instance: this.d.instanceId, until: Date.now() + this.d.opts.leaseMs } } : undefined))
    return r?.changed === true
  }

  /** The statement to send under: the latest while it has at least half its window left, else a fresh one. */
  private statement(): SignedStatement {
    const current = this.progress.signed
    if (current && Date.parse(current.statement.expires_at) - Date.now() > this.d.opts.writTtlMs / 2) return current
    return signStatement(this.plan, this.d.key, this.d.opts.writTtlMs)
  }

  private async dispatch(positions: number[], state: PlanState): Promise<void> {
    const signed = this.statement()
    const at = new Date().toISOString()
    try {
      await this.d.store.appendDispatch(this.plan.id, { kind: 'dispatch', positions, at, instance: this.d.instanceId, ...signed }, this.progress.lastDispatchSeq)
    } catch (err) {
      if (err instanceof DispatchConflict) { this.d.log.warn({ plan: this.plan.id }, err.message); return this.stop() }
      throw err
    }
    for (const p of positions) if (!this.progress.dispatched.has(p)) this.progress.dispatched.set(p, Date.parse(at))
    await this.d.audit.append({
      type: 'plan.dispatched', actor: CONTROL_PLANE_ACTOR, run_id: this.plan.id, action: this.plan.action,
      data: { plan_id: this.plan.id, positions: ranges(positions), key_id: signed.key_id, expires_at: signed.statement.expires_at },
    })
    await this.send(positions, signed, state)
  }

  /** Sends the writs; records what the runners' answers already settle (a refusal; no runner listening). */
  private async send(positions: number[], signed: SignedStatement, state: PlanState): Promise<void> {
    const settled = await sendWrits(this.d.nc, this.plan, this.tree as MerkleTree, signed, this.approvals(state), positions, this.d.opts.ackTimeoutMs)
    if (settled.length > 0) await this.d.results.record(this.plan.id, settled)
  }

  /** A new owner: the targets dispatched without an outcome get their writs again, exactly as sent (a runner that has one answers `replayed`). */
  private async resendInDoubt(): Promise<void> {
    const inDoubt = this.progress.inFlight()
    const signed = this.progress.signed
    if (inDoubt.length === 0 || !signed || Date.parse(signed.statement.expires_at) <= Date.now()) return
    const state = await this.d.store.state(this.plan.id)
    if (!state) return
    await this.d.audit.append({
      type: 'plan.dispatched', actor: CONTROL_PLANE_ACTOR, run_id: this.plan.id, action: this.plan.action,
      data: { plan_id: this.plan.id, positions: ranges(inDoubt), key_id: signed.key_id, expires_at: signed.statement.expires_at, recovered: true },
    })
    this.d.log.warn({ plan: this.plan.id, targets: inDoubt.length }, 'took over a plan: re-sending the writs of targets with no outcome yet')
    await this.send(inDoubt, signed, state)
  }

  /** Targets dispatched whose deadline passed without a result are `lost` (one whose result reached the stream in time is not). */
  private async expireOverdue(now: number): Promise<void> {
    const lost: TargetResult[] = []
    for (const p of this.progress.inFlight()) {
      const deadline = (this.progress.dispatched.get(p) ?? now) + this.timeoutMs + this.d.opts.lostGraceMs
      if (deadline > now) continue
      const t = this.plan.targets[p]
      if (!t) continue
      const storedAt = await this.d.resultStoredAt(t.node_id, `${this.plan.id}-${p}`).catch(() => undefined)
      if (storedAt !== undefined && storedAt <= deadline && now < deadline + 60_000) continue
      const reason = `no result from node ${t.node_name} by its deadline; not retried`
      lost.push({ p, status: 'lost', exit_code: null, group: groupKey('lost', null, 'lost'), sample: reason, reason, at: new Date(now).toISOString() })
    }
    if (lost.length > 0) await this.d.results.record(this.plan.id, lost)
  }

  private async halt(reason: string): Promise<void> {
    const at = new Date().toISOString()
    const r = await this.d.store.updateState(this.plan.id, (s) => (s.halt || s.status !== 'running' ? undefined
      : { ...s, halt: { by: CONTROL_PLANE_ACTOR.id, reason, at }, status_reason: `halting: ${reason}` }))
    if (r?.changed) await this.d.audit.append({ type: 'plan.halted', actor: CONTROL_PLANE_ACTOR, run_id: this.plan.id, action: this.plan.action, data: { plan_id: this.plan.id, reason } })
    this.kick()
  }

  private async finish(state: PlanState): Promise<void> {
    const size = this.plan.targets.length
    const results = [...this.progress.results.values()]
    const succeeded = results.filter((r) => r.status === 'succeeded').length
    const failed = results.filter((r) => FAILED.has(r.status)).length
    const notDispatched: number[] = []
    for (let p = 0; p < size; p++) if (!this.progress.dispatched.has(p) && !this.progress.results.has(p)) notDispatched.push(p)
    const status: PlanState['status'] = state.halt ? 'halted' : succeeded === size ? 'succeeded' : succeeded === 0 ? 'failed' : 'partially_failed'
    const reason = state.halt
      ? `halted (${state.halt.reason}): ${succeeded} succeeded, ${failed} failed, ${notDispatched.length} never dispatched`
      : `${succeeded} of ${size} target(s) succeeded${failed ? `, ${failed} failed` : ''}`
    const at = new Date().toISOString()
    // On the chain before the state says so: a finished plan always has its event.
    await this.d.audit.append({
      type: 'plan.finished', actor: CONTROL_PLANE_ACTOR, run_id: this.plan.id, action: this.plan.action,
      data: { plan_id: this.plan.id, status, succeeded, failed, targets: size, not_dispatched: ranges(notDispatched) },
    })
    const r = await this.d.store.updateState(this.plan.id, (s) => (s.status !== 'running' ? undefined : { ...s, status, status_reason: reason, finished_at: at, owner: undefined }))
    if (r?.changed) this.d.onFinished(this.plan, r.state)
    await this.stop()
  }

  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    clearTimeout(this.wake)
    for (const u of this.unsubscribe) u()
    this.follower?.stop()
    this.done()
  }
}


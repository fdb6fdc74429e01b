/**
 * The brakes on the run path: the freeze and the budgets.
 *
 * A freeze (set by an operator for `agents` or for one principal) refuses
 * every request from its scope whose action changes state — 423, naming who
 * froze it and why — while reads go on; an approved run from the scope is
 * held (stays `approved`) until the freeze is lifted. What "changes state"
 * means is the pack contract's: an action whose side effects are not declared
 * None (the same reading the approver registry's passkey gate uses).
 *
 * Budgets are charged when a run is dispatched and only then: a run refused,
 * waiting for approval or denied costs nothing. A spent budget refuses a
 * request that would dispatch at once (429 with Retry-After and what was
 * spent) and holds an approved run until its window ends.
 */
import { declaresNoSideEffects, type PackCatalog } from '@writ/packs'
import type { Logger } from 'pino'
import type { AuditChain } from '../audit/index.js'
import type { Principal, PrincipalRegistry } from '../auth/index.js'
import type { Budgets } from '../config.js'
import { BudgetExhausted, Frozen, NotFrozen, UnknownPrincipal, requirePlainText, withDetails } from '../http/index.js'
import type { BrakeReceipt, Run, RunBrakes } from '../runs/index.js'
import type { BrakeMetrics } from './brake-metrics.js'
import type { BudgetLedger, ChargeResult, Receipt } from './budget-ledger.js'
import { AGENTS_SCOPE, type Freeze, type FreezeRequest } from './freeze-schemas.js'
import type { FreezeStore } from './freeze-store.js'

/** A notice about the brakes for people (Slack): a stable id, and one line of text. */
export interface BrakeNotice { id: string, kind: 'freeze' | 'unfreeze', text: string }

export interface BrakesDeps {
  freezes: FreezeStore
  ledger: BudgetLedger
  catalog: PackCatalog
  principals: PrincipalRegistry
  /** Each budgeted principal's limits (`principals[].budgets`). */
  budgets: ReadonlyMap<string, Budgets>
  audit: AuditChain
  metrics: BrakeMetrics
  log: Logger
  /** Tells people (Slack) a freeze was set or lifted; never blocks or fails the freeze. */
  notify: (notice: BrakeNotice) => void
}

type Requester = Run['requester']

export class Brakes implements RunBrakes {
  private readonly lifted = new Set<(freeze: Freeze) => void>()

  constructor(private readonly d: BrakesDeps) {}

  /** Every freeze in force. */
  get freezes(): readonly Freeze[] { return this.d.freezes.freezes }

  /** Whether `action` changes state by its contract (side effects not declared None); an unknown action counts as changing it. */
  changesState(action: string): boolean {
    const hit = this.d.catalog.lookup(action)
    return !hit.ok || !declaresNoSideEffects(hit.action.spec.side_effects)
  }

  /** The freeze that covers `requester`, if any: its own scope first, then `agents`. */
  covering(requester: Pick<Requester, 'id' | 'kind'>): Freeze | undefined {
    const all = this.d.freezes.freezes
    return all.find((f) => f.scope === requester.id) ?? (requester.kind === 'agent' ? all.find((f) => f.scope === AGENTS_SCOPE) : undefined)
  }

  refuseIfFrozen(requester: Requester, action: string): void {
    if (requester.kind === 'system' || !this.changesState(action)) return
    const f = this.covering(requester)
    if (!f) return
    this.d.metrics.refusedFrozen.inc({ principal: requester.id })
    throw withDetails(new Frozen(frozenMessage(f, action)), { frozen: { scope: f.scope, by: f.by, reason: f.reason, since: f.at } })
  }

  /** Freezes `req.scope` (an operator's act, checked by the route). Freezing a frozen scope again replaces its reason. */
  async freeze(principal: Principal, req: FreezeRequest): Promise<Freeze> {
    requirePlainText({ reason: req.reason })
    if (req.scope !== AGENTS_SCOPE && !this.d.principals.get(req.scope)) throw withDetails(new UnknownPrincipal(req.scope), { scope: req.scope })
    const freeze: Freeze = { scope: req.scope, reason: req.reason, by: principal.id, person: principal.person, at: new Date().toISOString() }
    await this.d.freezes.update((r) => ({ v: 1, freezes: [...r.freezes.filter((f) => f.scope !== req.scope), freeze] }))
    const actor = { id: principal.id, kind: principal.kind }
    await this.d.audit.append({ type: 'freeze.set', actor, data: { scope: freeze.scope, reason: freeze.reason, person: freeze.person } })
    this.d.log.warn({ scope: freeze.scope, by: freeze.by }, 'frozen')
    const text = `:octagonal_sign: ${scopeWords(freeze.scope)} frozen by ${freeze.by}: ${freeze.reason}.`
      + ' Change-making requests are refused and approved runs are held until someone unfreezes; reads go on.'
    this.d.notify({ id: `freeze:${freeze.scope}:${freeze.at}`, kind: 'freeze', text })
    return freeze
  }

  /** Lifts the freeze of `scope`; throws 409 when nothing is frozen there (and changes nothing). */
  async unfreeze(principal: Principal, scope: string): Promise<Freeze> {
    let removed: Freeze | undefined
    await this.d.freezes.update((r) => {
      removed = r.freezes.find((f) => f.scope === scope)
      return removed ? { v: 1, freezes: r.freezes.filter((f) => f.scope !== scope) } : undefined
    })
    if (!removed) throw withDetails(new NotFrozen(scope), { scope })
    const held = Date.now() - Date.parse(removed.at)
    await this.d.audit.append({
      type: 'freeze.lifted', actor: { id: principal.id, kind: principal.kind },
      data: { scope, person: principal.person, frozen_by: removed.by, reason: removed.reason, since: removed.at, frozen_ms: held },
    })
    this.d.log.warn({ scope, by: principal.id }, 'unfrozen')
    const text = `:large_green_circle: ${scopeWords(scope)} unfrozen by ${principal.id}`
      + ` (frozen by ${removed.by} since ${removed.at}: ${removed.reason}). Held runs are dispatched now.`
    this.d.notify({ id: `unfreeze:${scope}:${removed.at}`, kind: 'unfreeze', text })
    for (const l of this.lifted) l(removed)
    return removed
  }

  /** Called on this instance when it lifts a freeze (held runs can go now). */
  onLifted(listener: (freeze: Freeze) => void): void { this.lifted.add(listener) }

  /** Why a plan's next targets may not be dispatched now (a freeze covers its requester), or undefined. */
  held(requester: Pick<Requester, 'id' | 'kind'>, action: string): string | undefined {
    if (requester.kind === 'system' || !this.changesState(action)) return undefined
    const f = this.covering(requester)
    return f ? `held: ${scopeWords(f.scope)} frozen by ${f.by} (${f.reason})` : undefined
  }

  /**
   * How many of a plan's next targets (their node names, in order) its
   * requester's budget lets go now: all when it has no budget; fewer, with
   * when to look again, when a budget is spent.
   */
  async admitTargets(requester: Pick<Requester, 'id' | 'kind'>, action: string, nodes: readonly string[]): Promise<{ admitted: number, retryAtMs?: number, why?: string }> {
    const limits = requester.kind === 'system' ? undefined : this.d.budgets.get(requester.id)
    if (!limits) return { admitted: nodes.length }
    const mutating = this.changesState(action)
    const outcome = await this.d.ledger.chargeMany(requester.id, limits, nodes.map((node) => ({ mutating, node })))
    this.d.metrics.record(requester.id, outcome.spent)
    if (outcome.admitted > 0) this.d.metrics.dispatched.inc({ principal: requester.id }, outcome.admitted)
    if (!outcome.refusal) return { admitted: outcome.admitted }
    this.d.metrics.exhausted.inc({ principal: requester.id, budget: outcome.refusal.budget })
    const r = outcome.refusal
    return { admitted: outcome.admitted, retryAtMs: Date.parse(r.resets_at), why: `held: ${requester.id} spent its ${r.budget} budget (${r.limit}); the next targets go after ${r.resets_at}` }
  }

  async charge(run: Run): Promise<BrakeReceipt | undefined> {
    const outcome = await this.spend(run)
    if (outcome === undefined || outcome.ok) return outcome?.receipt as BrakeReceipt | undefined
    throw withDetails(new BudgetExhausted(exhaustedMessage(run.requester.id, outcome)), {
      budget: outcome.budget, limit: outcome.limit, spent: outcome.spent, resets_at: outcome.resets_at, retry_after_s: outcome.retry_after_s,
    })
  }

  async admitApproved(run: Run): Promise<{ held: string } | { receipt: BrakeReceipt | undefined }> {
    const f = run.requester.kind === 'system' || !this.changesState(run.action) ? undefined : this.covering(run.requester)
    if (f) return { held: `approved; held: ${scopeWords(f.scope)} frozen by ${f.by} since ${f.at} (${f.reason}); dispatched once unfrozen` }
    const outcome = await this.spend(run)
    if (outcome === undefined || outcome.ok) return { receipt: outcome?.receipt as BrakeReceipt | undefined }
    return { held: `approved; held: ${run.requester.id} spent its ${outcome.budget} budget (${outcome.limit}); dispatched after ${outcome.resets_at}` }
  }

  async refund(receipt: BrakeReceipt): Promise<void> {
    await this.d.ledger.refund(receipt as unknown as Receipt)
  }

  /** What `principal` spent, and its limits (for `GET /v1/budgets`). */
  async budgetOf(principal: string): Promise<{ principal: string, limits: Budgets, spent: Awaited<ReturnType<BudgetLedger['spent']>> } | undefined> {
    const limits = this.d.budgets.get(principal)
    if (!limits) return undefined
    return { principal, limits, spent: await this.d.ledger.spent(principal) }
  }

  get budgeted(): string[] { return [...this.d.budgets.keys()] }

  /** Charges the requester's budget, if it has one; undefined when it has none. */
  private async spend(run: Run): Promise<ChargeResult | undefined> {
    const limits = run.requester.kind === 'system' ? undefined : this.d.budgets.get(run.requester.id)
    if (!limits) return undefined
    const principal = run.requester.id
    const outcome = await this.d.ledger.charge(principal, limits, { mutating: this.changesState(run.action), node: run.node_name })
    this.d.metrics.record(principal, outcome.spent)
    if (outcome.ok) this.d.metrics.dispatched.inc({ principal })
    else this.d.metrics.exhausted.inc({ principal, budget: outcome.budget })
    return outcome
  }
}

function scopeWords(scope: string): string {
  return scope === AGENTS_SCOPE ? 'every agent is' : `principal ${scope} is`
}

function frozenMessage(f: Freeze, action: string): string {
  return `${scopeWords(f.scope)} frozen by ${f.by} since ${f.at}: "${f.reason}". ${action} changes state, so it is refused until an operator unfreezes; reads still run`
}

function exhaustedMessage(principal: string, o: Extract<ChargeResult, { ok: false }>): string {
  const s = o.spent
  const spent = `this minute: ${s.runs_this_minute} run(s); this hour: ${s.mutations_this_hour} change(s) on ${s.nodes_this_hour} node(s)`
  return `${principal} has spent its ${o.budget} budget of ${o.limit} (${spent}); it comes back at ${o.resets_at} — retry in ${o.retry_after_s} s`
}

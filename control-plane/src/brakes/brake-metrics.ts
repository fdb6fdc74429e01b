/** Prometheus series of the brakes, per principal, in the control plane's registry. */
import { Counter, Gauge, type Registry } from 'prom-client'
import { BUDGET_NAMES, type Spent } from './budget-ledger.js'

export class BrakeMetrics {
  readonly dispatched: Counter<'principal'>
  readonly exhausted: Counter<'principal' | 'budget'>
  readonly spent: Gauge<'principal' | 'budget'>
  readonly refusedFrozen: Counter<'principal'>

  constructor(registry: Registry, budgeted: readonly string[], frozenScopes: () => number) {
    this.dispatched = new Counter({ name: 'writ_budget_dispatches_total', help: 'Dispatched runs charged to a principal\'s budget', labelNames: ['principal'], registers: [registry] })
    this.exhausted = new Counter({
      name: 'writ_budget_exhausted_total', help: 'Requests refused (429) or approved runs held because a budget was spent, by principal and budget',
      labelNames: ['principal', 'budget'], registers: [registry],
    })
    this.spent = new Gauge({
      name: 'writ_budget_spent', help: 'What a principal has spent in the current window, as this instance last charged it (runs_per_minute, mutations_per_hour, nodes_per_hour)',
      labelNames: ['principal', 'budget'], registers: [registry],
    })
    this.refusedFrozen = new Counter({ name: 'writ_freeze_refusals_total', help: 'Change-making requests refused (423) by a freeze, by principal', labelNames: ['principal'], registers: [registry] })
    new Gauge({ name: 'writ_freezes_in_force', help: 'Freezes in force (scopes frozen)', registers: [registry], collect() { this.set(frozenScopes()) } })
    // Every budgeted principal's series exist from the start, so the first refusal is an increase() an alert sees.
    for (const principal of budgeted) {
      this.dispatched.inc({ principal }, 0)
      for (const budget of BUDGET_NAMES) this.exhausted.inc({ principal, budget }, 0)
    }
  }

  record(principal: string, spent: Spent): void {
    this.spent.set({ principal, budget: 'runs_per_minute' }, spent.runs_this_minute)
    this.spent.set({ principal, budget: 'mutations_per_hour' }, spent.mutations_this_hour)
    this.spent.set({ principal, budget: 'nodes_per_hour' }, spent.nodes_this_hour)
  }
}

/**
 * What an approver reads about one run, from the action's declaration and the
 * run's arguments: the one-line summary (`summary:`) and the side effects
 * that apply to these arguments (`side_effects` entries with `when:`).
 *
 * Pure text; every surface escapes it for its medium (the portal's templates,
 * Slack's plain_text, the CLI's terminal escaping). Arguments come in as a
 * person may read them (sensitive ones already redacted), and the loader
 * refuses summaries and conditions that name a sensitive argument, so that
 * neither the words nor the choice of effects can tell its value.
 */
import type { ActionFile, ArgCondition, SideEffect } from './pack-schema.js'
import { SUMMARY_FILTERS } from './pack-schema.js'

/** What a summary is rendered over. */
export interface SummaryContext {
  /** The target node's name. */
  node: string
  /** The run's arguments, sensitive ones redacted. */
  args: Readonly<Record<string, unknown>>
  /** Names the control plane knows for argument values (alloc_id → "victoria-metrics.storage[0]"), for `| labelled`. */
  labels?: Readonly<Record<string, string>>
}

const SUMMARY_MAX = 240
const VALUE_MAX = 80
const TOKEN_RE = /\{\{([^}]*)\}\}/g
const INNER_RE = /^\s*(node|action|args\.([a-z][a-z0-9_]*)\??)\s*((?:\|\s*[a-z_]+\s*)*)$/

const clip = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max - 1)}…` : text)

function valueText(v: unknown): string {
  if (v === undefined || v === null) return ''
  if (Array.isArray(v)) return v.map(valueText).join(', ')
  return typeof v === 'string' ? v : String(v)
}

/** Whether `args` meet `when` (every named argument has the value, or one of the values). */
export function conditionHolds(when: ArgCondition, args: Readonly<Record<string, unknown>>): boolean {
  return Object.entries(when).every(([name, want]) => {
    const have = args[name]
    if (have === undefined || have === null) return false
    const wanted = Array.isArray(want) ? want : [want]
    const values = Array.isArray(have) ? have : [have]
    return values.some((v) => wanted.some((w) => w === v || String(w) === String(v)))
  })
}

const conditionText = (when: ArgCondition): string =>
  Object.entries(when).map(([k, v]) => `${k} is ${Array.isArray(v) ? v.map(String).join(' or ') : String(v)}`).join(' and ')

/** Every declared side effect as text; a conditional one says when it applies (for catalogs, where no run is known). */
export function describeSideEffects(effects: readonly SideEffect[]): string[] {
  return effects.map((e) => (typeof e === 'string' ? e : `${e.effect} (only when ${conditionText(e.when)})`))
}

/** The side effects that apply to a run with these arguments. */
export function applicableSideEffects(effects: readonly SideEffect[], args: Readonly<Record<string, unknown>>): string[] {
  return effects.flatMap((e) => (typeof e === 'string' ? [e] : conditionHolds(e.when, args) ? [e.effect] : []))
}

function renderTemplate(text: string, action: string, ctx: SummaryContext): string {
  return text.replace(TOKEN_RE, (_whole, inner: string) => {
    const m = INNER_RE.exec(inner)
    if (!m) return ''
    const name = m[2]
    let out = m[1] === 'node' ? ctx.node : m[1] === 'action' ? action : clip(valueText(ctx.args[name as string]), VALUE_MAX)
    for (const filter of (m[3] ?? '').split('|').map((f) => f.trim()).filter(Boolean)) {
      if (filter === 'upper') out = out.toUpperCase()
      else if (filter === 'lower') out = out.toLowerCase()
      else if (filter === 'short') out = out.slice(0, 8)
      else if (filter === 'labelled') {
        const label = name ? ctx.labels?.[name] : undefined
        if (label) out = `${out} (${clip(label, VALUE_MAX)})`
      }
    }
    return out
  })
}

/**
 * The run in one line: the action's `summary` over the arguments, or, for an
 * action without one, its title, the node and the arguments.
 */
export function renderSummary(spec: Pick<ActionFile, 'id' | 'title' | 'summary'>, ctx: SummaryContext): string {
  if (spec.summary === undefined) {
    const args = Object.entries(ctx.args).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${clip(valueText(v), VALUE_MAX)}`)
    return clip(`${spec.title} on ${ctx.node}${args.length > 0 ? ` (${args.join(', ')})` : ''}`, SUMMARY_MAX)
  }
  const parts = typeof spec.summary === 'string' ? [spec.summary] : spec.summary
  const text = parts.map((p) => (typeof p === 'string' ? p : conditionHolds(p.when, ctx.args) ? p.text : '')).map((p) => renderTemplate(p, spec.id, ctx)).join('')
  // One line, whatever a value held: runs of whitespace become one space.
  return clip(text.replace(/\s+/g, ' ').trim(), SUMMARY_MAX)
}

/** Problems with an action's summary and side-effect conditions, for the loader: `[field, message]`. */
export function summaryProblems(spec: Pick<ActionFile, 'summary' | 'side_effects' | 'args'>): Array<[string, string]> {
  const problems: Array<[string, string]> = []
  const byName = new Map(spec.args.map((a) => [a.name, a]))
  const checkCondition = (field: string, when: ArgCondition): void => {
    for (const name of Object.keys(when)) {
      const arg = byName.get(name)
      if (!arg) problems.push([`${field}.${name}`, `condition names undeclared argument "${name}"`])
      else if (arg.sensitive) problems.push([`${field}.${name}`, `condition names sensitive argument "${name}": what is shown would tell its value`])
    }
  }
  const checkText = (field: string, text: string): void => {
    for (const m of text.matchAll(TOKEN_RE)) {
      const inner = m[1] ?? ''
      const ok = INNER_RE.exec(inner)
      if (!ok) { problems.push([field, `template "{{${inner}}}" is not {{ node }}, {{ action }} or {{ args.<name> }} with filters`]); continue }
      const name = ok[2]
      if (name !== undefined) {
        const arg = byName.get(name)
        if (!arg) problems.push([field, `template names undeclared argument "${name}"`])
        else if (arg.sensitive) problems.push([field, `template names sensitive argument "${name}": a summary is shown to people`])
      }
      for (const f of (ok[3] ?? '').split('|').map((x) => x.trim()).filter(Boolean)) {
        if (!(SUMMARY_FILTERS as readonly string[]).includes(f)) problems.push([field, `unknown summary filter "${f}" (known: ${SUMMARY_FILTERS.join(', ')})`])
      }
    }
  }
  if (typeof spec.summary === 'string') checkText('summary', spec.summary)
  else spec.summary?.forEach((p, i) => {
    if (typeof p === 'string') checkText(`summary.${i}`, p)
    else { checkText(`summary.${i}.text`, p.text); checkCondition(`summary.${i}.when`, p.when) }
  })
  spec.side_effects.forEach((e, i) => { if (typeof e !== 'string') checkCondition(`side_effects.${i}.when`, e.when) })
  return problems
}

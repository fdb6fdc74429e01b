/**
 * A plan's selector: Nomad's filter syntax over the node as the fleet view
 * knows it — `Name`, `ID`, `Datacenter`, `NodePool`, `NodeClass`, `Status`,
 * `Attributes["…"]`, `Meta["…"]`, every one of them as the Nomad API states
 * it (never what a heartbeat claims; `ID` is the node id the runner's NATS
 * identity is bound to). Parsed by the peggy grammar in selector-grammar.ts.
 *
 * It fails closed: an unknown field is refused with its position; on a node
 * whose Nomad attributes are unknown, or that lacks an attribute or meta key
 * the selector reads, a comparison is neither true nor false but unknown
 * (Kleene logic: `not` keeps it unknown, `and` with false is false, `or` with
 * true is true), and only a node for which the whole selector is true is
 * selected — the others are reported with the reason.
 */
import { selectorParser, type Expr, type Literal, type SelectorRef } from './selector-grammar.js'

const PLAIN_FIELDS = new Set(['Name', 'ID', 'Datacenter', 'NodePool', 'NodeClass', 'Status'])
const MAP_FIELDS = new Set(['Attributes', 'Meta'])
const MAX_SELECTOR = 2000
const MAX_PATTERN = 200

/** A node as a selector reads it: `nomad` undefined when the Nomad API cannot state its attributes (with `unknown` saying why). */
export interface SelectableNode {
  id: string
  nomad?: { Name: string, Datacenter: string, NodePool: string, NodeClass: string, Status: string, Attributes: Record<string, string>, Meta: Record<string, string> }
  unknown?: string
}

export class SelectorError extends Error {
  constructor(message: string, readonly position: { line: number, column: number, offset: number }) {
    super(message)
    this.name = 'SelectorError'
  }
}

type Truth = true | false | { unknown: string }
const U = (why: string): Truth => ({ unknown: why })

export interface Selector {
  readonly text: string
  /** true when the node is selected; false when it is not; `{ unknown }` with the reason when the selector cannot be decided for it. */
  evaluate(node: SelectableNode): Truth
}

/** Parses and checks a selector; throws SelectorError naming the position of the first problem. */
export function compileSelector(text: string): Selector {
  if (text.length > MAX_SELECTOR) throw new SelectorError(`the selector is ${text.length} characters long; at most ${MAX_SELECTOR}`, { line: 1, column: MAX_SELECTOR + 1, offset: MAX_SELECTOR })
  let expr: Expr
  try { expr = selectorParser.parse(text) } catch (err) {
    const e = err as { message?: string, location?: { start: { line: number, column: number, offset: number } } }
    const at = e.location?.start ?? { line: 1, column: 1, offset: 0 }
    throw new SelectorError(`selector syntax error at line ${at.line}, column ${at.column}: ${e.message ?? 'cannot parse'}`, at)
  }
  const patterns = new Map<Expr, RegExp>()
  check(expr, patterns)
  return { text, evaluate: (node) => evaluate(expr, node, patterns) }
}

function check(e: Expr, patterns: Map<Expr, RegExp>): void {
  switch (e.type) {
    case 'and': case 'or': check(e.left, patterns); check(e.right, patterns); return
    case 'not': check(e.expr, patterns); return
    case 'empty': checkRef(e.ref); return
    case 'in': case 'compare': {
      checkRef(e.ref)
      if (e.type === 'compare' && (e.op === 'matches' || e.op === 'not matches')) patterns.set(e, safePattern(e.value, e.valueAt))
    }
  }
}

function checkRef(ref: SelectorRef): void {
  const where = `at line ${ref.at.line}, column ${ref.at.column}`
  if (MAP_FIELDS.has(ref.field)) {
    if (ref.key === undefined) throw new SelectorError(`${ref.field} ${where} needs a key: ${ref.field}["…"]`, ref.at)
    return
  }
  if (!PLAIN_FIELDS.has(ref.field)) {
    throw new SelectorError(`unknown field "${ref.field}" ${where}: a selector reads ${[...PLAIN_FIELDS, ...[...MAP_FIELDS].map((f) => `${f}["…"]`)].join(', ')}`, ref.at)
  }
  if (ref.key !== undefined) throw new SelectorError(`${ref.field} ${where} is a plain value, not a map: no ["${ref.key}"]`, ref.at)
}

/**
 * A `matches` pattern as a JavaScript RegExp, refusing what could make one
 * node's value take exponential time (a quantified group that itself holds
 * a quantifier, backreferences): the selector comes from an agent, and the
 * control plane evaluates it on every node.
 */
function safePattern(value: Literal, at: SelectorRef['at']): RegExp {
  if (typeof value !== 'string') throw new SelectorError(`matches at line ${at.line}, column ${at.column} takes a quoted pattern`, at)
  if (value.length > MAX_PATTERN) throw new SelectorError(`the pattern at line ${at.line}, column ${at.column} is longer than ${MAX_PATTERN} characters`, at)
  if (/\\[1-9]|\\k</.test(value) || /\((?:[^()\\]|\\.)*[*+?}](?:[^()\\]|\\.)*\)\s*[*+{]/.test(value)) {
    throw new SelectorError(`the pattern at line ${at.line}, column ${at.column} nests quantifiers or uses a backreference; write it without (it could take exponential time)`, at)
  }
  try { return new RegExp(value, 'u') } catch (err) {
    throw new SelectorError(`the pattern at line ${at.line}, column ${at.column} is not a valid regular expression: ${(err as Error).message}`, at)
  }
}

function valueOf(ref: SelectorRef, node: SelectableNode): string | { unknown: string } {
  if (ref.field === 'ID') return node.id
  const n = node.nomad
  if (!n) return { unknown: node.unknown ?? 'its Nomad attributes are unknown' }
  if (ref.field === 'Attributes' || ref.field === 'Meta') {
    const v = n[ref.field][ref.key as string]
    return v === undefined ? { unknown: `${ref.field}["${ref.key}"] is not set on it` } : v
  }
  return n[ref.field as 'Name'] ?? ''
}

function evaluate(e: Expr, node: SelectableNode, patterns: Map<Expr, RegExp>): Truth {
  switch (e.type) {
    case 'and': {
      const l = evaluate(e.left, node, patterns)
      if (l === false) return false
      const r = evaluate(e.right, node, patterns)
      if (r === false) return false
      return l === true ? r : l
    }
    case 'or': {
      const l = evaluate(e.left, node, patterns)
      if (l === true) return true
      const r = evaluate(e.right, node, patterns)
      if (r === true) return true
      return l === false ? r : l
    }
    case 'not': {
      const v = evaluate(e.expr, node, patterns)
      return typeof v === 'boolean' ? !v : v
    }
    case 'empty': {
      if (e.ref.field === 'Attributes' || e.ref.field === 'Meta') {
        if (!node.nomad) return U(node.unknown ?? 'its Nomad attributes are unknown')
        const empty = (node.nomad[e.ref.field][e.ref.key as string] ?? '') === ''
        return empty !== e.negated
      }
      const v = valueOf(e.ref, node)
      return typeof v === 'string' ? (v === '') !== e.negated : v
    }
    case 'in': {
      const v = valueOf(e.ref, node)
      if (typeof v !== 'string') return v
      return v.includes(String(e.value)) !== e.negated
    }
    case 'compare': {
      const v = valueOf(e.ref, node)
      if (typeof v !== 'string') return v
      const want = String(e.value)
      switch (e.op) {
        case '==': return v === want
        case '!=': return v !== want
        case 'contains': return v.includes(want)
        case 'not contains': return !v.includes(want)
        case 'matches': return (patterns.get(e) as RegExp).test(v)
        case 'not matches': return !(patterns.get(e) as RegExp).test(v)
      }
    }
  }
}

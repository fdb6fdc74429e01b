/**
 * The selector grammar: Nomad's filter syntax (go-bexpr) — `==`, `!=`, `in`,
 * `not in`, `contains`, `not contains`, `matches`, `not matches`,
 * `is empty`, `is not empty`, `and` / `or` / `not`, parentheses — as a PEG
 * for peggy. Compiled once, when this module loads; the parser it makes
 * returns the syntax tree `selector.ts` checks and evaluates, and its errors
 * carry the position (line, column) of what it could not read.
 */
import peggy from 'peggy'

export type Field = 'Name' | 'ID' | 'Datacenter' | 'NodePool' | 'NodeClass' | 'Status' | 'Attributes' | 'Meta'
export interface SelectorRef { field: string, key?: string, at: { line: number, column: number, offset: number } }
export type Literal = string | number | boolean
export type Expr =
  | { type: 'and' | 'or', left: Expr, right: Expr }
  | { type: 'not', expr: Expr }
  | { type: 'compare', op: '==' | '!=' | 'contains' | 'not contains' | 'matches' | 'not matches', ref: SelectorRef, value: Literal, valueAt: SelectorRef['at'] }
  | { type: 'in', negated: boolean, ref: SelectorRef, value: Literal, valueAt: SelectorRef['at'] }
  | { type: 'empty', negated: boolean, ref: SelectorRef }

const GRAMMAR = String.raw`
{{
  function fold(head, tail, type) { return tail.reduce((left, t) => ({ type, left, right: t[3] }), head) }
  function pos(l) { return { line: l.start.line, column: l.start.column, offset: l.start.offset } }
}}
Start = _ e:Or _ { return e }
Or = head:And tail:(_ OrKw _ And)* { return fold(head, tail, 'or') }
And = head:Not tail:(_ AndKw _ Not)* { return fold(head, tail, 'and') }
Not = NotKw _ e:Not { return { type: 'not', expr: e } } / Primary
Primary = "(" _ e:Or _ ")" { return e } / Match
Match
  = ref:Ref _ "==" _ v:Value { return { type: 'compare', op: '==', ref, value: v.value, valueAt: v.at } }
  / ref:Ref _ "!=" _ v:Value { return { type: 'compare', op: '!=', ref, value: v.value, valueAt: v.at } }
  / ref:Ref _ IsKw _ NotKw _ EmptyKw { return { type: 'empty', negated: true, ref } }
  / ref:Ref _ IsKw _ EmptyKw { return { type: 'empty', negated: false, ref } }
  / ref:Ref _ NotKw _ ContainsKw _ v:Value { return { type: 'compare', op: 'not contains', ref, value: v.value, valueAt: v.at } }
  / ref:Ref _ ContainsKw _ v:Value { return { type: 'compare', op: 'contains', ref, value: v.value, valueAt: v.at } }
  / ref:Ref _ NotKw _ MatchesKw _ v:Value { return { type: 'compare', op: 'not matches', ref, value: v.value, valueAt: v.at } }
  / ref:Ref _ MatchesKw _ v:Value { return { type: 'compare', op: 'matches', ref, value: v.value, valueAt: v.at } }
  / v:Value _ NotKw _ InKw _ ref:Ref { return { type: 'in', negated: true, ref, value: v.value, valueAt: v.at } }
  / v:Value _ InKw _ ref:Ref { return { type: 'in', negated: false, ref, value: v.value, valueAt: v.at } }
Ref = name:Ident key:("[" _ k:String _ "]" { return k })? { return { field: name, ...(key !== null ? { key } : {}), at: pos(location()) } }
Value = v:(String / Number / Bool) { return { value: v, at: pos(location()) } }
String "a quoted string"
  = '"' chars:DoubleChar* '"' { return chars.join('') }
  / "\x60" chars:[^\x60]* "\x60" { return chars.join('') }
DoubleChar = "\\" c:["\\/bfnrt] { return { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' }[c] } / [^"\\]
Number "a number" = "-"? [0-9]+ ("." [0-9]+)? !IdentChar { return Number(text()) }
Bool = "true" !IdentChar { return true } / "false" !IdentChar { return false }
Ident "a field name" = !Keyword [A-Za-z_] IdentChar* { return text() }
IdentChar = [A-Za-z0-9_]
Keyword = (OrKw / AndKw / NotKw / InKw / ContainsKw / MatchesKw / IsKw / EmptyKw)
OrKw = "or" !IdentChar
AndKw = "and" !IdentChar
NotKw = "not" !IdentChar
InKw = "in" !IdentChar
ContainsKw = "contains" !IdentChar
MatchesKw = "matches" !IdentChar
IsKw = "is" !IdentChar
EmptyKw = "empty" !IdentChar
_ "whitespace" = [ \t\r\n]*
`

/** The generated parser: `parse(text)` returns an `Expr` or throws a peggy SyntaxError with `location`. */
export const selectorParser = peggy.generate(GRAMMAR) as { parse(text: string): Expr }

/**
 * Applies an action's declared `output.redact` rules to what leaves the node.
 * Rules use the emisar syntax (`${1}` for a group), which becomes JavaScript's `$1`.
 */
import { compilePackRegex, type ActionFile } from '@writ/packs'

export type Redactor = (text: string) => string

export function redactorFor(spec: ActionFile): Redactor | undefined {
  const rules = spec.output.redact
  if (!rules || rules.length === 0) return undefined
  const compiled = rules.map((r) => ({ re: compilePackRegex(r.pattern, 'g'), replacement: r.replacement.replace(/\$\{(\d+)\}/g, '$$$1') }))
  return (text) => compiled.reduce((acc, r) => acc.replace(r.re, r.replacement), text)
}

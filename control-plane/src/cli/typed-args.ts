/** `--arg k=v` pairs, typed by an action's declared contract (`writ run`, `writ grant`). */
import { UsageError } from './cli-io.js'

/** Types `--arg k=v` values by the action's declared contract. */
export function typedArgs(pairs: readonly string[], contract: Array<{ name: string, type: string }>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    if (eq <= 0) throw new UsageError(`--arg expects name=value, got "${pair}"`)
    const name = pair.slice(0, eq)
    const raw = pair.slice(eq + 1)
    const type = contract.find((a) => a.name === name)?.type
    switch (type) {
      case 'integer': case 'number': out[name] = Number(raw); break
      case 'boolean': out[name] = raw === 'true' ? true : raw === 'false' ? false : raw; break
      case 'string_array': out[name] = raw === '' ? [] : raw.split(','); break
      case 'integer_array': out[name] = raw === '' ? [] : raw.split(',').map(Number); break
      default: out[name] = raw
    }
  }
  return out
}

/**
 * Canonical JSON: object keys sorted by UTF-16 code unit, no whitespace, no
 * `undefined` members. Two processes that agree on a value agree on its bytes,
 * which is what signatures, digests and the audit chain hash.
 *
 * Written straight to a string (no sorted copy of the value is built): it is
 * on every hash of the audit chain and the runner journal, and a runner may
 * check a long journal at start.
 */
export function canonicalJson(value: unknown): string {
  return write(value) ?? 'null'
}

/** The text of one value, or undefined where JSON.stringify would leave a member out. */
function write(value: unknown): string | undefined {
  if (value === null) return 'null'
  switch (typeof value) {
    case 'string': return JSON.stringify(value)
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('canonical JSON cannot hold a non-finite number')
      return JSON.stringify(value)
    case 'boolean': return value ? 'true' : 'false'
    case 'object': break
    case 'bigint': return JSON.stringify(value)
    default: return undefined
  }
  if (Array.isArray(value)) {
    let out = '['
    for (let i = 0; i < value.length; i++) out += `${i > 0 ? ',' : ''}${write(value[i]) ?? 'null'}`
    return `${out}]`
  }
  let out = '{'
  let first = true
  for (const key of Object.keys(value).sort()) {
    const text = write((value as Record<string, unknown>)[key])
    if (text === undefined) continue
    out += `${first ? '' : ','}${JSON.stringify(key)}:${text}`
    first = false
  }
  return `${out}}`
}

/**
 * Canonical JSON: object keys sorted by UTF-16 code unit, no whitespace, no
 * `undefined` members. Two processes that agree on a value agree on its bytes,
 * which is what signatures, digests and the audit chain hash.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(canonicalize(value))
}

function canonicalize(value: unknown): unknown {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError('canonical JSON cannot hold a non-finite number')
    return value
  }
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : canonicalize(v)))
  // A null prototype keeps a `__proto__` key an ordinary member.
  const out: Record<string, unknown> = Object.create(null)
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key]
    if (v !== undefined) out[key] = canonicalize(v)
  }
  return out
}

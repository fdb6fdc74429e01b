/**
 * Glob matching for action ids, node names and groups (control-plane policy,
 * approver-registry rules on both daemons): `*` matches any run of characters (dots
 * included, so `debugging.*` and `*.logs` both work), `?` one character.
 */
const cache = new Map<string, RegExp>()

export function globToRegExp(glob: string): RegExp {
  let re = cache.get(glob)
  if (!re) {
    const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')
    re = new RegExp(`^${body}$`)
    cache.set(glob, re)
  }
  return re
}

export function globMatch(glob: string, value: string): boolean {
  return globToRegExp(glob).test(value)
}

export function anyGlob(globs: readonly string[], value: string | undefined): boolean {
  return value !== undefined && globs.some((g) => globMatch(g, value))
}

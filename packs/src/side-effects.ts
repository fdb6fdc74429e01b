/**
 * What an action's `side_effects` list says about state: whether its author
 * declared that it changes nothing. Both daemons decide from it whether the
 * approver registry's default gate covers an action, so it lives here once.
 *
 * The list is prose. Packs say "nothing changes" in two ways: writ's stock
 * packs open an entry with "None." ("None. A read-only GET against the Nomad
 * API."), the public emisar catalog adds an entry "Read-only." (or
 * "Read-only — never writes…", "Read-only, but exposes…"). Anything else —
 * an empty list, "None on the device's data", "Read-only metadata", "No
 * mutation." — is not that declaration, and the action counts as changing
 * state: a prose reading that errs must err toward asking for a passkey.
 */
import type { SideEffect } from './pack-schema.js'

/**
 * An entry that is the declaration: the word "None" or "Read-only" (also
 * "Read only"), alone or followed by punctuation that closes or qualifies
 * it — "None.", "Read-only — …", "Read-only, but …", "Read-only; …",
 * "Read-only (…)". "None on …" or "Read-only metadata" narrow the claim to
 * part of the system and do not count.
 */
const NO_SIDE_EFFECTS = /^\s*(?:none|read[- ]only)\s*(?:$|[.;,:(\u2014\u2013]|-\s)/i

/**
 * Whether the author declared that the action changes nothing (an entry that
 * says "None" or "Read-only"). A conditional entry (`{ effect, when }`) is an
 * effect under some arguments, so an action with one never reads as "None".
 */
export function declaresNoSideEffects(sideEffects: readonly SideEffect[]): boolean {
  if (sideEffects.some((entry) => typeof entry !== 'string')) return false
  return sideEffects.some((entry) => typeof entry === 'string' && NO_SIDE_EFFECTS.test(entry))
}

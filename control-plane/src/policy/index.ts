/** Policy: ordered rules deciding allow, require approval, or deny. */
export { Policy, DEFAULT_DENY_REASON } from './policy.js'
export type { PolicyDecision, PolicyInput } from './policy.js'
export { globMatch, anyGlob, globToRegExp } from './glob-match.js'

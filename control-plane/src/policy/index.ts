/** Policy: ordered rules deciding allow, require approval, or deny; and a principal's scope under them. */
export { Policy, DEFAULT_DENY_REASON } from './policy.js'
export type { PolicyDecision, PolicyInput } from './policy.js'
export { PolicyScope, policyNodeOf, restScoped } from './policy-scope.js'
export type { ScopedAction, ScopedNode } from './policy-scope.js'
export { globMatch, anyGlob, globToRegExp } from './glob-match.js'

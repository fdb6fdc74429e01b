/**
 * `@writ/packs/passkeys`: verification of passkey-signed approvals, shared by
 * both daemons. A separate entry point because it loads @simplewebauthn/server:
 * import it where (and when) an assertion has to be checked.
 */
export { verifyPasskeyAssertion, checkPasskeyApprovals, checkGrantPasskeys, isRequester } from './passkey-check.js'
export type { PasskeyRefusalCode, PasskeyFailure, AssertionCheck, VerifiedApprover, PasskeyVerdict } from './passkey-check.js'

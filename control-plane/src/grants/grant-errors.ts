/**
 * The coded errors of standing grants, rendered by the one error handler as
 * `{ error: { code, message } }`. A leaf module: it imports no feature.
 */
import createError from '@fastify/error'

export const GrantNotFound = createError('WRIT_ERR_GRANT_NOT_FOUND', 'grant "%s" does not exist', 404)
export const UnknownPrincipal = createError('WRIT_ERR_UNKNOWN_PRINCIPAL', 'principal "%s" is not configured: a grant is for a principal in the config', 400)
export const GrantLifetimeTooLong = createError('WRIT_ERR_GRANT_LIFETIME', 'expires_in %s is longer than grants.max_lifetime (%s)', 400)
export const GrantNotNeeded = createError<'WRIT_ERR_GRANT_NOT_NEEDED', 409, [string, string, string, string]>('WRIT_ERR_GRANT_NOT_NEEDED', 'policy lets %s run %s on %s without approval (rule "%s"): there is nothing to grant', 409)
export const GrantNotAnApprover = createError('WRIT_ERR_NOT_AN_APPROVER', '%s needs approvers from %s; %s is in none of them', 403)
export const GrantSelfApproval = createError('WRIT_ERR_SELF_APPROVAL', '%s is (or is the same person as) %s, whom the grant is for: nobody grants to themselves', 403)
export const GrantAlreadyApproved = createError('WRIT_ERR_ALREADY_APPROVED', '%s already approved grant "%s"; it needs %d more approval(s) from other people', 409)
export const GrantNotPending = createError('WRIT_ERR_GRANT_NOT_PENDING', 'grant "%s" is not waiting for approvals: it is %s', 409)
export const GrantRevoked = createError('WRIT_ERR_GRANT_REVOKED', 'grant "%s" was already revoked by %s at %s', 409)
export const GrantPasskeyRequired = createError('WRIT_ERR_PASSKEY_REQUIRED', 'approving grant "%s" needs your passkey\'s signature over its digest (the approver registry asks for it: %s); sign it on the Grants page: %s', 403)
export const GrantDigestMismatch = createError('WRIT_ERR_BINDING_MISMATCH', 'the approval names digest %s, but grant "%s" is bound to %s: reload the grant and decide on what it is now', 409)

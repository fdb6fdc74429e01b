/** Passkeys: registrations, the published approver registry, the approval check, the registry-export route. */
export { Passkeys } from './passkey-approvals.js'
export type { PasskeyRun, SideEffectsOf } from './passkey-approvals.js'
export { PasskeyStore, PasskeyRegistrationSchema, PASSKEYS_BUCKET } from './passkey-store.js'
export type { PasskeyRegistration } from './passkey-store.js'
export { relyingParty, PasskeyConfigError } from './relying-party.js'
export type { RelyingParty } from './relying-party.js'
export { registrationOptions, verifyRegistration } from './passkey-registration.js'
export { default as approverRoutes } from './approver-routes.js'

/**
 * `@writ/packs/approvers`: the approver registry both daemons load — its
 * format, signing with the approvers key, verification (refusing a
 * dispatch-key signature), what it demands of an action, which registry
 * may replace which, and the file follower. A separate entry point so a
 * runner without passkey approvals never loads it.
 */
export {
  ApproverEntrySchema, ApprovalRequirementSchema, RequirementRuleSchema, RegistryRequirementsSchema, RelyingPartySchema,
  ApproverRegistrySchema, SignedApproverRegistrySchema, ApproverRegistryError, signApproverRegistry, verifyApproverRegistry,
  passkeyRequirement, passkeyGateReason, describePasskeyGate, bindingChallenge, approverCredentials,
} from './approver-registry.js'
export type { ApproverEntry, ApprovalRequirement, ApproverRegistry, ApproverRegistryInput, SignedApproverRegistry, RegistryKeys, DeclaredAction } from './approver-registry.js'
export { RegistryMarkSchema, AcceptedRegistrySchema, registryDigest, markOf, describeMark, isNewer, rollbackReason, expiryReason } from './registry-order.js'
export type { RegistryMark, AcceptedRegistry } from './registry-order.js'
export { ApproverRegistryFile } from './approver-registry-file.js'
export type { RegistryLog, RegistryFileOptions } from './approver-registry-file.js'

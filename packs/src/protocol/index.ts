export { SUBJECT_ROOT, NODE_ID_RE, RUN_ID_RE, subjects, streams } from './subjects.js'
export {
  PROTOCOL_VERSION, WRIT_VERSION, ArgValueSchema, PrincipalRefSchema, PasskeyAssertionSchema, ApprovalRefSchema, RunOptionsSchema,
  WritSchema, SignedWritSchema, CancelSchema, SignedCancelSchema, RefusalCodeSchema, RefusalSchema,
  WritAckSchema, OutputChunkSchema, RunnerStatusSchema, RunResultSchema, PackInventorySchema,
  HeartbeatSchema, NodeEventSchema, PLAN_ID_RE, PlanStatementSchema, PlanProofSchema,
  GRANT_ID_RE, GrantTermsSchema, GrantApprovalRefSchema, GrantStatementSchema, SignedGrantSchema,
} from './messages.js'
export type {
  PasskeyAssertion, ApprovalRef, Writ, SignedWrit, Cancel, SignedCancel, RefusalCode, Refusal, WritAck, OutputChunk, RunnerStatus,
  RunResult, Heartbeat, NodeEvent, PlanStatement, PlanProof, GrantTerms, GrantApprovalRef, GrantStatement, SignedGrant,
} from './messages.js'
export { grantDigest, signGrant, checkGrant } from './grant-statement.js'
export type { GrantCheck, GrantContext, GrantedWrit } from './grant-statement.js'
export {
  keyIdOf, generateSigningKeyPair, loadSigningKey, loadTrustedKey, splitPemBundle, newNonce, newBindingSalt,
  signWrit, signCancel, verifySignature,
} from './writ-signing.js'
export type { SigningKey, TrustedKey, SignatureCheck } from './writ-signing.js'
export { approvalBinding } from './approval-binding.js'
export { ApprovedStateSchema, STATEFUL_ACTIONS, nomadStatePath, observedState, stateChange } from './nomad-state.js'
export type { ApprovedState, NomadStateKind, ObservedState } from './nomad-state.js'
export { MerkleTree, merkleLeafHash, maxProofLength, verifyInclusion } from './merkle-tree.js'
export { planRunId, parsePlanRunId, planLeafHash, planBinding, signPlanStatement, encodeProof, checkPlanWrit } from './plan-root.js'
export type { PlanLeaf, PlanCheck } from './plan-root.js'
export type { ApprovalSubject } from './approval-binding.js'
export { canonicalJson } from '../canonical-json.js'
export {
  CONTROL_PLANE_INBOX_PREFIX, AUDITOR_INBOX_PREFIX, runnerInboxPrefix, runnerPermissions, controlPlanePermissions, auditorPermissions, nscCommands,
} from './nats-permissions.js'
export type { NatsPermissions } from './nats-permissions.js'

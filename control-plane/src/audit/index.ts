/** Audit: the hash-chained event stream, its verification, and its routes. */
export { AuditChain, AuditAppendError } from './audit-chain.js'
export { AuditEventSchema, AuditActorSchema, GENESIS_HASH, hashEvent, sealEvent, verifyChain, eventsFromJsonLines } from './audit-event.js'
export type { AuditEvent, AuditEventBody, ChainVerdict, StoredEvent } from './audit-event.js'
export { AuditQuerySchema } from './audit-schemas.js'
export { default as auditRoutes, auditVisible } from './audit-routes.js'

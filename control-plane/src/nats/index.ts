/** JetStream layout (streams, bucket) and retrying its transient errors. */
export { AUDIT_STREAM, AUDIT_SUBJECT, RESULTS_CONSUMER, JetStreamSetupError, streamConfigs, withJetStreamRetry, ensureStreams } from './jetstream-setup.js'
export { PLAN_LOG_STREAM, PLAN_LOG_SUBJECTS, planLogSubject } from './jetstream-setup.js'
export { NOTIFY_STREAM, NOTIFY_SUBJECT, NOTIFY_SUBJECTS, notifySubject, NOTIFY_CONSUMER, NOTIFY_MAX_MSGS } from './jetstream-setup.js'
export type { JetStreamLayout } from './jetstream-setup.js'
export { isTransientJetStreamError, retryTransient } from './jetstream-retry.js'
export { natsTlsOptions } from './nats-tls.js'
export { JetStreamUsage } from './jetstream-usage.js'
export type { AccountStorage, JetStreamUsageOptions, StreamUsage, UsageSnapshot } from './jetstream-usage.js'

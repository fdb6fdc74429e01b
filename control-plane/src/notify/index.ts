/** Notifications to people: the Slack webhook (or the log) for runs waiting on approval. */
export { createApprovalNotifier, NotifyConfigError } from './approval-notifier.js'
export type { ApprovalNotifier, NotifierConfig, NotifierMetrics } from './approval-notifier.js'
export { pendingMessage, outcomeMessage, escapeMrkdwn } from './slack-message.js'
export type { SlackMessage, ActionFacts } from './slack-message.js'

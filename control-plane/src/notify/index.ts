/** Notifications to people: the Slack webhook (or the log) for runs waiting on approval. */
export { createApprovalNotifier, NotifyConfigError } from './approval-notifier.js'
export type { ApprovalNotifier, NotifierConfig, NotifierDeps } from './approval-notifier.js'
export { pendingMessage, outcomeMessage, summaryMessage, escapeMrkdwn, defangUrls } from './slack-message.js'
export type { SlackMessage, ActionFacts } from './slack-message.js'
export { SlackNoticeSchema } from './slack-notice.js'
export type { SlackNotice } from './slack-notice.js'
